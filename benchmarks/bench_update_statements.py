"""What one incremental update spends per ledger statement, and how many rows each reads.

    .venv/bin/python benchmarks/bench_update_statements.py SNAPSHOT WORK [--top 40] [--explain]

``SNAPSHOT`` is a directory holding a ledger right after a full recompute and the events
held back from it (``ledger.duckdb``, ``series.duckdb``, ``state.json``, ``new.pkl``: what
``bench_metrics.py --reuse DIR`` leaves in ``DIR/<events>`` after its full phase); it is
only read. Its files are copied into ``WORK`` (a fresh copy each run, so the update
appends to the same ledger every time), the held-back events are appended, and one
``MetricsEngine.update`` runs in this fresh process, as ``growthwatch metrics update``
does. Every statement the engine sends to the ledger's DuckDB is timed (CPU time of this
process, ``time.process_time``, and wall time: on a shared machine compare CPU), and the
statements are printed costliest first with the update's per-family timings.

``--explain`` also runs ``EXPLAIN ANALYZE`` of each repeatable statement (a ``SELECT`` or
a ``CREATE OR REPLACE TEMP TABLE ... AS``, right after it ran, over the same tables) and
prints the most rows any one operator of its plan produced: run it over a 1M and a 10M
snapshot to see which statements read rows in proportion to the history rather than to
the new events (why an update's cost grows with the ledger).
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import sys
import time
from pathlib import Path
from typing import Any

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))

import bench_metrics

from growthwatch import SeriesStore
from growthwatch.metrics.engine import MetricsEngine
from growthwatch.stores import ledger as ledger_module

_FILES = ("ledger.duckdb", "series.duckdb", "state.json", "new.pkl")
_REPEATABLE = re.compile(r"^\s*(SELECT|WITH|CREATE OR REPLACE TEMP TABLE \w+ AS )", re.I)
_ROWS = re.compile(r"([\d,]+) rows")


class _Timed:
    """A ledger cursor that times every ``execute`` (the engine's statements) and, when
    asked, counts the rows of each repeatable statement's plan."""

    def __init__(self, cursor: Any, stats: list[dict[str, Any]], explain: bool) -> None:
        self._cursor = cursor
        self._stats = stats
        self._explain = explain

    def __getattr__(self, name: str) -> Any:
        return getattr(self._cursor, name)

    def cursor(self) -> _Timed:
        return _Timed(self._cursor.cursor(), self._stats, self._explain)

    def execute(self, sql: str, *args: Any, **kwargs: Any) -> Any:
        cpu, wall = time.process_time(), time.perf_counter()
        result = self._cursor.execute(sql, *args, **kwargs)
        entry = {"cpu": time.process_time() - cpu, "wall": time.perf_counter() - wall,
                 "sql": " ".join(str(sql).split())}  # fmt: skip
        if self._explain and _REPEATABLE.match(str(sql)):
            entry["rows"] = _most_rows(self._cursor.cursor(), str(sql), args)
        self._stats.append(entry)
        return self if result is self._cursor else result


def _most_rows(cursor: Any, sql: str, args: tuple[Any, ...]) -> int | None:
    """The most rows one operator of the statement's plan produced (EXPLAIN ANALYZE)."""
    body = re.sub(r"^\s*CREATE OR REPLACE TEMP TABLE \w+ AS ", "", sql, flags=re.I)
    try:
        plan = cursor.execute("EXPLAIN ANALYZE " + body, *args).fetchall()[0][1]
    except Exception:  # a statement over a temp table dropped since: no figure
        return None
    finally:
        cursor.close()
    counts = [int(n.replace(",", "")) for n in _ROWS.findall(plan)]
    return max(counts) if counts else 0


def run(snapshot: Path, work: Path, top: int, explain: bool) -> dict[str, Any]:
    work.mkdir(parents=True, exist_ok=True)
    for name in _FILES:
        shutil.copyfile(snapshot / name, work / name)
    for wal in work.glob("*.wal"):
        wal.unlink()
    (work / "memory-limit-mb").write_text("2048")
    stats: list[dict[str, Any]] = []
    plain = ledger_module.Ledger.connection
    new = pd.read_pickle(work / "new.pkl")
    with ledger_module.Ledger(work / "ledger.duckdb") as ledger:
        ledger.append(new)
        settings = bench_metrics.bench_settings(work)
        series = SeriesStore(work / "series.duckdb", memory_limit=settings.series_memory_limit)
        engine = MetricsEngine(ledger, settings, state_path=work / "state.json")
        ledger_module.Ledger.connection = property(  # type: ignore[method-assign,assignment]
            lambda self: _Timed(plain.fget(self), stats, explain))  # type: ignore[attr-defined]
        try:
            cpu, wall = time.process_time(), time.perf_counter()
            result = engine.update([series])
            cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
        finally:
            ledger_module.Ledger.connection = plain  # type: ignore[method-assign]
            series.close()
    stats.sort(key=lambda s: s["cpu"], reverse=True)
    return {"events": result.events, "cpu": round(cpu, 3), "wall": round(wall, 3),
            "timings": result.timings, "statements": len(stats),
            "statements_cpu": round(sum(s["cpu"] for s in stats), 3), "top": stats[:top]}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("snapshot", type=Path, help="directory with ledger.duckdb, "
                        "series.duckdb, state.json, new.pkl after a full recompute (read only)")
    parser.add_argument("work", type=Path, help="scratch directory the snapshot is copied to")
    parser.add_argument("--top", type=int, default=40, help="statements printed (costliest)")
    parser.add_argument("--explain", action="store_true",
                        help="also the most rows one plan operator produced (EXPLAIN ANALYZE)")
    args = parser.parse_args()
    out = run(args.snapshot, args.work, args.top, args.explain)
    print(f"update of {out['events']} events: CPU {out['cpu']} s, wall {out['wall']} s; "
          f"{out['statements']} ledger statements, CPU {out['statements_cpu']} s")
    print("per family (wall s):", json.dumps(out["timings"]))
    print(f"{'cpu ms':>8} {'wall ms':>8} {'rows':>10}  statement")
    for s in out["top"]:
        rows = "" if s.get("rows") is None else f"{s['rows']:,}"
        print(f"{s['cpu'] * 1000:8.1f} {s['wall'] * 1000:8.1f} {rows:>10}  {s['sql'][:150]}")


if __name__ == "__main__":
    main()
