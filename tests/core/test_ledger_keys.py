"""Exactly-once without a primary key: the ledger's key set across pieces, restarts, other
writers of the file, deletes, and the rebuild of a ledger made with the primary key."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import duckdb
import pandas as pd
import pytest

from growthwatch.demo.generator import DemoSpec, generate
from growthwatch.events import EventType, GrowthEvent
from growthwatch.frames import events_to_frame
from growthwatch.ingest import ingest
from growthwatch.stores import ledger as ledger_module
from growthwatch.stores.keyset import Keys, KeySet
from growthwatch.stores.ledger import Ledger

T0 = datetime(2025, 1, 1, tzinfo=UTC)

# The events table of ledgers before the key set (growthwatch/stores/ledger.py until then).
OLD_SCHEMA = """
CREATE SEQUENCE IF NOT EXISTS event_seq START 1;
CREATE TABLE IF NOT EXISTS events (
    idempotency_key UUID PRIMARY KEY,
    seq BIGINT NOT NULL DEFAULT nextval('event_seq'),
    product VARCHAR NOT NULL, type VARCHAR NOT NULL, ts TIMESTAMPTZ NOT NULL,
    value DECIMAL(18, 6) NOT NULL, currency VARCHAR, subject VARCHAR,
    mrr_before DECIMAL(18, 6), mrr_after DECIMAL(18, 6), plan VARCHAR, channel VARCHAR,
    metadata VARCHAR, source VARCHAR NOT NULL, source_id VARCHAR NOT NULL,
    kind VARCHAR NOT NULL, ingested_at TIMESTAMPTZ NOT NULL
);
CREATE TABLE IF NOT EXISTS rejected_events (
    rejected_at TIMESTAMPTZ NOT NULL, source VARCHAR, field VARCHAR NOT NULL,
    value VARCHAR, reason VARCHAR NOT NULL, record VARCHAR
);
"""


def payments(n: int, start: int = 0) -> list[GrowthEvent]:
    return [
        GrowthEvent(product="acme", type=EventType.PAYMENT, timestamp=T0 + timedelta(hours=i),
                    value=Decimal("1.25"), currency="USD", subject=f"c{i}", source="stripe",
                    source_id=f"evt_{i}")
        for i in range(start, start + n)
    ]  # fmt: skip


def distinct_keys(ledger: Ledger) -> tuple[int, int]:
    row = ledger.connection.execute(
        "SELECT count(*), count(DISTINCT idempotency_key) FROM events"
    ).fetchone()
    assert row is not None
    return int(row[0]), int(row[1])


def has_primary_key(path: Path) -> bool:
    con = duckdb.connect(str(path), read_only=True)
    try:
        row = con.execute("SELECT count(*) FROM duckdb_constraints() WHERE table_name = "
                          "'events' AND constraint_type = 'PRIMARY KEY'").fetchone()  # fmt: skip
    finally:
        con.close()
    return bool(row and row[0])


def test_the_events_table_has_no_key_index_and_stores_each_key_once(tmp_path: Path) -> None:
    path = tmp_path / "ledger.duckdb"
    with Ledger(path) as ledger:
        assert ledger.append(events_to_frame(payments(300))).inserted == 300
        # small (parameter rows) and bulk (frame) appends, old and new mixed, and repeats
        # inside one append
        small = ledger.append(payments(10, start=295) + payments(3, start=400) * 2)
        assert (small.inserted, small.duplicates) == (8, 8)
        bulk = ledger.append(events_to_frame(payments(200, start=250) * 2))
        # 250..449 twice: 250..304 and 400..402 are stored, the other 142 are new
        assert (bulk.inserted, bulk.duplicates) == (142, 400 - 142)
        assert distinct_keys(ledger) == (300 + 8 + 142,) * 2
        assert ledger.read()["source_id"].tolist() == [f"evt_{i}" for i in range(450)]
    assert not has_primary_key(path)


def test_exactly_once_across_restarts(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A re-run after a restart (a fresh key set, loaded from the file in batches) stores
    nothing twice, through the bulk pipeline and the webhook path."""
    monkeypatch.setattr(ledger_module, "_LOAD_ROWS", 700)  # several batches, several runs
    path = tmp_path / "ledger.duckdb"
    spec = DemoSpec(products=2, days=5, events_per_day=800)
    with Ledger(path) as ledger:
        first = ingest(generate(spec), ledger, piece_rows=1_000)
    assert first.inserted == first.received > 3_000
    with Ledger(path) as ledger:
        again = ingest(generate(spec), ledger, piece_rows=1_000)
        assert (again.inserted, again.duplicates) == (0, first.received)
        assert ledger.append(payments(5)).inserted == 5
    with Ledger(path) as ledger:
        assert (ledger.append(payments(7)).inserted, ledger.count()) == (2, first.received + 7)
        assert ledger.append(events_to_frame(payments(100))).inserted == 93
        assert distinct_keys(ledger) == (first.received + 100,) * 2


def test_other_writers_of_the_file_are_seen(tmp_path: Path) -> None:
    """Two ledgers on one file in one process, and rows added by plain SQL: the key set
    learns every stored key from the rows after the seq it knows."""
    path = tmp_path / "ledger.duckdb"
    a, b = Ledger(path), Ledger(path)
    try:
        assert a.append(events_to_frame(payments(100))).inserted == 100
        assert b.append(events_to_frame(payments(150))).inserted == 50  # b: a's 100 are there
        assert a.append(payments(160)).inserted == 10  # a: b's 50 are there
        b.connection.execute(
            "INSERT INTO events (idempotency_key, product, type, ts, value, source, source_id, "
            "kind, ingested_at) SELECT CAST(substr(sha256('stripe' || chr(31) || 'payment' "
            "|| chr(31) || 'evt_500'), 1, 32) AS UUID), 'acme', 'payment', ?, 1, 'stripe', "
            "'evt_500', 'payment', ?",
            [T0, T0],
        )
        assert a.append(payments(1, start=500)).inserted == 0  # the SQL row is evt_500
        assert distinct_keys(a) == (161, 161)
    finally:
        a.close()
        b.close()


def test_a_deleted_event_can_be_stored_again(tmp_path: Path) -> None:
    """As with the primary key: deleting events (retention) forgets their keys, also for
    another ``Ledger`` of the same file."""
    path = tmp_path / "ledger.duckdb"
    with Ledger(path) as ledger, Ledger(path) as other:
        ledger.append(events_to_frame(payments(100)))
        assert other.append(payments(3)).inserted == 0  # other's key set is loaded
        removed = ledger.delete_before(T0 + timedelta(hours=40))
        assert removed == 40
        back = ledger.append(events_to_frame(payments(100)))
        assert (back.inserted, back.duplicates) == (40, 60)
        assert distinct_keys(ledger) == (100, 100)
        ledger.delete_before(T0 + timedelta(hours=2))
        assert (other.append(payments(5)).inserted, other.count()) == (2, 100)


def test_a_ledger_with_the_primary_key_is_rebuilt_without_it(tmp_path: Path) -> None:
    """An old ledger file (primary key on the key) keeps its rows, seqs, sequence and
    rejected rows; duplicates of its events are still refused afterwards."""
    source = tmp_path / "source.duckdb"
    with Ledger(source) as ledger:
        ledger.append(events_to_frame(payments(500)))
        ledger.delete_before(T0 + timedelta(hours=3))  # a gap in the seqs, as in life
        expected = ledger.read(with_seq=True)
    old = tmp_path / "old.duckdb"
    con = duckdb.connect(str(old))
    con.execute(OLD_SCHEMA)
    con.execute(f"ATTACH '{source}' AS src (READ_ONLY)")
    con.execute("INSERT INTO events SELECT * FROM src.events ORDER BY seq")
    con.execute("SELECT max(nextval('event_seq')) FROM range(500)").fetchall()  # as it was
    con.execute("INSERT INTO rejected_events VALUES (?, 'stripe', 'currency', 'usd', 'bad', '{}')",
                [T0])  # fmt: skip
    con.execute("DETACH src")
    con.close()
    assert has_primary_key(old)

    with Ledger(old) as ledger:
        pd.testing.assert_frame_equal(ledger.read(with_seq=True), expected)
        assert len(ledger.rejected()) == 1
        again = ledger.append(events_to_frame(payments(510)), read_back=True)
        assert (again.inserted, again.duplicates) == (3 + 10, 497)
        assert again.stored is not None
        new_seqs = again.stored["seq"][again.stored["seq"] > 500]
        assert len(new_seqs) == 13 and new_seqs.is_unique  # the sequence went on from 500
    assert not has_primary_key(old)
    with Ledger(old) as ledger:  # opening it again changes nothing
        assert ledger.count() == 510
        assert distinct_keys(ledger) == (510, 510)


def test_keys_loaded_ahead_of_the_first_append(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``load_keys`` (what ``serve`` runs at start) reads every stored key, so the first
    append loads none of the history's keys and still stores nothing twice."""
    path = tmp_path / "ledger.duckdb"
    with Ledger(path) as ledger:
        ledger.append(events_to_frame(payments(50)))
    with Ledger(path) as ledger:
        ledger.load_keys()
        loaded: list[int] = []  # keys added to the set from the table (not in piece order)
        add = KeySet.add

        def spy(self: KeySet, keys: Keys, in_order: bool = False) -> None:
            if not in_order:
                loaded.append(len(keys))
            add(self, keys, in_order=in_order)

        monkeypatch.setattr(KeySet, "add", spy)
        result = ledger.append(payments(55))
        assert (result.inserted, result.duplicates, loaded) == (5, 50, [])
        assert ledger.count() == 55
