"""Ingest benchmark: generate -> ledger -> InfluxDB on 2M events, against the ceiling.

The pipeline is ``growthwatch.ingest.ingest``, the path ``growthwatch demo`` runs: the
generator, the ledger append and the InfluxDB writer in overlapped stages. The ceiling is
the same points posted as pre-encoded line protocol (10,000 lines per
request, no encoding work, no ledger), to a fresh database of the same real InfluxDB in the
same run, so the ratio is meaningful on a noisy machine.

    .venv/bin/python benchmarks/bench_ingest.py [--events 2000000]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import requests

from growthwatch.demo.generator import DemoSpec, generate
from growthwatch.ingest import ingest
from growthwatch.stores.event_points import event_points
from growthwatch.stores.influx import InfluxStore
from growthwatch.stores.ledger import Ledger
from growthwatch.stores.lineprotocol import encode_batch
from growthwatch.testing.servers import InfluxServer


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=2_000_000)
    args = parser.parse_args()
    # A one-day spec yields a little less than its mean (weekday seasonality): ask for 6%
    # more so that at least --events arrive.
    spec = DemoSpec(days=1, events_per_day=int(args.events * 1.06))
    server = InfluxServer().start()
    tmp = Path(tempfile.mkdtemp(prefix="gw-bench-"))
    try:
        store = InfluxStore(server.url, "pipeline", batch_size=10_000)
        store.ensure_database()
        ledger = Ledger(tmp / "ledger.duckdb")
        t0, cpu0 = time.perf_counter(), time.process_time()
        # The production path (growthwatch.ingest, as `growthwatch demo` runs it).
        ingested = ingest(generate(spec), ledger, store)
        pipeline_s, pipeline_cpu = time.perf_counter() - t0, time.process_time() - cpu0
        generated, inserted, stage = ingested.received, ingested.inserted, ingested.busy
        stored = server.query('SELECT count("value") FROM "growth_events"', "pipeline")
        points_in_influx = int(str(stored[0]["count"])) if stored else 0

        # The ceiling: the same points, pre-encoded, posted raw.
        lines = list(encode_batch(event_points(ledger.read())))
        bodies = [
            ("\n".join(lines[i : i + 10_000]) + "\n").encode() for i in range(0, len(lines), 10_000)
        ]
        requests.post(f"{server.url}/query", params={"q": 'CREATE DATABASE "ceiling"'}, timeout=30)
        session = requests.Session()
        t1 = time.perf_counter()
        for body in bodies:
            resp = session.post(
                f"{server.url}/write", params={"db": "ceiling"}, data=body, timeout=60
            )
            resp.raise_for_status()
        ceiling_s = time.perf_counter() - t1
        ledger.close()
    finally:
        server.cleanup()

    rate = generated / pipeline_s
    ceiling = len(lines) / ceiling_s
    print(f"events generated:                 {generated:,} ({inserted:,} new in the ledger)")
    print(f"points in InfluxDB afterwards:    {points_in_influx:,}")
    print(f"generate -> ledger -> InfluxDB:   {pipeline_s:6.2f} s  = {rate:,.0f} events/s")
    print(f"  CPU of this process (all threads): {pipeline_cpu:6.2f} s, InfluxDB's not counted")
    print("  busy time per stage (they overlap), and the CPU of the stage's own thread:")
    for name, seconds in stage.items():
        print(f"  {name:<8} {seconds:6.2f} s  ({generated / max(seconds, 1e-9):,.0f} events/s alone)"
              f"  CPU {ingested.cpu[name]:5.2f} s = {ingested.cpu[name] / generated * 1e6:.2f} s"
              " per million")  # fmt: skip
    others = pipeline_cpu - sum(ingested.cpu.values())
    print(f"  other threads (DuckDB's workers): CPU {others:5.2f} s")
    print(f"ceiling (pre-encoded LP POSTs):   {ceiling_s:6.2f} s  = {ceiling:,.0f} points/s")
    print(f"ratio pipeline / ceiling:         {rate / ceiling:.2f}")


if __name__ == "__main__":
    main()
