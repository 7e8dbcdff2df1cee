"""The overlapped ingest pipeline writes what the sequential one writes, and loses nothing.

The sequential reference is the old demo path, built here from the public pieces: append
everything, read the whole ledger back with its seqs, turn it into raw points, write them.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest

from growthwatch.demo.generator import DemoSpec, generate
from growthwatch.ingest import ingest
from growthwatch.retry import RetryPolicy
from growthwatch.stores.event_points import event_points
from growthwatch.stores.influx import InfluxStore, InfluxUnavailable
from growthwatch.stores.ledger import Ledger
from growthwatch.testing.servers import InfluxServer, free_port

SPEC = DemoSpec(products=3, days=20, events_per_day=1_500)
PIECE = 3_000  # small pieces, so that ~10 of them are in flight through the stages


def frames() -> Iterator[pd.DataFrame]:
    return generate(SPEC)


def points(server: InfluxServer, db: str, where: str = "") -> list[dict[str, object]]:
    rows = server.query(f'SELECT * FROM "growth_events" {where}', db)
    return sorted(rows, key=lambda r: (str(r["time"]), str(r["product"]), str(r["type"])))


def count(server: InfluxServer, db: str) -> int:
    rows = server.query('SELECT count("value") FROM "growth_events"', db)
    return int(str(rows[0]["count"])) if rows else 0


def sequential(server: InfluxServer, db: str, ledger: Ledger) -> None:
    """The old path: whole ledger read back with seqs, then written in one go."""
    store = InfluxStore(server.url, db)
    store.ensure_database()
    store.write(event_points(ledger.read(with_seq=True)))


def ns_points(server: InfluxServer, db: str) -> set[tuple[int, str, str, str]]:
    """Every point as (time ns, product, type, subject), read at nanosecond precision."""
    resp = InfluxStore(server.url, db).query(
        'SELECT "subject", "product", "type" FROM "growth_events"', epoch="ns"
    )
    out: set[tuple[int, str, str, str]] = set()
    for series in resp:
        for t, subject, product, etype in series["values"]:
            out.add((int(t), str(product), str(etype), str(subject)))
    return out


@pytest.mark.influx
def test_overlapped_pipeline_writes_the_points_the_sequential_one_does(
    tmp_path: Path, influx_server: InfluxServer, influx_db: str
) -> None:
    store = InfluxStore(influx_server.url, influx_db)
    store.ensure_database()
    with Ledger(tmp_path / "ledger.duckdb") as ledger:
        result = ingest(frames(), ledger, store, piece_rows=PIECE, depth=2)
        stored = ledger.count()
        ledger_events = ledger.read(with_seq=True)
        reference_db = influx_db + "_seq"
        sequential(influx_server, reference_db, ledger)
    expected = sum(len(f) for f in frames())  # an independent count of the input
    assert result.received == result.inserted == stored == expected > 5 * PIECE
    assert result.influx.points == expected and result.influx.spooled == 0
    assert count(influx_server, influx_db) == count(influx_server, reference_db) == expected
    # every point, at nanosecond precision, and the fields of one product's
    assert ns_points(influx_server, influx_db) == ns_points(influx_server, reference_db)
    product = str(ledger_events["product"].iloc[0])
    where = f"WHERE \"product\" = '{product}'"
    sample = points(influx_server, influx_db, where)
    assert sample and sample == points(influx_server, reference_db, where)
    # the time offsets are the ledger's seqs, one point per event
    ms = ledger_events["ts"].astype("datetime64[ns, UTC]").astype("int64") // 1_000_000
    expected_ns = set(ms * 1_000_000 + ledger_events["seq"] % 1_000_000)
    assert {p[0] for p in ns_points(influx_server, influx_db)} == expected_ns


@pytest.mark.influx
def test_a_rerun_finds_duplicates_and_rewrites_the_same_points(
    tmp_path: Path, influx_server: InfluxServer, influx_db: str
) -> None:
    store = InfluxStore(influx_server.url, influx_db)
    store.ensure_database()
    with Ledger(tmp_path / "ledger.duckdb") as ledger:
        first = ingest(frames(), ledger, store, piece_rows=PIECE)
        before = ns_points(influx_server, influx_db)
        second = ingest(frames(), ledger, store, piece_rows=PIECE)
        assert ledger.count() == first.inserted
    assert (second.inserted, second.duplicates) == (0, first.inserted)
    assert second.influx.points == first.inserted  # every event's point, rewritten
    assert ns_points(influx_server, influx_db) == before


@pytest.mark.influx
def test_influxdb_unreachable_spools_everything_and_the_replay_loses_nothing(
    tmp_path: Path, influx_server: InfluxServer, influx_db: str
) -> None:
    down = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    quick = RetryPolicy(max_retries=1, backoff=0.0, jitter=False)
    spool = tmp_path / "spool"
    store = InfluxStore(down, influx_db, spool_dir=spool, retry=quick, timeout=2)
    with Ledger(tmp_path / "ledger.duckdb") as ledger:
        result = ingest(frames(), ledger, store, piece_rows=PIECE)
        assert ledger.count() == result.inserted
        reference_db = influx_db + "_seq"
        sequential(influx_server, reference_db, ledger)
    assert result.influx.points == 0 and result.influx.spooled == result.inserted
    assert store.spool is not None and store.spool.lines() == result.inserted

    back = InfluxStore(influx_server.url, influx_db, spool_dir=spool)
    back.ensure_database()
    replayed = back.flush_spool()
    assert replayed.points == result.inserted and back.spool is not None and not len(back.spool)
    assert count(influx_server, influx_db) == result.inserted
    assert ns_points(influx_server, influx_db) == ns_points(influx_server, reference_db)


def test_influxdb_down_without_a_spool_raises_after_the_ledger_has_everything(
    tmp_path: Path,
) -> None:
    down = f"http://127.0.0.1:{free_port()}"
    store = InfluxStore(down, "db", retry=RetryPolicy(max_retries=0, backoff=0.0), timeout=2)
    with Ledger(tmp_path / "ledger.duckdb") as ledger:
        with pytest.raises(InfluxUnavailable):
            ingest(frames(), ledger, store, piece_rows=PIECE)
        assert ledger.count() == sum(len(f) for f in frames())


def test_a_failing_source_stops_the_pipeline_and_keeps_what_was_stored(tmp_path: Path) -> None:
    def broken() -> Iterator[pd.DataFrame]:
        first = next(iter(frames()))
        yield first
        raise RuntimeError("source broke")

    with Ledger(tmp_path / "ledger.duckdb") as ledger:
        with pytest.raises(RuntimeError, match="source broke"):
            ingest(broken(), ledger, None, piece_rows=PIECE)
        assert ledger.count() == len(next(iter(frames())))


def test_read_back_returns_new_and_existing_rows_with_their_seq(tmp_path: Path) -> None:
    frame = next(iter(frames())).iloc[:500]
    with Ledger(tmp_path / "ledger.duckdb") as ledger:
        first = ledger.append(frame.iloc[:300], read_back=True)
        both = ledger.append(frame, read_back=True)  # 300 already there, 200 new
        everything = ledger.read(with_seq=True)
    assert first.stored is not None and both.stored is not None
    assert (both.inserted, both.duplicates, len(both.stored)) == (200, 300, 500)
    assert sorted(both.stored["seq"]) == sorted(everything["seq"])
    by_key = everything.set_index("idempotency_key")["seq"]
    got = both.stored.set_index("idempotency_key")["seq"]
    assert (got == by_key[got.index].to_numpy()).all()


class BrokenLedger(Ledger):
    """A ledger whose disk fills up at the second piece."""

    calls = 0

    def append(self, events: object, *, read_back: bool = False) -> object:  # type: ignore[override]
        self.calls += 1
        if self.calls == 2:
            raise OSError("disk full")
        return super().append(events, read_back=read_back)  # type: ignore[arg-type]


@pytest.mark.influx
def test_a_failing_ledger_stops_the_pipeline_at_once(
    tmp_path: Path, influx_server: InfluxServer, influx_db: str
) -> None:
    store = InfluxStore(influx_server.url, influx_db)
    store.ensure_database()
    ledger = BrokenLedger(tmp_path / "ledger.duckdb")
    try:
        with pytest.raises(OSError, match="disk full"):
            ingest(frames(), ledger, store, piece_rows=PIECE)
        assert ledger.calls == 2 and ledger.count() == PIECE  # nothing after the failure
        assert count(influx_server, influx_db) == PIECE  # the stored piece has its points
    finally:
        ledger.close()


@pytest.mark.influx
def test_duplicates_within_and_across_pieces_and_bad_rows_store_each_good_event_once(
    tmp_path: Path, influx_server: InfluxServer, influx_db: str
) -> None:
    """The generator's frames (Arrow-backed text) re-cut so that events repeat inside a
    piece and in later pieces, with broken rows among them: each good event is stored
    once and has one point, every repeat counts as a duplicate, every broken row is
    rejected. The expected numbers come from the mutation, not from the pipeline."""
    events = pd.concat(list(frames()), ignore_index=True)
    n = len(events)
    order = list(range(n))
    order[100:100] = list(range(0, 40))  # repeats inside the first piece
    order += list(range(2_000, 2_500)) + list(range(n - 300, n))  # repeats in later pieces
    mixed = events.iloc[order].reset_index(drop=True)
    broken = [5, 3_333, len(mixed) - 7]  # a row's first copy (5) and a late repeat's
    mixed.loc[broken, "currency"] = "usd"  # lower case: refused for money, unwanted else
    bad_ids = set(mixed.loc[broken, "source_id"])
    good = mixed.drop(index=broken)
    distinct = good["source_id"].nunique()
    store = InfluxStore(influx_server.url, influx_db)
    store.ensure_database()
    with Ledger(tmp_path / "ledger.duckdb") as ledger:
        result = ingest([mixed.iloc[i : i + 4_000] for i in range(0, len(mixed), 4_000)],
                        ledger, store, piece_rows=PIECE)  # fmt: skip
        stored = ledger.read()
    assert result.received == len(mixed)
    assert result.rejected == len(broken)
    assert result.inserted == distinct == len(stored) == stored["source_id"].nunique()
    assert result.duplicates == len(good) - distinct
    # an event broken in one copy and good in another is stored from the good copy
    assert set(stored["source_id"]) == set(good["source_id"])
    assert bad_ids - set(good["source_id"]) == bad_ids - set(stored["source_id"])
    assert count(influx_server, influx_db) == distinct
