"""Archive and replay throughput against the BigQuery emulator (events/s), with references.

One demo day of ``--events`` events (the seed's heavy day is 2,000,000; the default is
small for a quick run) goes into a ledger, then:

* archive: ledger -> NDJSON -> load job into staging -> MERGE into ``events`` (what
  ``growthwatch archive`` does per day); reference: serialising the same rows to NDJSON
  alone (the ledger's DuckDB ``COPY``), measured in the same run;
* replay: archive -> temporary ledger -> metrics engine -> embedded series store (what
  ``growthwatch archive replay --into series`` does); reference: the same engine's full
  recompute on the original ledger.

    .venv/bin/python benchmarks/bench_archive.py [--events 2000000] [--products 12]
"""

from __future__ import annotations

import argparse
import tempfile
import time
import uuid
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from bigquery_archive.archiver import Archiver, day_start
from bigquery_archive.bq_client import BigQueryArchive
from bigquery_archive.position import ArchivePosition
from bigquery_archive.replay import replay_series
from bigquery_archive.rows import export_events
from bigquery_archive.settings import BigQuerySettings
from growthwatch import Ledger, MetricsEngine, SeriesStore
from growthwatch.demo.generator import generate
from growthwatch.demo.pipeline import DEMO_METRICS
from growthwatch.demo.spec import DemoSpec
from growthwatch.testing.servers import BigQueryEmulator


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=100_000, help="events in the day")
    parser.add_argument("--products", type=int, default=12, help="demo products")
    args = parser.parse_args()
    spec = DemoSpec(products=args.products, days=1, events_per_day=args.events)
    day = spec.start
    root = Path(tempfile.mkdtemp(prefix="gw-bench-archive-"))
    ledger = Ledger(root / "ledger.duckdb")
    for chunk in generate(spec):
        ledger.append(chunk)
    n = ledger.count()
    print(f"ledger: {n:,} events on {day}")

    started = time.perf_counter()
    rows = export_events(ledger, root / "ref.ndjson", start=day_start(day),
                         end=day_start(day) + timedelta(days=1), after_seq=0,
                         archived_at=datetime.now(UTC))  # fmt: skip
    ref_s = time.perf_counter() - started
    size = (root / "ref.ndjson").stat().st_size
    print(f"reference, NDJSON serialisation alone: {rows:,} rows, {size / 2**20:,.1f} MiB "
          f"in {ref_s:.2f} s = {rows / ref_s:,.0f} events/s ({size / rows:.0f} bytes/event)")

    emulator = BigQueryEmulator().start()
    try:
        archive = BigQueryArchive(BigQuerySettings(emulator.project,
                                                   "bench_" + uuid.uuid4().hex[:8],
                                                   api_endpoint=emulator.url,
                                                   storage_endpoint=emulator.storage_endpoint))  # fmt: skip
        archive.ensure()
        position = ArchivePosition(None, archive.name)
        now = datetime.combine(day + timedelta(days=2), datetime.min.time(), tzinfo=UTC)
        archiver = Archiver(ledger, archive, position, now=lambda: now)
        started = time.perf_counter()
        (result,) = archiver.run(archiver.plan(), metrics=False)
        arch_s = time.perf_counter() - started
        assert result.added == n, (result, n)
        print(f"archive (export + load job + MERGE): {n:,} events in {arch_s:.2f} s = "
              f"{n / arch_s:,.0f} events/s; ratio to NDJSON alone {ref_s / arch_s:.3f}")
        started = time.perf_counter()
        again = archiver.run(archiver.plan(), metrics=False)
        print(f"second run (nothing new): {len(again)} day(s) in "
              f"{time.perf_counter() - started:.2f} s")

        with SeriesStore(root / "ref-series.duckdb") as ref_series:
            started = time.perf_counter()
            MetricsEngine(ledger, DEMO_METRICS).recompute([ref_series])
            eng_s = time.perf_counter() - started
        print(f"reference, engine recompute on the original ledger: {n:,} events in "
              f"{eng_s:.2f} s = {n / eng_s:,.0f} events/s")
        with SeriesStore(root / "series.duckdb") as series:
            started = time.perf_counter()
            replayed = replay_series(archive, DEMO_METRICS, [series], day,
                                     day + timedelta(days=1), history_from=date(day.year, 1, 1),
                                     workdir=root)  # fmt: skip
            rep_s = time.perf_counter() - started
        print(f"replay (archive read + engine -> series): {replayed.events_read:,} events in "
              f"{rep_s:.2f} s = {replayed.events_read / rep_s:,.0f} events/s, "
              f"{replayed.points:,} points; ratio to the engine alone {eng_s / rep_s:.3f}")
    finally:
        emulator.cleanup()
        ledger.close()


if __name__ == "__main__":
    main()
