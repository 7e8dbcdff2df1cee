"""Demo generator throughput: events per second for one heavy day (2,000,000 events).

The generator must outrun storage by a wide margin (target >= 200,000 events/s), so this
measures generation alone: every chunk is produced and dropped.

    .venv/bin/python benchmarks/bench_generator.py [--events 2000000] [--days 1] [--repeat 3]
"""

from __future__ import annotations

import argparse
import time

from growthwatch.demo.generator import DemoSpec, generate


def run(spec: DemoSpec) -> tuple[int, float]:
    started = time.perf_counter()
    events = sum(len(chunk) for chunk in generate(spec))
    return events, time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=2_000_000, help="events per day")
    parser.add_argument("--days", type=int, default=1)
    parser.add_argument("--repeat", type=int, default=3, help="best of N runs")
    args = parser.parse_args()
    spec = DemoSpec(days=args.days, events_per_day=args.events)
    best = min((run(spec) for _ in range(args.repeat)), key=lambda r: r[1])
    events, seconds = best
    print(
        f"{events:,} events in {seconds:.2f} s: {events / seconds:,.0f} events/s (best of {args.repeat})"
    )


if __name__ == "__main__":
    main()
