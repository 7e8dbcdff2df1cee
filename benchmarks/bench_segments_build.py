"""The segment family's full build alone: time and peak RSS of the segment frames over a
whole ledger, the in-memory reference (``segments.segment_frames`` over every event at
once) against the totals built product group by product group (``Segments._built``, then
``segment_frames_from``), each in a fresh process so each peak is its own.

    .venv/bin/python benchmarks/bench_segments_build.py --work DIR [--chunk-events N ...]

``DIR`` holds a ledger as ``bench_metrics.py --reuse DIR`` leaves it
(``DIR/<events>/ledger.duckdb``; a 1M-event one is generated in about a minute by
``bench_metrics.py --events 1000000 --reuse DIR``). It only reads the events; the totals
and the indexed copies are written into the ledger file's ``state_segments_*`` tables.
Prints seconds and peak MB of each run and the ratios to the reference.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
from bench_metrics import bench_settings

from growthwatch.metrics.families.segments import Segments
from growthwatch.metrics.reads import LedgerView
from growthwatch.metrics.segment_totals import segment_frames_from
from growthwatch.metrics.segments import TYPES, segment_frames
from growthwatch.metrics.touched import max_seq
from growthwatch.stores.ledger import Ledger


def one(work: Path, mode: str, chunk_events: int) -> dict[str, float]:
    """One build in this process: ``reference`` or ``totals`` (wall and CPU seconds: the
    machine is shared, CPU time is what compares)."""
    settings = bench_settings(work)
    if chunk_events:
        settings = dataclasses.replace(settings, chunk_events=chunk_events)
    with Ledger(work / "ledger.duckdb") as ledger:
        view = LedgerView(ledger, settings)
        started, cpu = time.perf_counter(), time.process_time()
        family = Segments()
        if mode == "reference":
            events = view.events(TYPES, columns=family.columns)
            frames = segment_frames(events, settings, events["ts"].max())
        else:
            upto = max_seq(view)
            totals = family._built(view, upto)
            cursor = ledger.connection
            (last,) = cursor.execute("SELECT epoch_us(max(ts)) FROM events WHERE type IN "
                                     "(SELECT unnest(?))", [list(TYPES)]).fetchone() or (0,)  # fmt: skip
            cursor.close()
            frames = segment_frames_from(totals, settings, pd.Timestamp(int(last), unit="us", tz="UTC"))
        rows = sum(len(f) for f in frames.values())
        return {"seconds": time.perf_counter() - started, "rows": rows,
                "cpu": time.process_time() - cpu,
                "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                "chunk_events": settings.chunk_events}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--work",
        type=Path,
        required=True,
        help="a directory holding ledger.duckdb (bench_metrics --reuse DIR/<events>)",
    )
    parser.add_argument(
        "--chunk-events",
        type=int,
        nargs="*",
        default=[0],
        help="chunk_events values to build with (0: the memory limit's)",
    )
    parser.add_argument("--one", choices=["reference", "totals"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        print(json.dumps(one(args.work, args.one, args.chunk_events[0])))
        return
    runs = [("reference", 0), *(("totals", c) for c in args.chunk_events)]
    results = []
    for mode, chunk in runs:
        proc = subprocess.run([sys.executable, __file__, "--work", str(args.work), "--one", mode,
                               "--chunk-events", str(chunk)], capture_output=True, text=True,
                              check=True)  # fmt: skip
        got = json.loads(proc.stdout.strip().splitlines()[-1])
        results.append((mode, got))
    ref = results[0][1]
    print(
        "| build | chunk_events | seconds | CPU s | peak MB | rows | time / reference "
        "| CPU / reference | peak / reference |"
    )
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for mode, got in results:
        print(
            f"| {mode} | {int(got['chunk_events']):,} | {got['seconds']:.1f} | {got['cpu']:.1f} | "
            f"{got['peak_mb']:,.0f} | {int(got['rows']):,} | {got['seconds'] / ref['seconds']:.2f} | "
            f"{got['cpu'] / ref['cpu']:.2f} | {got['peak_mb'] / ref['peak_mb']:.2f} |"
        )


if __name__ == "__main__":
    main()
