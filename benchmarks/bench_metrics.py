"""Metrics benchmark: full recompute over N demo events, then an incremental update after
1,000 new events, with time and peak memory of each.

    .venv/bin/python benchmarks/bench_metrics.py [--events 10000000] [--new 1000]

Phases run in separate processes so each peak-memory figure (``ru_maxrss``, which covers
numpy/pandas and DuckDB alike) belongs to that phase alone:

1. load: generate the demo portfolio (``growthwatch.demo.generator``) into a ledger, holding
   back the latest ``--new`` events (they are the "new events" of phase 3);
2. full: ``MetricsEngine.recompute`` over the whole ledger into an embedded series store;
3. incremental: append the held-back events, ``MetricsEngine.update``;
4. plain (unless ``--no-segments-cost``): the full recompute of phase 2 again on the same
   ledger, without segment series (``metrics.segments.dimensions: []``), into its own
   store: the cost of segments is phase 2 minus phase 4, in time and points.

The reference ratio printed at the end (incremental time / full time) is what the
incremental design buys on this machine, independent of its speed.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import resource
import subprocess
import sys
import tempfile
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

import pandas as pd

from growthwatch.demo.generator import DemoSpec, estimated_events, generate
from growthwatch.demo.pipeline import DEMO_METRICS
from growthwatch.events import EventType, GrowthEvent
from growthwatch.metrics.engine import MetricsEngine
from growthwatch.metrics.settings import MetricsSettings, SegmentSettings
from growthwatch.stores.ledger import Ledger
from growthwatch.stores.series import SeriesStore


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def spec_for(events: int) -> DemoSpec:
    """The default 18-month portfolio scaled to about ``events`` events."""
    base = DemoSpec()
    per_day = max(1, round(base.events_per_day * events / estimated_events(base)))
    return DemoSpec(events_per_day=per_day)


def load(work: Path, events: int, new: int) -> dict[str, float]:
    spec = spec_for(events)
    started = time.perf_counter()
    total = 0
    held: list[pd.DataFrame] = []
    with Ledger(work / "ledger.duckdb") as ledger:
        pending: pd.DataFrame | None = None
        for chunk in generate(spec):
            if pending is not None:
                total += ledger.append(pending).received
            pending = chunk
        assert pending is not None
        pending = pending.sort_values("ts", kind="stable")
        total += ledger.append(pending.iloc[:-new]).received
        held.append(pending.iloc[-new:])
    pd.concat(held).to_pickle(work / "new.pkl")
    return {"events": total, "seconds": time.perf_counter() - started, "peak_mb": peak_mb()}


def full(work: Path, settings: MetricsSettings = DEMO_METRICS, name: str = "") -> dict[str, Any]:
    with Ledger(work / "ledger.duckdb") as ledger:
        series = SeriesStore(work / f"series{name}.duckdb")
        engine = MetricsEngine(ledger, settings, state_path=work / f"state{name}.json")
        started = time.perf_counter()
        result = engine.recompute([series])
        seconds = time.perf_counter() - started
        series.close()
        return {"events": result.events, "points": result.points, "seconds": seconds,
                "peak_mb": peak_mb(), "segments_seconds": result.timings.get("segments", 0.0)}  # fmt: skip


def plain(work: Path) -> dict[str, Any]:
    """Phase 2 without segment series (same ledger, own store and state)."""
    no_segments = dataclasses.replace(DEMO_METRICS, segments=SegmentSettings(dimensions=()))
    return full(work, no_segments, "-plain")


def incremental(work: Path) -> dict[str, float]:
    new = pd.read_pickle(work / "new.pkl")
    with Ledger(work / "ledger.duckdb") as ledger:
        ledger.append(new)
        series = SeriesStore(work / "series.duckdb")
        engine = MetricsEngine(ledger, DEMO_METRICS, state_path=work / "state.json")
        base = peak_mb()
        started = time.perf_counter()
        result = engine.update([series])
        seconds = time.perf_counter() - started
        peak = peak_mb()
        # What ``growthwatch serve`` then does for a lone webhook: the engine is warm (it
        # keeps the portfolio's MRR state), one subscription of one product is cancelled.
        live = engine_live_cancellation(ledger, engine, series)
        series.close()
        return {"events": result.events, "points": result.points, "seconds": seconds,
                "peak_mb": peak, "peak_mb_before": base,
                "families": json.dumps(result.families),
                "timings": json.dumps(result.timings), **live}  # fmt: skip


def engine_live_cancellation(
    ledger: Ledger, engine: MetricsEngine, series: SeriesStore
) -> dict[str, float]:
    last = ledger.read(types=[EventType.SUBSCRIPTION_STARTED.value]).iloc[-1]
    assert engine.state.horizon is not None
    cancel = GrowthEvent(
        product=last["product"], type=EventType.SUBSCRIPTION_CANCELLED,
        timestamp=engine.state.horizon.to_pydatetime(), value=-Decimal(str(last["mrr_after"])),
        currency=last["currency"], subject=last["subject"],
        mrr_before=Decimal(str(last["mrr_after"])), mrr_after=Decimal(0),
        metadata=json.loads(last["metadata"]), source="bench",
        source_id=f"live-cancel-{ledger.max_seq()}",
    )  # fmt: skip
    ledger.append([cancel])
    started = time.perf_counter()
    result = engine.update([series], live=True)  # as serve's webhook path: segments deferred
    live_seconds = time.perf_counter() - started
    started = time.perf_counter()
    caught = engine.update([series])  # serve's catch-up once the events pause
    return {"live_seconds": live_seconds, "live_points": result.points,
            "live_timings": json.dumps(result.timings),
            "catch_up_seconds": time.perf_counter() - started,
            "catch_up_timings": json.dumps(caught.timings)}  # fmt: skip


PHASES: dict[str, Any] = {"load": load, "full": full, "incremental": incremental, "plain": plain}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=10_000_000)
    parser.add_argument("--new", type=int, default=1_000)
    parser.add_argument("--no-segments-cost", action="store_true",
                        help="skip phase 4 (the full recompute without segment series)")
    parser.add_argument("--phase", choices=sorted(PHASES), help=argparse.SUPPRESS)
    parser.add_argument("--work", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.phase:
        fn = PHASES[args.phase]
        out = fn(args.work, args.events, args.new) if args.phase == "load" else fn(args.work)
        print(json.dumps(out))
        return
    work = Path(tempfile.mkdtemp(prefix="gw-bench-metrics-"))
    results = {}
    phases = ("load", "full", "incremental", *(() if args.no_segments_cost else ("plain",)))
    for phase in phases:
        proc = subprocess.run(
            [sys.executable, __file__, "--phase", phase, "--work", str(work),
             "--events", str(args.events), "--new", str(args.new)],
            capture_output=True, text=True, check=True,
        )  # fmt: skip
        results[phase] = json.loads(proc.stdout.strip().splitlines()[-1])
        print(f"{phase:12s} {results[phase]}", flush=True)
    f, i = results["full"], results["incremental"]
    print()
    print(f"ledger events:            {int(results['load']['events']):,}")
    print(f"full recompute:           {f['seconds']:8.2f} s   peak RSS {f['peak_mb']:8.0f} MB   "
          f"{int(f['points']):,} points")  # fmt: skip
    print(f"incremental ({int(i['events']):,} new):   {i['seconds']:8.2f} s   peak RSS "
          f"{i['peak_mb']:8.0f} MB   {int(i['points']):,} points   {i['timings']}")  # fmt: skip
    print(f"live cancellation (warm engine, 1 event):  {i['live_seconds']:8.2f} s   "
          f"{int(i['live_points']):,} points   {i['live_timings']}")  # fmt: skip
    print(f"  then the deferred catch-up:                {i['catch_up_seconds']:8.2f} s   "
          f"{i['catch_up_timings']}")  # fmt: skip
    print(f"incremental / full time:  {i['seconds'] / f['seconds']:.3f}")
    print(f"live / full time:         {i['live_seconds'] / f['seconds']:.4f}")
    if "plain" in results:
        p = results["plain"]
        print(f"full without segments:    {p['seconds']:8.2f} s   peak RSS {p['peak_mb']:8.0f} MB   "
              f"{int(p['points']):,} points")  # fmt: skip
        print(f"segments cost (full):     {f['seconds'] - p['seconds']:+8.2f} s "
              f"(segments family {f['segments_seconds']:.2f} s)   "
              f"{int(f['points']) - int(p['points']):+,} points")  # fmt: skip
        print(f"with / without segments:  time {f['seconds'] / p['seconds']:.3f}   "
              f"points {int(f['points']) / int(p['points']):.3f}")  # fmt: skip
    print(f"work dir (delete when done): {work}")


if __name__ == "__main__":
    main()
