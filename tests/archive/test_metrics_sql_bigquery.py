"""The engagement metrics' SQL run where the history lives: each query of
``growthwatch.metrics.sql.queries``, transpiled by sqlglot to BigQuery, on the emulator
against the archive's ``events`` table (archived from a ledger by the real ``Archiver``)
gives the same cells as the same query in DuckDB on the ledger."""

from __future__ import annotations

import dataclasses
import random
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlglot
from archive_cases import new_archive

from bigquery_archive.archiver import Archiver
from bigquery_archive.position import ArchivePosition
from growthwatch import EventType, GrowthEvent, Ledger
from growthwatch.metrics.sql import queries as q
from growthwatch.testing.servers import BigQueryEmulator

pytestmark = pytest.mark.bigquery
START = datetime(2026, 3, 20, tzinfo=UTC)  # over Berlin's spring DST change and a month end
TYPES = ("signup", "active_use", "active_use", "activation", "payment", "refund")


def _events(n: int = 400, seed: int = 7) -> list[GrowthEvent]:
    rnd = random.Random(seed)
    out = []
    for i in range(n):
        kind = rnd.choice(TYPES)
        money = kind in ("payment", "refund")
        when = START + timedelta(minutes=rnd.choice([rnd.randrange(40 * 24 * 60), 9 * 24 * 60]))
        e = GrowthEvent(
            product=rnd.choice(["p1", "p2"]), type=EventType(kind), timestamp=when,
            value=5 if money else 1, currency="USD" if money else None,
            subject=f"u{rnd.randrange(12)}", source="test", source_id=f"e{i}",
        )  # fmt: skip
        if kind == "active_use" and rnd.random() < 0.3:
            e = dataclasses.replace(e, kind="pricing_view")  # a funnel step named by kind
        out.append(e)
    return out


def _rows(rows: list[tuple[object, ...]]) -> list[tuple[object, ...]]:
    return sorted(rows, key=lambda r: tuple("" if v is None else str(v) for v in r))


def test_transpiled_queries_on_the_emulator_equal_duckdb_on_the_ledger(
    bigquery_emulator: BigQueryEmulator, tmp_path: Path
) -> None:
    ledger = Ledger(tmp_path / "ledger.duckdb")
    ledger.append(_events())
    archive = new_archive(bigquery_emulator)
    position = ArchivePosition(tmp_path / "archive-state.json", archive.name)
    archiver = Archiver(ledger, archive, position, now=lambda: START + timedelta(days=60))
    archiver.run(archiver.plan(), metrics=False)
    # the archive's table requires a partition filter; the ledger takes the same one
    where = ("ts >= CAST('2026-01-01T00:00:00+00:00' AS TIMESTAMPTZ) "
             "AND ts < CAST('2027-01-01T00:00:00+00:00' AS TIMESTAMPTZ)")  # fmt: skip
    wanted = ("signup", "activation", "payment", "refund", "pricing_view")
    checked = 0
    for tz in ("UTC", "Europe/Berlin"):
        for table in ("events", f"{archive.dataset}.events"):
            src = q.Source(table, where)
            queries = [q.logo_retention(src, tz),
                       q.funnel(("signup", "activation", "payment"), 3, wanted, src, tz),
                       q.funnel(("active_use", "pricing_view"), 1, wanted, src, tz),
                       q.signup_counts(src, tz, 3)]  # fmt: skip
            if table == "events":
                local = [_rows(ledger.connection.execute(sql).fetchall()) for sql in queries]
                continue
            for sql, want in zip(queries, local, strict=True):
                (bq_sql,) = sqlglot.transpile(sql, read="duckdb", write="bigquery")
                got = _rows([tuple(r.values()) for r in archive.client.query(bq_sql).result()])
                assert got == want, (tz, sql[:80])
                assert len(want) >= 3  # cells, not an empty answer
                checked += 1
    assert checked == 8
    ledger.close()
