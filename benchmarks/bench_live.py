"""Successive live cancellations on a warm engine: each one's wall and CPU time, per
family, so a one-off (the first call's cold caches) shows as such.

    .venv/bin/python benchmarks/bench_live.py WORK [--count 3] [--new]

``WORK`` is a directory as ``bench_metrics.py`` leaves it after its full phase
(``ledger.duckdb``, ``series.duckdb``, ``state.json``, ``memory-limit-mb``, ``new.pkl``);
the run appends to its ledger and store, so give it a copy. ``--new`` first appends
``new.pkl`` and runs the update of those events (as ``bench_metrics`` does before its live
cancellation); without it the warm-up is an update with nothing new. Then ``--count``
cancellations, each of a different customer's latest subscription, at the horizon, each
followed by nothing (``serve``'s webhook path: ``update(live=True)``), and one catch-up
at the end; between the warm-up and the cancellations the engine's idle release
(``MetricsEngine.release``: the totals' copies and the checkpoint the update left to idle time). CPU time
(``time.process_time``) is the figure to compare on a shared machine; the reference
printed last is the ratio of the mean live CPU to the warm-up's.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

import pandas as pd

sys.path.insert(0, str(Path(__file__).parent))
from bench_metrics import bench_settings

from growthwatch.events import EventType, GrowthEvent
from growthwatch.metrics.engine import MetricsEngine, RunResult
from growthwatch.stores.ledger import Ledger
from growthwatch.stores.series import SeriesStore


def _timed(call: Any) -> tuple[RunResult, float, float]:
    wall, cpu = time.perf_counter(), time.process_time()
    result = call()
    return result, time.perf_counter() - wall, time.process_time() - cpu


def cancellations(ledger: Ledger, at: pd.Timestamp, count: int) -> list[GrowthEvent]:
    """One cancellation each of the ``count`` latest subscriptions of distinct customers."""
    started = ledger.read(types=[EventType.SUBSCRIPTION_STARTED.value])
    started = started[started["mrr_after"].astype(float) > 0]
    latest = started.drop_duplicates("subject", keep="last").tail(count)
    return [
        GrowthEvent(
            product=row["product"], type=EventType.SUBSCRIPTION_CANCELLED,
            timestamp=at.to_pydatetime(), value=-Decimal(str(row["mrr_after"])),
            currency=row["currency"], subject=row["subject"],
            mrr_before=Decimal(str(row["mrr_after"])), mrr_after=Decimal(0),
            metadata=json.loads(row["metadata"]), source="bench",
            source_id=f"bench-live-{ledger.max_seq()}-{i}",
        )
        for i, (_, row) in enumerate(latest.iterrows())
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("work", type=Path, help="a copy of bench_metrics' work dir after its full phase")
    parser.add_argument("--count", type=int, default=3, help="live cancellations, one customer each")
    parser.add_argument("--new", action="store_true", help="append new.pkl and update first")
    args = parser.parse_args()
    work: Path = args.work
    settings = bench_settings(work)
    with Ledger(work / "ledger.duckdb") as ledger:
        if args.new:
            ledger.append(pd.read_pickle(work / "new.pkl"))
        series = SeriesStore(work / "series.duckdb", memory_limit=settings.series_memory_limit)
        engine = MetricsEngine(ledger, settings, state_path=work / "state.json")
        warm, wall, warm_cpu = _timed(lambda: engine.update([series]))
        print(f"warm-up update: {warm.events} events, wall {wall:.3f} s, cpu {warm_cpu:.3f} s, "
              f"{json.dumps(warm.timings)}, errors {json.dumps(warm.errors)}")  # fmt: skip
        due, wall, cpu = _timed(engine.release)  # serve's idle time after its catch-up
        print(f"idle release (state copies, checkpoint: {'done' if due else 'nothing due'}): wall {wall:.3f} s, "
              f"cpu {cpu:.3f} s")  # fmt: skip
        assert engine.state.horizon is not None
        cpus = []
        for i, cancel in enumerate(cancellations(ledger, engine.state.horizon, args.count)):
            ledger.append([cancel])
            got, wall, cpu = _timed(lambda: engine.update([series], live=True))
            cpus.append(cpu)
            print(f"live {i + 1} ({cancel.product}): wall {wall * 1000:.1f} ms, cpu "
                  f"{cpu * 1000:.1f} ms, {got.points} points, "
                  f"{json.dumps({k: round(v * 1000, 1) for k, v in got.timings.items()})} ms")  # fmt: skip
        caught, wall, cpu = _timed(lambda: engine.update([series]))
        print(f"catch-up: wall {wall:.3f} s, cpu {cpu:.3f} s, {json.dumps(caught.timings)}")
        series.close()
    later = cpus[1:] or cpus
    mean = sum(later) / len(later)
    print(f"live cpu: first {cpus[0] * 1000:.1f} ms, later mean {mean * 1000:.1f} ms, "
          f"{mean / warm_cpu:.4f} of the warm-up update's cpu")  # fmt: skip


if __name__ == "__main__":
    main()
