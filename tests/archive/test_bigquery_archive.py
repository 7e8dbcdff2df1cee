"""The archive against the real BigQuery emulator with the real ``google-cloud-bigquery``."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pandas as pd
import pytest
from archive_cases import NOW, Archived, build_ledger, new_archive
from google.cloud import bigquery

from bigquery_archive import queries
from bigquery_archive.archiver import Archiver, DayWork, day_start
from bigquery_archive.bq_client import UnprunedQuery
from bigquery_archive.position import ArchivePosition
from bigquery_archive.reader import ArchiveReader
from bigquery_archive.retention import trim_influx, trim_ledger
from bigquery_archive.schema import EVENTS, METRIC_ROWS, SchemaConflict
from bigquery_archive.settings import RetentionSettings
from growthwatch import GrowthEvent, InfluxStore, Ledger, MetricsEngine, SeriesStore
from growthwatch.demo.pipeline import DEMO_METRICS
from growthwatch.demo.spec import DemoSpec
from growthwatch.testing.servers import BigQueryEmulator, InfluxServer

pytestmark = pytest.mark.bigquery
UTC_OCT = (datetime(2026, 10, 1, tzinfo=UTC), datetime(2026, 11, 1, tzinfo=UTC))


def _ledger_day_counts(ledger: Ledger) -> dict[str, int]:
    rows = ledger.connection.execute(
        "SELECT strftime(timezone('UTC', ts), '%Y-%m-%d'), count(*) FROM events GROUP BY 1"
    ).fetchall()
    return {d: int(n) for d, n in rows}


def test_tables_are_day_partitioned_and_clustered(archived: Archived) -> None:
    client = archived.archive.client
    for spec in (EVENTS, METRIC_ROWS):
        table = client.get_table(archived.archive._id(spec.name))
        assert table.time_partitioning.type_ == bigquery.TimePartitioningType.DAY
        assert table.time_partitioning.field == spec.partition_column
        assert table.clustering_fields == list(spec.clustering)
        types = {f.name: f.field_type for f in table.schema}
        assert set(types) == set(spec.column_names)
    events = {f.name: f.field_type for f in client.get_table(archived.archive._id("events")).schema}
    assert events["value"] == events["mrr_before"] == events["mrr_after"] == "NUMERIC"
    assert events["ts"] == "TIMESTAMP"


def test_every_day_is_archived_once(archived: Archived) -> None:
    """Row counts per day in BigQuery equal the ledger's (counted by the ledger's SQL)."""
    counts = archived.archive.day_counts(day_start(archived.first), day_start(archived.end))
    assert counts == _ledger_day_counts(archived.ledger)


def test_a_month_of_revenue_is_exact_to_the_cent(archived: Archived) -> None:
    types = ["payment", "refund"]
    got = archived.archive.sum_value(*UTC_OCT, types)
    rows = archived.ledger.connection.execute(
        "SELECT product, type, currency, CAST(sum(value) AS VARCHAR) FROM events WHERE ts >= ? "
        "AND ts < ? AND type IN ('payment', 'refund') GROUP BY ALL", list(UTC_OCT),
    ).fetchall()  # fmt: skip
    expected = {(p, t, c): Decimal(s) for p, t, c, s in rows}
    assert got == expected
    # the odd payments alone: exact sum by hand 1567921.593333
    odd = archived.archive.client.query(
        f"SELECT SUM(value) AS s FROM `{archived.archive._id('events')}` WHERE ts >= "
        "TIMESTAMP '2026-10-01' AND ts < TIMESTAMP '2026-11-01' AND source = 'test'"
    ).result()
    assert next(iter(odd))["s"] == Decimal("1567921.593333")


def test_every_statement_prunes_partitions(archived: Archived, tmp_path: Path) -> None:
    archive = archived.archive
    archive.read_events(*UTC_OCT, types=["payment"], products=["acme-crm"])
    archive.metric_rows(*UTC_OCT)
    assert archive.executed, "nothing was recorded"
    for sql in archive.executed:
        assert queries.prunes(sql), sql
        assert "@start" in sql and "@end" in sql
    assert not queries.prunes(f"SELECT * FROM `{archive._id('events')}` WHERE product = 'x'")
    with pytest.raises(UnprunedQuery):
        archive.query(f"SELECT count(*) FROM `{archive._id('events')}`", start=UTC_OCT[0],
                      end=UTC_OCT[1])  # fmt: skip


def test_loading_a_day_twice_gives_the_same_rows(
    bigquery_emulator: BigQueryEmulator, tmp_path: Path
) -> None:
    spec = DemoSpec(products=1, days=3, events_per_day=200)
    ledger = build_ledger(tmp_path / "l.duckdb", spec)
    archive = new_archive(bigquery_emulator, storage=False)  # reads over REST pages
    day = date(2026, 10, 30)
    keys = []
    for run in range(2):
        position = ArchivePosition(tmp_path / f"pos{run}.json", archive.name)  # forgotten
        archiver = Archiver(ledger, archive, position, now=lambda: NOW)
        results = archiver.run(archiver.plan(day, day + timedelta(days=1)), metrics=False)
        assert [r.sent for r in results] == [ledger.count(start=day_start(day),
                                                          end=day_start(day) + timedelta(days=1))]
        assert results[0].added == (results[0].sent if run == 0 else 0)
        frame = archive.read_events(day_start(day), day_start(day) + timedelta(days=1))
        keys.append(sorted(frame["idempotency_key"]))
    assert keys[0] == keys[1] and len(keys[0]) == len(set(keys[0]))
    expected = ledger.read(start=day_start(day), end=day_start(day) + timedelta(days=1))
    assert keys[0] == sorted(expected["idempotency_key"])
    ledger.close()


def test_late_event_reaches_its_archived_day(
    bigquery_emulator: BigQueryEmulator, tmp_path: Path
) -> None:
    ledger = build_ledger(tmp_path / "l.duckdb", DemoSpec(products=1, days=3, events_per_day=100))
    archive = new_archive(bigquery_emulator)
    position = ArchivePosition(tmp_path / "pos.json", archive.name)
    archiver = Archiver(ledger, archive, position, now=lambda: NOW)
    first = archiver.run(archiver.plan(), metrics=False)
    assert len(first) == 3 and archiver.plan() == []
    late = GrowthEvent(product="acme-crm", type="refund", value=Decimal("12.34"), currency="USD",
                       subject="late-cust", source="stripe", source_id="re_late",
                       timestamp=datetime(2026, 10, 29, 23, 59, tzinfo=UTC))  # fmt: skip
    ledger.append([late])
    (work,) = archiver.plan()
    assert work.day == date(2026, 10, 29) and work.late
    (result,) = archiver.run([work], metrics=False)
    assert (result.sent, result.added) == (1, 1)
    day = archive.read_events(day_start(date(2026, 10, 29)), day_start(date(2026, 10, 30)))
    assert late.idempotency_key in set(day["idempotency_key"])
    assert archive.day_counts(day_start(date(2026, 10, 29)), day_start(date(2026, 11, 1))) == {
        d: n for d, n in _ledger_day_counts(ledger).items() if d >= "2026-10-29"
    }
    ledger.close()


def test_resume_after_interrupt(bigquery_emulator: BigQueryEmulator, tmp_path: Path) -> None:
    ledger = build_ledger(tmp_path / "l.duckdb", DemoSpec(products=1, days=5, events_per_day=80))
    archive = new_archive(bigquery_emulator)
    calls: list[datetime] = []
    real = archive.load_events

    def interrupted(day: datetime, path: Path, rows: int):  # type: ignore[no-untyped-def]
        calls.append(day)
        if len(calls) == 3:
            raise KeyboardInterrupt  # Ctrl-C in the middle of the third day
        return real(day, path, rows)

    archive.load_events = interrupted  # type: ignore[method-assign]
    position = ArchivePosition(tmp_path / "pos.json", archive.name)
    archiver = Archiver(ledger, archive, position, now=lambda: NOW)
    with pytest.raises(KeyboardInterrupt):
        archiver.run(archiver.plan(), metrics=False)
    archive.load_events = real  # type: ignore[method-assign]
    resumed = ArchivePosition.load(tmp_path / "pos.json", archive.name)
    assert sorted(resumed.days) == ["2026-10-27", "2026-10-28"]
    again = Archiver(ledger, archive, resumed, now=lambda: NOW)
    work = again.plan()
    assert [w.day.isoformat() for w in work] == ["2026-10-29", "2026-10-30", "2026-10-31"]
    again.run(work, metrics=False)
    assert archive.day_counts(day_start(date(2026, 10, 27)), day_start(date(2026, 11, 1))) == (
        _ledger_day_counts(ledger)
    )
    ledger.close()


def test_schema_grows_by_adding_columns(bigquery_emulator: BigQueryEmulator) -> None:
    archive = new_archive(bigquery_emulator)
    client = archive.client
    client.create_dataset(f"{archive.project}.{archive.dataset}")
    old = [bigquery.SchemaField(c.name, c.type, mode=c.mode) for c in EVENTS.columns[:-2]]
    table = bigquery.Table(archive._id("events"), schema=old)
    table.time_partitioning = bigquery.TimePartitioning(field="ts")
    client.create_table(table)
    client.insert_rows_json(archive._id("events"), [{
        "idempotency_key": "k1", "ts": "2026-10-01T00:00:00Z", "product": "p", "type": "payment",
        "value": "1.50", "source": "s", "source_id": "1", "kind": "payment",
        "ingested_at": "2026-10-01T00:00:00Z"}])  # fmt: skip
    done = archive.ensure()
    assert "events: added column(s) ledger_seq, archived_at" in done
    names = [f.name for f in client.get_table(archive._id("events")).schema]
    assert names == list(EVENTS.column_names)
    frame = archive.read_events(*UTC_OCT)
    assert list(frame["idempotency_key"]) == ["k1"] and frame["value"].iloc[0] == 1.5
    # a changed type is refused, never rewritten
    bad = new_archive(bigquery_emulator)
    bad.client.create_dataset(f"{bad.project}.{bad.dataset}")
    schema = [bigquery.SchemaField(c.name, "STRING" if c.name == "value" else c.type)
              for c in EVENTS.columns]  # fmt: skip
    bad.client.create_table(bigquery.Table(bad._id("events"), schema=schema))
    with pytest.raises(SchemaConflict, match="column value is STRING"):
        bad.ensure()


def test_metric_rows_follow_the_series_store(
    bigquery_emulator: BigQueryEmulator, tmp_path: Path
) -> None:
    ledger = build_ledger(tmp_path / "l.duckdb", DemoSpec(products=2, days=4, events_per_day=150))
    series = SeriesStore(tmp_path / "s.duckdb")
    MetricsEngine(ledger, DEMO_METRICS).recompute([series])
    archive = new_archive(bigquery_emulator)
    archiver = Archiver(ledger, archive, ArchivePosition(None, archive.name), series=series,
                        now=lambda: NOW)  # fmt: skip
    archiver.run(archiver.plan(date(2026, 10, 30), date(2026, 10, 31)))
    start, end = day_start(date(2026, 10, 30)), day_start(date(2026, 10, 31))
    rows = archive.metric_rows(start, end)
    net = rows[(rows["measurement"] == "revenue_daily") & (rows["field"] == "net")]
    expected = series.read("revenue_daily", start=start, end=end)
    assert len(net) == len(expected.dropna(subset=["net"])) > 0
    by_tags = {(r.product, r.tags): (r.value, r.amount) for r in net.itertuples()}
    for r in expected.dropna(subset=["net"]).itertuples():
        value, amount = by_tags[(r.product, f'{{"currency": "{r.currency}", "product": "{r.product}"}}')]
        assert value == r.net and amount == Decimal(f"{r.net:.9f}")
    mrr = rows[rows["measurement"] == "mrr_daily"]
    assert mrr["field"].eq("mrr").any() and mrr["amount"].notna().all()
    # a value that became undefined disappears from the archive on the next load
    series.delete("revenue_daily", start=start, end=end)
    assert archiver.plan(date(2026, 10, 30), date(2026, 10, 31)) == []  # events unchanged
    archiver.run([DayWork(date(2026, 10, 30), 0, ledger.max_seq(), ledger.max_seq())])
    after = archive.metric_rows(start, end)
    assert not after["measurement"].eq("revenue_daily").any() and len(after) > 0
    series.close()
    ledger.close()


def test_replay_into_influx_reproduces_the_series(
    archived: Archived, influx_server: InfluxServer
) -> None:
    """Engine on the original ledger -> InfluxDB A; archive -> replay -> InfluxDB B; every
    point B holds equals A's, and every A point from ``since`` on is in B."""
    from bigquery_archive.replay import replay_series
    from growthwatch import MEASUREMENTS

    original = InfluxStore(influx_server.url, "replay_a")
    original.ensure_database()
    MetricsEngine(archived.ledger, DEMO_METRICS).recompute([original])
    rebuilt = InfluxStore(influx_server.url, "replay_b")
    rebuilt.ensure_database()
    since, until = date(2026, 10, 20), archived.end
    result = replay_series(archived.archive, DEMO_METRICS, [rebuilt], since, until,
                           into="influx", history_from=archived.first, raw_events=[rebuilt])  # fmt: skip
    assert result.points > 0
    # the window read starts after the ledger's first day: the windowing is exercised
    assert result.events_read < archived.ledger.count()
    lo = pd.Timestamp(day_start(since))
    compared = 0
    for m in MEASUREMENTS:
        a, b = original.read(m.name), rebuilt.read(m.name)
        if b.empty:
            assert a.empty or (a["time"] < lo).all(), m.name
            continue
        keys = ["time", *[t for t in m.tags if t in b.columns]]
        merged = b.merge(a, on=keys, how="left", suffixes=("_b", "_a"), indicator=True)
        assert (merged["_merge"] == "both").all(), f"{m.name}: replay wrote points A lacks"
        for f in m.fields:
            if f + "_b" in merged:
                # a field no point of one series holds reads back as None, elsewhere NaN
                both = [merged[c].where(merged[c].notna(), float("nan"))
                        for c in (f + "_b", f + "_a")]
                pd.testing.assert_series_equal(*both, check_names=False, check_dtype=False,
                                               obj=f"{m.name}.{f}")  # fmt: skip
        daily = m.bucket in ("day", "hour", "event")
        first = lo if daily else lo - pd.Timedelta(days=lo.weekday()) if m.bucket == "week" else (
            lo.replace(day=1))  # the bucket holding ``since``  # fmt: skip
        newer = a[a["time"] >= first]
        missing = newer.merge(b[keys], on=keys, how="left", indicator=True)
        assert (missing["_merge"] == "both").all(), f"{m.name}: replay lacks points of A"
        compared += len(merged)
    assert compared > 300
    raw = rebuilt.read("growth_events")
    expected = archived.ledger.count(start=day_start(since), end=day_start(until))
    assert len(raw) == expected


def test_retention_trims_the_ledger_and_the_reader_serves_the_archive(
    bigquery_emulator: BigQueryEmulator, influx_server: InfluxServer, tmp_path: Path
) -> None:
    spec = DemoSpec(products=1, days=20, events_per_day=100)  # 2026-10-12 .. 2026-10-31
    ledger = build_ledger(tmp_path / "l.duckdb", spec)
    full = ledger.read()
    archive = new_archive(bigquery_emulator)
    position = ArchivePosition(tmp_path / "pos.json", archive.name)
    archiver = Archiver(ledger, archive, position, now=lambda: NOW)
    work = archiver.plan()
    archiver.run([w for w in work if w.day < date(2026, 10, 25)], metrics=False)
    keep = ("payment", "signup", "subscription_started", "subscription_changed",
            "subscription_cancelled", "subscription_reactivated", "trial_started")  # fmt: skip
    # 100 days before 2027-01-28 is 2026-10-20; only days before 10-25 are archived
    now = datetime(2027, 1, 28, tzinfo=UTC)
    result = trim_ledger(ledger, position, RetentionSettings(ledger_days=100), keep, now=now)
    assert result.before == date(2026, 10, 20)
    old = full[full["ts"] < pd.Timestamp("2026-10-20", tz="UTC")]
    # each user's first active_use stays too (the lifecycle's first activity); ``full`` is
    # in ledger order, so the first row of a user is their first
    users = full[(full["type"] == "active_use") & full["subject"].notna()]
    firsts = users.drop_duplicates(["product", "subject"])["idempotency_key"]
    gone = ~old["type"].isin(keep) & ~old["idempotency_key"].isin(firsts)
    assert result.deleted == int(gone.sum()) > 0
    assert ledger.count() == len(full) - result.deleted
    # the boundary never passes an unarchived day
    result = trim_ledger(ledger, position, RetentionSettings(ledger_days=90), keep,
                         now=datetime(2027, 3, 1, tzinfo=UTC))  # fmt: skip
    assert result.before == date(2026, 10, 25)
    reader = ArchiveReader(ledger, archive, position)
    lo, hi = datetime(2026, 10, 15, tzinfo=UTC), datetime(2026, 10, 31, tzinfo=UTC)
    got = reader.read(lo, hi)
    want = full[(full["ts"] >= lo) & (full["ts"] < hi)].reset_index(drop=True)
    assert list(got["idempotency_key"]) == list(want["idempotency_key"])
    assert got["value"].tolist() == want["value"].tolist()
    # InfluxDB: fine-grained points before the boundary go, monthly ones stay
    influx = InfluxStore(influx_server.url, "retention_t")
    influx.ensure_database()
    MetricsEngine(ledger, DEMO_METRICS).recompute([influx])
    trimmed = trim_influx(influx, ledger, position, RetentionSettings(influx_days=1),
                          now=datetime(2027, 3, 1, tzinfo=UTC))  # fmt: skip
    assert trimmed.before == date(2026, 10, 25)
    daily = influx.read("revenue_daily")
    assert len(daily) and (daily["time"] >= pd.Timestamp("2026-10-25", tz="UTC")).all()
    assert len(influx.read("churn_monthly")) > 0
    ledger.close()


def test_replay_into_the_ledger_restores_exact_rows(archived: Archived, tmp_path: Path) -> None:
    """A new machine: an empty ledger rebuilt from the archive holds the same events, with
    the same exact amounts (compared as the ledger's DECIMAL text), and a second replay
    adds nothing."""
    from bigquery_archive.replay import replay_ledger

    since, until = date(2026, 10, 1), date(2026, 10, 11)
    sql = ("SELECT replace(CAST(idempotency_key AS VARCHAR), '-', ''), product, type, "
           "strftime(timezone('UTC', ts), '%Y-%m-%d %H:%M:%S.%f'), "
           "CAST(value AS VARCHAR), CAST(mrr_after AS VARCHAR), subject, source_id FROM events "
           "WHERE ts >= ? AND ts < ? ORDER BY 1")  # fmt: skip
    bounds = [day_start(since), day_start(until)]
    with Ledger(tmp_path / "new.duckdb") as fresh:
        first = replay_ledger(archived.archive, fresh, since, until)
        again = replay_ledger(archived.archive, fresh, since, until)
        rebuilt = fresh.connection.execute(sql, bounds).fetchall()
    original = archived.ledger.connection.execute(sql, bounds).fetchall()
    assert rebuilt == original and len(original) > 1000
    assert first.inserted == len(original) and again.inserted == 0
    assert "333333.333333" in {r[4] for r in rebuilt} and "1234567.890000" in {r[4] for r in rebuilt}
