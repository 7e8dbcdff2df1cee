"""A partitioned build's staged copy of the events (``sql.state.partitioned``): each
partition holds exactly the rows ``queries.subject_part`` selects from the ledger (events
without a subject in one of them), the partitions are disjoint and cover every selected
row, one partition reads the ledger itself, and the copy is gone afterwards."""

from __future__ import annotations

from datetime import timedelta

import pytest
from metric_cases import ev, t

from growthwatch.metrics.sql import queries as q
from growthwatch.metrics.sql import state
from growthwatch.stores.ledger import Ledger

WHERE = "type IN ('session', 'signup')"


def _ledger() -> Ledger:
    ledger = Ledger()
    start = t("2026-03-01")
    events = []
    for i in range(120):
        kind = ("session", "signup", "active_use")[i % 3]
        subject = None if kind == "session" and i % 4 == 0 else f"u{i % 17}"
        events.append(ev(kind, start + timedelta(minutes=i), subject,
                         product=f"p{i % 2}", channel="web", source_id=f"e{i}"))  # fmt: skip
    ledger.append(events)
    return ledger


def _keys(con: object, source: q.Source) -> list[str]:
    sql = f"SELECT CAST(idempotency_key AS VARCHAR) {source.rows('TRUE')} ORDER BY 1"
    return [r[0] for r in con.execute(sql).fetchall()]  # type: ignore[attr-defined]


@pytest.mark.parametrize("limit", [None, "64MB"])  # sorted; a tight share: unsorted
@pytest.mark.parametrize("parts", [2, 3, 7])
def test_each_partition_is_the_ledgers_rows_of_its_users(parts: int, limit: str | None) -> None:
    with _ledger() as ledger:
        con = ledger.connection
        try:
            if limit is not None:
                con.execute(f"SET memory_limit = '{limit}'")
            with state.partitioned(con, "staged_events", WHERE, ("idempotency_key", "type"),
                                   parts) as part_of:  # fmt: skip
                got = [_keys(con, part_of(i)) for i in range(parts)]
                assert all(part_of(i).table == "staged_events" for i in range(parts))
            want = [_keys(con, q.Source(where=f"{WHERE} AND {q.subject_part(i, parts)}"))
                    for i in range(parts)]  # fmt: skip
            tables = con.execute("SELECT table_name FROM duckdb_tables() "
                                 "WHERE table_name = 'staged_events'").fetchall()  # fmt: skip
        finally:
            con.close()
    assert got == want
    flat = [k for part in got for k in part]
    assert len(flat) == len(set(flat)) == 80  # 40 sessions and 40 signups, each once
    assert sum(1 for part in got if part) > 1  # the users are spread
    assert tables == []  # the copy is dropped


def test_one_partition_reads_the_ledger() -> None:
    with _ledger() as ledger:
        con = ledger.connection
        try:
            with state.partitioned(con, "staged_events", WHERE, ("type",), 1) as part_of:
                src = part_of(0)
                assert (src.table, src.where) == ("events", WHERE)
                assert len(_keys(con, src)) == 80
        finally:
            con.close()
