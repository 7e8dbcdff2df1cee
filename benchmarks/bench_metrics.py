"""Metrics benchmark: full recompute over N demo events, then an incremental update after
1,000 new events and one live cancellation, with time and peak memory of each; for several
ledger sizes side by side, with the ratios of the largest to the smallest.

    .venv/bin/python benchmarks/bench_metrics.py [--events 10000000 ...] [--with-100m]
                                                 [--new 1000] [--memory-limit-mb 2048]

``--with-100m`` adds a 100M-event ledger (about 15 minutes to generate, its files ~10 GB
in the temporary directory): the issue's 10M vs 100M table. Recompute time should grow
about linearly with the events, update and live time not at all, peak RSS not at all (the
engine streams through the ledger within ``metrics.memory_limit_mb``).

Phases run in separate processes so each peak-memory figure (``ru_maxrss``, which covers
numpy/pandas and DuckDB alike) belongs to that phase alone:

1. load: generate the demo portfolio (``growthwatch.demo.generator``) into a ledger, holding
   back the latest ``--new`` events (they are the "new events" of phase 3);
2. full: ``MetricsEngine.recompute`` over the whole ledger into an embedded series store;
3. incremental: append the held-back events, ``MetricsEngine.update``; then one live
   cancellation (``update(live=True)``, serve's webhook path), the catch-up of what it
   deferred, and the idle release (``MetricsEngine.release``: the kept totals' copies in
   the ledger file, which no update writes);
4. plain (with ``--segments-cost``): the full recompute of phase 2 again on the same
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
import shutil
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
from growthwatch.metrics.settings import (
    DEFAULT_MEMORY_LIMIT_MB,
    MetricsSettings,
    SegmentSettings,
    chunk_events_for,
)
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


def bench_settings(work: Path) -> MetricsSettings:
    """The demo's metric policy under the memory limit this run was given."""
    limit = int((work / "memory-limit-mb").read_text())
    return dataclasses.replace(DEMO_METRICS, memory_limit_mb=limit,
                               chunk_events=chunk_events_for(limit))  # fmt: skip


def full(work: Path, settings: MetricsSettings | None = None, name: str = "") -> dict[str, Any]:
    settings = settings or bench_settings(work)
    with Ledger(work / "ledger.duckdb") as ledger:
        # as ``growthwatch metrics`` opens it: the series store's share of the limit
        series = SeriesStore(work / f"series{name}.duckdb", memory_limit=settings.series_memory_limit)
        engine = MetricsEngine(ledger, settings, state_path=work / f"state{name}.json")
        peaks = _family_peaks(engine)
        started = time.perf_counter()
        result = engine.recompute([series])
        seconds = time.perf_counter() - started
        series.close()
        return {"events": result.events, "points": result.points, "seconds": seconds,
                "peak_mb": peak_mb(), "timings": json.dumps(result.timings),
                "family_peaks": json.dumps(peaks), "errors": json.dumps(result.errors)}  # fmt: skip


def _family_peaks(engine: MetricsEngine) -> dict[str, float]:
    """The process's peak RSS (MB) after each family of the run, in run order: the family
    whose figure is the first to reach the phase's peak is the one that set it."""
    peaks: dict[str, float] = {}
    run_family = engine._run_family

    def measured(stores: Any, family: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return run_family(stores, family, *args, **kwargs)
        finally:
            peaks[family.name] = round(peak_mb())

    engine._run_family = measured  # type: ignore[method-assign]
    return peaks


def plain(work: Path) -> dict[str, Any]:
    """Phase 2 without segment series (same ledger, own store and state)."""
    no_segments = dataclasses.replace(bench_settings(work), segments=SegmentSettings(dimensions=()))
    return full(work, no_segments, "-plain")


def incremental(work: Path) -> dict[str, float]:
    new = pd.read_pickle(work / "new.pkl")
    with Ledger(work / "ledger.duckdb") as ledger:
        ledger.append(new)
        settings = bench_settings(work)
        series = SeriesStore(work / "series.duckdb", memory_limit=settings.series_memory_limit)
        engine = MetricsEngine(ledger, settings, state_path=work / "state.json")
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
                "timings": json.dumps(result.timings), "errors": json.dumps(result.errors),
                **live}  # fmt: skip


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
    catch_up_seconds = time.perf_counter() - started
    started = time.perf_counter()
    engine.release(force=True)  # then its idle time: the kept totals' copies, a checkpoint
    return {"live_seconds": live_seconds, "live_points": result.points,
            "live_timings": json.dumps(result.timings),
            "catch_up_seconds": catch_up_seconds,
            "catch_up_timings": json.dumps(caught.timings),
            "release_seconds": time.perf_counter() - started}  # fmt: skip


PHASES: dict[str, Any] = {"load": load, "full": full, "incremental": incremental, "plain": plain}


def run_size(events: int, args: argparse.Namespace) -> dict[str, dict[str, Any]]:
    """Every phase for one ledger size, each in its own process; its work dir removed."""
    if args.reuse is not None:  # a ledger generated once (load is the long phase)
        work = args.reuse / str(events)
        work.mkdir(parents=True, exist_ok=True)
    else:
        work = Path(tempfile.mkdtemp(prefix=f"gw-bench-metrics-{events}-"))
    (work / "memory-limit-mb").write_text(str(args.memory_limit_mb))
    results: dict[str, dict[str, Any]] = {}
    phases = ("load", "full", "incremental", *(("plain",) if args.segments_cost else ()))
    pristine = work / "ledger.loaded.duckdb"  # the ledger as loaded (``--reuse`` only)
    try:
        for phase in phases:
            done = work / f"{phase}.json"
            if phase == "full" and not done.exists() and pristine.exists():
                # the incremental phase appended to the ledger: measure from the ledger as
                # it was loaded, so a phase deleted for a new measurement means the same
                shutil.copyfile(pristine, work / "ledger.duckdb")
                shutil.copyfile(work / "new.loaded.pkl", work / "new.pkl")
                for old in ("incremental", "plain"):
                    (work / f"{old}.json").unlink(missing_ok=True)
                for old in work.glob("series*.duckdb*"):
                    old.unlink()
                for old in work.glob("state*.json"):
                    old.unlink()
            if done.exists():
                results[phase] = json.loads(done.read_text())
                print(f"{events:>11,} {phase:12s} (reused) {results[phase]}", flush=True)
                continue
            proc = subprocess.run(
                [sys.executable, __file__, "--phase", phase, "--work", str(work),
                 "--events", str(events), "--new", str(args.new)],
                capture_output=True, text=True,
            )  # fmt: skip
            if proc.returncode:
                print(proc.stderr[-4000:], file=sys.stderr)
                raise SystemExit(f"phase {phase} of {events:,} events failed ({proc.returncode})")
            results[phase] = json.loads(proc.stdout.strip().splitlines()[-1])
            done.write_text(json.dumps(results[phase]))
            if phase == "load" and args.reuse is not None:
                shutil.copyfile(work / "ledger.duckdb", pristine)
                shutil.copyfile(work / "new.pkl", work / "new.loaded.pkl")
            print(f"{events:>11,} {phase:12s} {results[phase]}", flush=True)
    finally:
        if args.reuse is None:
            shutil.rmtree(work, ignore_errors=True)
    return results


# (label, phase, key, scale, unit, target, how the figure should grow with the ledger)
ROWS = (
    ("full recompute", "full", "seconds", 1.0, "s", None, "linear"),
    ("  per million events", "full", "per_million", 1.0, "s", 2.0, "flat"),
    ("  peak RSS", "full", "peak_mb", 1 / 1024, "GiB", 2.0, "flat"),
    ("  points written", "full", "points", 1.0, "", None, ""),
    ("update after new events", "incremental", "seconds", 1.0, "s", 0.2, "flat"),
    ("one live cancellation", "incremental", "live_seconds", 1.0, "s", 0.05, "flat"),
    ("  then the deferred catch-up", "incremental", "catch_up_seconds", 1.0, "s", None, ""),
    ("  then the idle release", "incremental", "release_seconds", 1.0, "s", None, ""),
)


def _short(events: int) -> str:
    """10000000 -> 10M, 200000 -> 200k."""
    return f"{events / 1e6:g}M" if events >= 10**6 else f"{events / 1e3:g}k"


def table(sizes: list[int], results: dict[int, dict[str, dict[str, Any]]]) -> str:
    """The side-by-side table: a column per ledger, the ratio largest/smallest, targets."""
    for r in results.values():
        r["full"]["per_million"] = r["full"]["seconds"] / (r["load"]["events"] / 1e6)
    head = ["", *(f"{int(results[n]['load']['events']):,} events" for n in sizes)]
    if len(sizes) > 1:
        head.append(f"ratio {_short(sizes[-1])}/{_short(sizes[0])}")
    head += ["target", "expected growth"]
    lines = ["| " + " | ".join(head) + " |", "|" + " --- |" * len(head)]
    for label, phase, key, scale, unit, target, growth in ROWS:
        values = [float(results[n][phase][key]) * scale for n in sizes]
        cells = [f"{v:,.3f} {unit}".strip() if unit else f"{v:,.0f}" for v in values]
        if len(sizes) > 1:
            cells.append(f"{values[-1] / values[0]:.2f}" if values[0] else "n/a")
        mark = "" if target is None else (
            " met" if all(v <= target for v in values) else " NOT met")
        cells.append("" if target is None else f"< {target} {unit}{mark}")
        cells.append(growth)
        lines.append("| " + " | ".join([label, *cells]) + " |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, nargs="+", default=[10_000_000],
                        help="ledger sizes to measure side by side (default 10000000)")
    parser.add_argument("--with-100m", action="store_true",
                        help="also a 100M-event ledger (~15 min to generate, ~10 GB on disk)")
    parser.add_argument("--new", type=int, default=1_000, help="events of the update")
    parser.add_argument("--memory-limit-mb", type=int, default=DEFAULT_MEMORY_LIMIT_MB,
                        help="metrics.memory_limit_mb of the runs (default %(default)s)")
    parser.add_argument("--segments-cost", action="store_true",
                        help="also the full recompute without segment series (its cost)")
    parser.add_argument("--reuse", type=Path, metavar="DIR",
                        help="keep each ledger and each phase's figures in DIR/<events>: a "
                        "phase already measured there is reused, not run again; delete "
                        "DIR/<events>/full.json to measure the recompute and the update "
                        "again on the ledger as it was loaded (kept as "
                        "ledger.loaded.duckdb, twice the disk), or DIR/<events> for a "
                        "fresh ledger")
    parser.add_argument("--phase", choices=sorted(PHASES), help=argparse.SUPPRESS)
    parser.add_argument("--work", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.phase:
        fn = PHASES[args.phase]
        out = fn(args.work, args.events[0], args.new) if args.phase == "load" else fn(args.work)
        print(json.dumps(out))
        return
    sizes = sorted({*args.events, *((100_000_000,) if args.with_100m else ())})
    results = {n: run_size(n, args) for n in sizes}
    print()
    print(f"metrics.memory_limit_mb = {args.memory_limit_mb} "
          f"(events per chunk {chunk_events_for(args.memory_limit_mb):,})")
    print(table(sizes, results))
    for n in sizes:
        r = results[n]
        i = r["incremental"]
        print(f"\n{n:,}: update families {i['families']}")
        print(f"  update timings {i.get('timings', '')}")
        print(f"  live timings {i['live_timings']}; catch-up {i['catch_up_timings']}")
        print(f"  full timings {r['full']['timings']}")
        print(f"  full peak RSS (MB) after each family {r['full'].get('family_peaks', '')}")
        for phase in ("full", "incremental"):  # a family that failed is not in the figures
            if json.loads(r[phase].get("errors") or "{}"):
                print(f"  {phase}: FAILED families {r[phase]['errors']}")
        print(f"  incremental / full time {i['seconds'] / r['full']['seconds']:.4f}")
        if "plain" in r:
            p, f = r["plain"], r["full"]
            print(f"  without segments: {p['seconds']:.2f} s, peak {p['peak_mb']:.0f} MB, "
                  f"{int(p['points']):,} points (segments cost {f['seconds'] - p['seconds']:+.2f} s)")


if __name__ == "__main__":
    main()
