"""Cohorts and funnels families: a full recompute and an update after the held-back new
events, seconds and peak RSS of each, each in its own process, on a ledger made once and
reused (``bench_metrics.py``'s load phase: the demo portfolio, its latest ``--new`` events
held back in ``new.pkl``).

    .venv/bin/python benchmarks/bench_engagement.py --work /tmp/bench-1m [--events 1000000]
        [--base /path/to/an/older/checkout] [--memory-limit 2GB]

Each (code, family) pair runs on its own copy of the ledger: ``full`` recomputes that
family alone into a store that drops the points (the families' compute and reads, not a
series store's write cost), then ``update`` appends the new events and updates. With
``--base`` the same phases run with that checkout's ``growthwatch`` package (e.g. ``git
archive <commit> growthwatch | tar -x -C DIR``) and the ratios new / base are printed: a
reference measured in the same run on the same ledger.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

FAMILIES = ("cohorts", "funnels")


def _use_code(root: str | None) -> None:
    """Import ``growthwatch`` from ``root`` instead of the installed (editable) one."""
    if not root:
        return
    sys.meta_path[:] = [f for f in sys.meta_path if "editable" not in type(f).__module__ + repr(f)]
    sys.path.insert(0, root)


class NullStore:
    """Takes the batches and drops them: the family's own cost, not a store's."""

    def write(self, batches: Any) -> int:
        return sum(len(b) for b in batches)


def phase(work: Path, name: str, family: str, memory_limit: str | None) -> dict[str, Any]:
    import resource

    import pandas as pd

    import growthwatch
    from growthwatch.demo.pipeline import DEMO_METRICS
    from growthwatch.metrics.engine import MetricsEngine
    from growthwatch.stores.ledger import Ledger

    with Ledger(work / f"{name}.duckdb") as ledger:
        if memory_limit:
            ledger.connection.execute(f"SET memory_limit = '{memory_limit}'")
        engine = MetricsEngine(ledger, DEMO_METRICS, state_path=work / f"{name}.json")
        engine.families = tuple(f for f in engine.families if f.name == family)
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        if (work / f"{name}.json").exists():  # the update phase
            ledger.append(pd.read_pickle(work / "new.pkl"))
            started = time.perf_counter()
            result = engine.update([NullStore()])
        else:
            started = time.perf_counter()
            result = engine.recompute([NullStore()])
        seconds = time.perf_counter() - started
    return {"seconds": round(seconds, 3), "family_seconds": result.timings.get(family),
            "points": result.points, "peak_mb": round(resource.getrusage(
                resource.RUSAGE_SELF).ru_maxrss / 1024), "rss_before_mb": round(before),
            "code": str(Path(growthwatch.__file__).parent.parent)}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--work", type=Path, required=True,
                        help="directory holding (or to hold) ledger.duckdb and new.pkl")
    parser.add_argument("--events", type=int, default=200_000,
                        help="demo events to load when the work directory has no ledger")
    parser.add_argument("--new", type=int, default=1_000, help="events held back for the update")
    parser.add_argument("--base", help="a checkout whose growthwatch package to compare with")
    parser.add_argument("--memory-limit", help="DuckDB memory_limit for the runs, e.g. 2GB")
    parser.add_argument("--families", default=",".join(FAMILIES), help="comma-separated")
    parser.add_argument("--phase", help=argparse.SUPPRESS)
    parser.add_argument("--name", help=argparse.SUPPRESS)
    parser.add_argument("--family", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.phase:
        _use_code(args.base)
        print(json.dumps(phase(args.work, args.name, args.family, args.memory_limit)))
        return
    args.work.mkdir(parents=True, exist_ok=True)
    here = Path(__file__).resolve().parent
    if not (args.work / "ledger.duckdb").exists():
        subprocess.run([sys.executable, str(here / "bench_metrics.py"), "--phase", "load",
                        "--work", str(args.work), "--events", str(args.events),
                        "--new", str(args.new)], check=True)  # fmt: skip
    codes = {"new": None, **({"base": args.base} if args.base else {})}
    results: dict[tuple[str, str, str], dict[str, Any]] = {}
    for family in args.families.split(","):
        for label, code in codes.items():
            name = f"run-{label}-{family}"
            shutil.copy(args.work / "ledger.duckdb", args.work / f"{name}.duckdb")
            (args.work / f"{name}.json").unlink(missing_ok=True)
            for step in ("full", "update"):
                cmd = [sys.executable, __file__, "--phase", step, "--work", str(args.work),
                       "--name", name, "--family", family]  # fmt: skip
                if code:
                    cmd += ["--base", code]
                if args.memory_limit:
                    cmd += ["--memory-limit", args.memory_limit]
                out = subprocess.run(cmd, capture_output=True, text=True, check=True)
                results[(family, label, step)] = r = json.loads(out.stdout.strip().splitlines()[-1])
                print(f"{family:8s} {label:4s} {step:6s} {r['seconds']:8.3f} s (the family "
                      f"{r['family_seconds']:.3f} s)  peak RSS {r['peak_mb']:6d} MB  (at open "
                      f"{r['rss_before_mb']} MB)  {r['points']:,} points", flush=True)  # fmt: skip
            for suffix in (".duckdb", ".json", ".duckdb.wal"):
                (args.work / f"{name}{suffix}").unlink(missing_ok=True)
    if args.base:
        print()
        for family in args.families.split(","):
            for step in ("full", "update"):
                new, base = results[(family, "new", step)], results[(family, "base", step)]
                print(f"{family:8s} {step:6s} new/base time {new['seconds'] / base['seconds']:.3f}"
                      f"   the family's {new['family_seconds'] / base['family_seconds']:.3f}"
                      f"   peak RSS {new['peak_mb'] / base['peak_mb']:.3f}")  # fmt: skip


if __name__ == "__main__":
    main()
