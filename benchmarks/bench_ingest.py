"""Ingest benchmark: generate -> ledger -> InfluxDB on 2M events, against the ceiling.

The pipeline is ``growthwatch.ingest.ingest``, the path ``growthwatch demo`` runs: the
generator, the validation, the ledger append, the line-protocol encoder and the InfluxDB
writer in overlapped stages.
The ceiling is the same points posted as pre-encoded line protocol (10,000 lines per
request, no encoding work, no ledger), to a fresh database of the same real InfluxDB in the
same run, so the ratio is meaningful on a noisy machine.

Besides the rates it prints the CPU seconds of each stage's thread, of this process and of
the InfluxDB server in both phases (from ``/proc``), so a run on a busy machine still says
where the work went, and the load average before and after (the machine is shared).
``--runs N`` repeats the whole measurement on a fresh server and ledger and prints the
best and median ratio.

    .venv/bin/python benchmarks/bench_ingest.py [--events 2000000] [--runs 1]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import requests

from growthwatch.demo.generator import DemoSpec, generate
from growthwatch.ingest import IngestResult, ingest
from growthwatch.stores.event_points import event_points
from growthwatch.stores.influx import InfluxStore
from growthwatch.stores.ledger import Ledger
from growthwatch.stores.lineprotocol import encode_batch
from growthwatch.testing.servers import InfluxServer


@dataclass
class Run:
    events: int
    inserted: int
    points_in_influx: int
    pipeline_s: float
    pipeline_cpu: float  # this process, all threads
    pipeline_influx_cpu: float | None  # the InfluxDB server during the pipeline
    ingested: IngestResult
    close_s: float  # the ledger's close (DuckDB's checkpoint), after the pipeline
    ceiling_points: int
    ceiling_s: float
    ceiling_cpu: float
    ceiling_influx_cpu: float | None
    load: tuple[float, float]  # 1-minute load average before and after

    @property
    def rate(self) -> float:
        return self.events / self.pipeline_s

    @property
    def ceiling(self) -> float:
        return self.ceiling_points / self.ceiling_s

    @property
    def ratio(self) -> float:
        return self.rate / self.ceiling


def process_cpu(pid: int) -> float | None:
    """User + system CPU seconds of a process so far (Linux ``/proc``; None elsewhere)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def since(pid: int, before: float | None) -> float | None:
    now = process_cpu(pid)
    return None if now is None or before is None else now - before


def run_once(events: int) -> Run:
    # A one-day spec yields a little less than its mean (weekday seasonality): ask for 6%
    # more so that at least ``events`` arrive.
    spec = DemoSpec(days=1, events_per_day=int(events * 1.06))
    server = InfluxServer().start()
    tmp = Path(tempfile.mkdtemp(prefix="gw-bench-"))
    load_before = os.getloadavg()[0]
    try:
        assert server.process is not None
        pid = server.process.pid
        store = InfluxStore(server.url, "pipeline", batch_size=10_000)
        store.ensure_database()
        ledger = Ledger(tmp / "ledger.duckdb")
        influx0 = process_cpu(pid)
        t0, cpu0 = time.perf_counter(), time.process_time()
        # The production path (growthwatch.ingest, as `growthwatch demo` runs it).
        ingested = ingest(generate(spec), ledger, store)
        pipeline_s, pipeline_cpu = time.perf_counter() - t0, time.process_time() - cpu0
        pipeline_influx = since(pid, influx0)
        stored = server.query('SELECT count("value") FROM "growth_events"', "pipeline")
        points_in_influx = int(str(stored[0]["count"])) if stored else 0

        # The ceiling: the same points, pre-encoded, posted raw.
        lines = list(encode_batch(event_points(ledger.read(with_seq=True))))
        bodies = [
            ("\n".join(lines[i : i + 10_000]) + "\n").encode() for i in range(0, len(lines), 10_000)
        ]
        t_close = time.perf_counter()
        ledger.close()
        close_s = time.perf_counter() - t_close
        requests.post(f"{server.url}/query", params={"q": 'CREATE DATABASE "ceiling"'}, timeout=30)
        session = requests.Session()
        time.sleep(2.0)  # let InfluxDB finish with the pipeline's points before measuring it
        influx1 = process_cpu(pid)
        t1, cpu1 = time.perf_counter(), time.process_time()
        for body in bodies:
            resp = session.post(
                f"{server.url}/write", params={"db": "ceiling"}, data=body, timeout=60
            )
            resp.raise_for_status()
        ceiling_s, ceiling_cpu = time.perf_counter() - t1, time.process_time() - cpu1
        ceiling_influx = since(pid, influx1)
    finally:
        server.cleanup()
        shutil.rmtree(tmp, ignore_errors=True)  # 60 MB of ledger per million events
    return Run(
        events=ingested.received, inserted=ingested.inserted,
        points_in_influx=points_in_influx, pipeline_s=pipeline_s, pipeline_cpu=pipeline_cpu,
        pipeline_influx_cpu=pipeline_influx, ingested=ingested, close_s=close_s,
        ceiling_points=len(lines), ceiling_s=ceiling_s, ceiling_cpu=ceiling_cpu,
        ceiling_influx_cpu=ceiling_influx, load=(load_before, os.getloadavg()[0]),
    )  # fmt: skip


def per_million(seconds: float, events: int) -> str:
    return f"{seconds / events * 1e6:.2f} s per million"


def report(run: Run) -> None:
    n, stage = run.events, run.ingested
    print(f"events generated:                 {n:,} ({run.inserted:,} new in the ledger)")
    print(f"points in InfluxDB afterwards:    {run.points_in_influx:,}")
    print(f"load average (1 min) before/after: {run.load[0]:.1f} / {run.load[1]:.1f}")
    print(f"generate -> ledger -> InfluxDB:   {run.pipeline_s:6.2f} s  = {run.rate:,.0f} events/s")
    print(f"  CPU of this process (all threads): {run.pipeline_cpu:6.2f} s "
          f"= {per_million(run.pipeline_cpu, n)}")  # fmt: skip
    if run.pipeline_influx_cpu is not None:
        print(f"  CPU of the InfluxDB server:        {run.pipeline_influx_cpu:6.2f} s "
              f"= {per_million(run.pipeline_influx_cpu, n)}")  # fmt: skip
    print("  busy time per stage (they overlap), and the CPU of the stage's own thread:")
    for name, seconds in stage.busy.items():
        print(f"  {name:<8} {seconds:6.2f} s  ({n / max(seconds, 1e-9):,.0f} events/s alone)"
              f"  CPU {stage.cpu[name]:5.2f} s = {per_million(stage.cpu[name], n)}")  # fmt: skip
    others = run.pipeline_cpu - sum(stage.cpu.values())
    print(f"  other threads (DuckDB's workers, the main thread): CPU {others:5.2f} s")
    print(f"  not in the pipeline time: the ledger's close (DuckDB checkpoint) {run.close_s:.2f} s")
    print(f"ceiling (pre-encoded LP POSTs):   {run.ceiling_s:6.2f} s  = {run.ceiling:,.0f} points/s")
    influx = "" if run.ceiling_influx_cpu is None else (
        f", InfluxDB {run.ceiling_influx_cpu:.2f} s")  # fmt: skip
    print(f"  CPU: this process {run.ceiling_cpu:.2f} s{influx}")
    print(f"ratio pipeline / ceiling:         {run.ratio:.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=2_000_000,
                        help="events to generate and ingest (default 2,000,000)")
    parser.add_argument("--runs", type=int, default=1,
                        help="repeat the whole measurement this many times (fresh InfluxDB "
                             "and ledger each), then print the best and median ratio")  # fmt: skip
    args = parser.parse_args()
    runs = []
    for i in range(args.runs):
        if args.runs > 1:
            print(f"--- run {i + 1} of {args.runs}")
        runs.append(run_once(args.events))
        report(runs[-1])
    if len(runs) > 1:
        ratios = [r.ratio for r in runs]
        rates = [r.rate for r in runs]
        print(f"--- {len(runs)} runs: ratio best {max(ratios):.2f}, median "
              f"{statistics.median(ratios):.2f} (all: {', '.join(f'{x:.2f}' for x in ratios)}); "
              f"pipeline best {max(rates):,.0f} events/s, median {statistics.median(rates):,.0f}")


if __name__ == "__main__":
    main()
