"""Ledger: idempotent appends, range reads, rejected rows kept, safe across threads."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pandas as pd

from growthwatch.events import EventType, GrowthEvent
from growthwatch.frames import events_to_frame
from growthwatch.stores.ledger import Ledger

T0 = datetime(2025, 1, 1, tzinfo=UTC)


def payments(n: int, product: str = "acme", start: int = 0) -> list[GrowthEvent]:
    return [
        GrowthEvent(product=product, type=EventType.PAYMENT, timestamp=T0 + timedelta(hours=i),
                    value=Decimal("0.10"), currency="USD", subject=f"c{i}", source="stripe",
                    source_id=f"evt_{product}_{i}")
        for i in range(start, start + n)
    ]  # fmt: skip


def test_same_key_twice_is_stored_once_and_counted_as_duplicate() -> None:
    ledger = Ledger()
    first = ledger.append(payments(3))
    assert (first.received, first.inserted, first.duplicates) == (3, 3, 0)
    again = ledger.append(payments(3))
    assert (again.received, again.inserted, again.duplicates) == (3, 0, 3)
    overlap = ledger.append(payments(4, start=1))  # 1, 2 known; 3, 4 new
    assert (overlap.inserted, overlap.duplicates) == (2, 2)
    within = ledger.append(payments(1, start=10) * 3)  # the same event three times in one batch
    assert (within.inserted, within.duplicates) == (1, 2)
    assert ledger.count() == 6


def test_decimal_values_are_exact_in_storage() -> None:
    ledger = Ledger()
    ledger.append(payments(3))  # 3 x 0.10
    total = ledger.connection.execute("SELECT CAST(sum(value) AS VARCHAR) FROM events").fetchone()
    assert total is not None and Decimal(total[0]) == Decimal("0.30")  # not 0.30000000000000004


def test_read_by_product_type_and_half_open_time_range() -> None:
    ledger = Ledger()
    ledger.append(payments(48, "acme") + payments(5, "globex"))
    ledger.append([GrowthEvent(product="acme", type="signup", timestamp=T0, value=Decimal(1),  # type: ignore[arg-type]
                               subject="u1", source="mixpanel", source_id="m1")])  # fmt: skip
    day2 = ledger.read(products="acme", types="payment", start=T0 + timedelta(days=1),
                       end=T0 + timedelta(days=2))  # fmt: skip
    assert len(day2) == 24
    assert day2["ts"].min() == pd.Timestamp(T0 + timedelta(days=1))
    assert day2["ts"].max() == pd.Timestamp(T0 + timedelta(days=1, hours=23))
    assert day2["ts"].is_monotonic_increasing
    assert len(ledger.read(types=[EventType.SIGNUP])) == 1
    assert len(ledger.read(products=["globex", "acme"])) == 54
    assert ledger.products() == ["acme", "globex"]
    assert str(ledger.read()["ts"].dtype) == "datetime64[us, UTC]"


def test_after_seq_reads_only_new_events(tmp_path: Path) -> None:
    path = tmp_path / "l.duckdb"
    with Ledger(path) as ledger:
        ledger.append(payments(5))
        mark = ledger.max_seq()
        ledger.append(payments(5))  # duplicates get no new rows
        ledger.append(payments(2, start=5))
        assert sorted(ledger.read(after_seq=mark)["source_id"]) == ["evt_acme_5", "evt_acme_6"]
    with Ledger(path) as reopened:  # persisted
        assert reopened.count() == 7


def test_rejected_rows_are_kept_with_reasons_and_good_rows_stored() -> None:
    ledger = Ledger()
    frame = events_to_frame(payments(4))
    frame.loc[1, "currency"] = "usd"
    frame.loc[2, "subject"] = None
    result = ledger.append(frame)
    assert (result.inserted, len(result.rejected), result.duplicates) == (2, 2, 0)
    rejected = ledger.rejected()
    assert rejected["field"].tolist() == ["currency", "subject"]
    assert "evt_acme_1" in rejected["record"].iloc[0]
    assert set(ledger.read()["source_id"]) == {"evt_acme_0", "evt_acme_3"}


def test_concurrent_appends_count_every_event_once() -> None:
    ledger = Ledger()
    batches = [payments(50, start=25 * i) for i in range(8)]  # neighbours overlap by 25
    threads = [threading.Thread(target=ledger.append, args=(b,)) for b in batches]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert ledger.count() == 25 * 7 + 50


def test_keys_derived_in_sql_equal_the_python_definition() -> None:
    ids = ["evt_1", "in_ü€漢字", "a\x1fb", "with space,comma=equals", "x" * 200]
    events = [
        GrowthEvent(product="p", type=EventType.PAYMENT, timestamp=T0, value=Decimal(1),
                    currency="EUR", subject="c", source="stripe", source_id=i, kind="invoice.paid")
        for i in ids
    ]  # fmt: skip
    expected = {e.source_id: e.idempotency_key for e in events}
    as_frame, as_events = Ledger(), Ledger()
    as_frame.append(events_to_frame(events))  # bulk path: key computed in SQL
    as_events.append(events)  # small-batch path: the event's own key
    for ledger in (as_frame, as_events):
        stored = ledger.read().set_index("source_id")["idempotency_key"]
        assert {i: stored[i] for i in ids} == expected
    assert as_events.append(events_to_frame(events)).duplicates == len(ids)


def test_bulk_appends_keep_exactly_once_with_every_mix_of_duplicates(
    tmp_path: Path,
) -> None:
    """The bulk path stores only the rows whose key the ledger's key set does not hold (the
    first of repeats): every case of duplicates stores each key once and counts the rest."""
    ledger = Ledger(tmp_path / "ledger.duckdb")
    frame = events_to_frame(payments(200))  # more than the parameter-row path takes
    first = ledger.append(frame, read_back=True)
    assert (first.inserted, first.duplicates) == (200, 0)
    assert first.stored is not None and first.stored["seq"].tolist() == list(range(1, 201))
    # twice in one piece, none stored yet: the first of each is stored
    twice = events_to_frame(payments(100, start=500) * 2)
    result = ledger.append(twice, read_back=True)
    assert (result.inserted, result.duplicates) == (100, 100)
    assert result.stored is not None and len(result.stored) == 100
    assert result.stored["source_id"].is_unique
    # old and new mixed, right after a piece with duplicates
    mixed = ledger.append(events_to_frame(payments(150, start=100)), read_back=True)
    assert (mixed.inserted, mixed.duplicates) == (50, 100)
    assert mixed.stored is not None and len(mixed.stored) == 150
    # all new again, and seqs keep growing
    fresh = ledger.append(events_to_frame(payments(80, start=1000)), read_back=True)
    assert (fresh.inserted, fresh.duplicates) == (80, 0)
    assert fresh.stored is not None and fresh.stored["seq"].min() > mixed.stored["seq"].max()
    assert ledger.count() == 200 + 100 + 50 + 80
    keys = ledger.connection.execute(
        "SELECT count(*), count(DISTINCT idempotency_key) FROM events"
    ).fetchone()
    assert keys == (430, 430)
    seqs = ledger.read(with_seq=True)["seq"]
    assert seqs.is_unique
    # a rejected row in a bulk piece costs only itself
    bad = events_to_frame(payments(70, start=2000))
    bad.loc[5, "currency"] = "usd"
    partly = ledger.append(bad)
    assert (partly.inserted, len(partly.rejected), partly.duplicates) == (69, 1, 0)
    ledger.close()
    reopened = Ledger(tmp_path / "ledger.duckdb")
    assert reopened.count() == 430 + 69
    reopened.close()


def test_read_back_of_named_columns_gives_the_same_points(tmp_path: Path) -> None:
    from growthwatch.stores.event_points import POINT_COLUMNS, event_points

    frame = events_to_frame(payments(120))
    with Ledger(tmp_path / "a.duckdb") as a, Ledger(tmp_path / "b.duckdb") as b:
        full = a.append(frame, read_back=True).stored
        some = b.append(frame, read_back=POINT_COLUMNS).stored
        again = b.append(frame, read_back=POINT_COLUMNS).stored  # all already there
    assert full is not None and some is not None and again is not None
    assert list(some.columns) == [*POINT_COLUMNS, "seq"]
    expected = event_points(full).frame.reset_index(drop=True)
    pd.testing.assert_frame_equal(event_points(some).frame.reset_index(drop=True), expected)
    pd.testing.assert_frame_equal(event_points(again).frame.reset_index(drop=True), expected)
    try:
        Ledger().append(frame, read_back=("ts", "nope"))
    except ValueError as exc:
        assert "nope" in str(exc)
    else:
        raise AssertionError("an unknown column must be refused")


def test_read_back_gives_exactly_what_a_read_gives(tmp_path: Path) -> None:
    """The new rows of a bulk append are given back from the input (only their seqs are
    read): every column must equal what ``read`` gives for them, money rounded to the
    stored DECIMAL(18, 6) (halves, tiny and huge values), keys as hex, metadata as text;
    the rows already there are read back, and together they come in seq order."""
    from growthwatch.demo.generator import DemoSpec, generate

    demo = next(iter(generate(DemoSpec(products=2, days=3, events_per_day=400))))
    odd = events_to_frame(payments(40, start=9000))
    amounts = [0.1234565, 1 / 3, -2.5e-7, 5e-7, 1.5e-6, 123456789.1234565, 0.0000004999,
               -0.0000005, 2.675, 1e-9]  # fmt: skip
    odd["value"] = [amounts[i % len(amounts)] for i in range(len(odd))]
    frame = pd.concat([demo, odd], ignore_index=True)
    with Ledger(tmp_path / "ledger.duckdb") as ledger:
        ledger.append(frame.iloc[:150])  # some rows there already
        for read_back in (True, ("ts", "value", "subject", "mrr_after", "idempotency_key")):
            appended = ledger.append(frame, read_back=read_back) if read_back is True else \
                ledger.append(Ledger.prepare(frame.iloc[:50]), read_back=read_back)  # fmt: skip
            assert appended.stored is not None
            stored = appended.stored
            wanted = list(stored.columns)
            everything = ledger.read(with_seq=True)
            expected = everything[everything["idempotency_key"].isin(
                stored["idempotency_key"])].sort_values("seq")[wanted]  # fmt: skip
            assert stored["seq"].is_monotonic_increasing
            given = len(frame) if read_back is True else 50
            assert len(stored) == given - len(appended.rejected) > 1000 * (read_back is True)
            pd.testing.assert_frame_equal(stored.reset_index(drop=True),
                                          expected.reset_index(drop=True))  # fmt: skip
        # the piece's own new rows too (nothing there before): a fresh ledger
    with Ledger() as fresh:
        got = fresh.append(Ledger.prepare(frame), read_back=True).stored
        assert got is not None
        pd.testing.assert_frame_equal(got, fresh.read(with_seq=True).sort_values("seq")
                                      .reset_index(drop=True))  # fmt: skip
        stored_values = fresh.connection.execute(
            "SELECT CAST(value AS VARCHAR) FROM events WHERE source_id = ?",
            [odd["source_id"].iloc[1]],
        ).fetchone()
        assert stored_values == ("0.333333",)  # 1/3, stored to 6 decimals
        third = got[got["source_id"] == odd["source_id"].iloc[1]]["value"].tolist()
        assert third == [0.333333]  # given back as stored, not as given


def test_a_prepared_frame_stores_what_the_frame_stores(tmp_path: Path) -> None:
    frame = events_to_frame(payments(150))
    frame.loc[7, "currency"] = "usd"  # one bad row
    with Ledger(tmp_path / "a.duckdb") as a, Ledger(tmp_path / "b.duckdb") as b:
        plain = a.append(frame, read_back=True)
        prepared = b.append(Ledger.prepare(frame), read_back=True)
        again = b.append(Ledger.prepare(frame), read_back=True)  # all there: duplicates
        assert (plain.inserted, len(plain.rejected)) == (prepared.inserted, 1) == (149, 1)
        assert (again.inserted, again.duplicates, len(again.rejected)) == (0, 149, 1)
        assert plain.stored is not None and prepared.stored is not None
        pd.testing.assert_frame_equal(prepared.stored, plain.stored)
        assert again.stored is not None and len(again.stored) == 149
        pd.testing.assert_frame_equal(b.read(), a.read())
        assert b.rejected()["record"].iloc[0] == a.rejected()["record"].iloc[0]
        assert b.count() == 149


def test_a_bulk_insert_puts_back_the_thread_count_it_found(tmp_path: Path) -> None:
    """The bulk insert runs on one DuckDB thread (a setting of the whole database), then
    restores exactly what was set before, not DuckDB's default, also after a piece of
    duplicates only (nothing to insert)."""
    with Ledger(tmp_path / "ledger.duckdb") as ledger:
        ledger.connection.execute("SET threads = 3")
        frame = events_to_frame(payments(12_000))
        assert ledger.append(frame).inserted == 12_000
        assert ledger.connection.execute("SELECT current_setting('threads')").fetchone() == (3,)
        again = ledger.append(frame)  # every key there already: nothing inserted
        assert (again.inserted, again.duplicates) == (0, 12_000)
        assert ledger.connection.execute("SELECT current_setting('threads')").fetchone() == (3,)


def test_read_back_is_made_a_frame_on_first_use_from_what_the_append_read(
    tmp_path: Path,
) -> None:
    """``stored`` is built when first used (by a pipeline's encoder, off the ledger's
    thread), from the rows read under the append's lock: later appends and deletes do
    not change it, and it is built once."""
    from growthwatch.stores.event_points import POINT_COLUMNS

    with Ledger(tmp_path / "ledger.duckdb") as ledger:
        ledger.append(payments(30))
        appended = ledger.append(events_to_frame(payments(100)), read_back=POINT_COLUMNS)
        assert "stored" not in appended.__dict__  # not made a frame by the append
        expected = ledger.read(with_seq=True).sort_values("seq").reset_index(drop=True)
        ledger.append(payments(50, start=100))  # the ledger moves on before it is used
        ledger.delete_before(T0 + timedelta(hours=10))
        stored = appended.stored
        assert stored is not None and appended.stored is stored  # built once
        assert stored["seq"].tolist() == list(range(1, 101))  # 30 there, 70 new: seqs 1-100
        pd.testing.assert_frame_equal(stored, expected[[*POINT_COLUMNS, "seq"]])
        assert ledger.append(events_to_frame(payments(5))).stored is None  # no read back
        empty = ledger.append([], read_back=POINT_COLUMNS).stored
        assert empty is not None and empty.empty
        assert list(empty.columns) == [*POINT_COLUMNS, "seq"]
