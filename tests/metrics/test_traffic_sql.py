"""Traffic counted in the ledger's DuckDB (``growthwatch.metrics.sql.traffic_counts``)
against the pandas definition it replaces in the engine (``traffic.traffic_daily``, kept
as the reference), on random multi-product streams over DST changes with ties in time,
per-visitor and aggregate (GA4, no subject) sessions, signups with and without a session
or a channel; an update reads only the events from the rewrite's look-back on; the
statement transpiles to BigQuery."""

from __future__ import annotations

import dataclasses
import logging
from datetime import timedelta
from typing import Any

import pandas as pd
import pytest
import sqlglot
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from metric_cases import ev, t
from sqlglot.errors import ErrorLevel

from growthwatch.events import GrowthEvent
from growthwatch.metrics import traffic
from growthwatch.metrics.engine import MetricsEngine
from growthwatch.metrics.families.traffic import Traffic
from growthwatch.metrics.reads import LedgerView, read_events
from growthwatch.metrics.settings import MetricsSettings
from growthwatch.metrics.sql import queries as q
from growthwatch.metrics.sql import traffic_counts
from growthwatch.stores.ledger import Ledger
from growthwatch.stores.series import SeriesStore

# Around Berlin's and New York's spring DST changes, Berlin's autumn one, month ends.
STARTS = {"Europe/Berlin": [t("2026-03-27"), t("2026-10-23")],
          "America/New_York": [t("2026-03-06")], "UTC": [t("2026-01-30")]}  # fmt: skip

event = st.tuples(
    st.sampled_from(["session", "session", "session", "signup", "signup", "active_use"]),
    st.sampled_from(["p1", "p2", "p3"]),
    st.sampled_from(["u1", "u2", "u3", None]),
    # any minute of about 5 days, or one of a few shared instants (ties broken by key),
    # some exactly 30 minutes apart (the attribution's edge)
    st.one_of(st.integers(0, 5 * 24 * 60), st.sampled_from([600, 630, 631, 2 * 24 * 60])),
    st.sampled_from(["web", "ads", "email", None]),
    st.sampled_from([1, 1, 3, "2.5"]),  # sessions per event (aggregates: several)
)


def build(raw: list[tuple[Any, ...]], start: Any) -> list[GrowthEvent]:
    out = []
    for i, (type_, product, user, minute, channel, value) in enumerate(raw):
        if type_ == "session" and channel is None:  # a session must name its channel
            channel = "direct"
        if type_ != "session" and user is None:  # only a session may have no user
            user = "u4"
        meta = {} if channel is None else {"channel": channel}
        out.append(ev(type_, start + timedelta(minutes=minute), user, product=product,
                      value=value if type_ == "session" else 1, source_id=f"s{i}",
                      **meta))  # fmt: skip
    return out


def canonical(frame: pd.DataFrame) -> pd.DataFrame:
    """Rows in (time, product, channel) order with plain object strings."""
    frame = frame.astype({"product": object, "channel": object})
    return frame.sort_values(["time", "product", "channel"], ignore_index=True)


def reference(ledger: Ledger, tz: str, start: pd.Timestamp | None = None) -> pd.DataFrame:
    """The pandas definition over the ledger's events from ``start`` (in its order)."""
    frame = read_events(ledger, traffic.TYPES, start=start)
    return canonical(traffic.traffic_daily(frame, tz))


def same(got: pd.DataFrame, want: pd.DataFrame) -> None:
    if want.empty:
        assert got.empty, got
        return
    pd.testing.assert_frame_equal(canonical(got), want, check_exact=True)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(event, min_size=1, max_size=50),
    st.sampled_from([(tz, i) for tz, starts in STARTS.items() for i in range(len(starts))]),
)
def test_sql_equals_the_pandas_definition(raw: list[tuple[Any, ...]], zone: tuple[str, int]) -> None:
    tz, i = zone
    events = build(raw, STARTS[tz][i])
    s = MetricsSettings(timezone=tz)
    with Ledger() as ledger:
        ledger.append(events)
        got, read = traffic_counts.traffic_daily(LedgerView(ledger, s), None)
        want = reference(ledger, tz)
    same(got, want)
    assert read == sum(e.type.value in traffic.TYPES for e in events)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(event, min_size=1, max_size=50), st.integers(2, 7))
def test_any_number_of_partitions_of_the_visitors_gives_the_definition(
    raw: list[tuple[Any, ...]], parts: int
) -> None:
    """Under a binding memory limit the visitors' statement runs in partitions of the
    subjects (aggregate sessions, with none, in one of them): their union counts as one."""
    events = build(raw, STARTS["Europe/Berlin"][1])
    s = MetricsSettings(timezone="Europe/Berlin")
    with Ledger() as ledger, pytest.MonkeyPatch.context() as mp:
        ledger.append(events)
        seen: list[int] = []

        def forced(_con: object, rows: int, _per_mib: int) -> int:
            seen.append(rows)
            return parts

        mp.setattr(traffic_counts.state, "parts_for", forced)
        got, read = traffic_counts.traffic_daily(LedgerView(ledger, s), None)
        want = reference(ledger, "Europe/Berlin")
    same(got, want)
    assert seen == [sum(e.type.value in ("session", "signup") for e in events)]
    assert read == sum(e.type.value in traffic.TYPES for e in events)


def test_hand_computed_attribution_and_conversion() -> None:
    """Two visitors of p1 and an aggregate: a's signup 30 minutes after a web session
    (the edge: attributed) and b's 31 minutes after an ads one (not: its own email
    channel), two sessions of a at the same instant (the greater key wins)."""
    events = [
        ev("session", "2026-05-04 10:00", "a", source_id="1", channel="ads"),
        ev("session", "2026-05-04 10:00", "a", source_id="2", channel="web"),
        ev("signup", "2026-05-04 10:30", "a", source_id="3"),
        ev("session", "2026-05-04 11:00", "b", source_id="4", channel="ads"),
        ev("signup", "2026-05-04 11:31", "b", source_id="5", channel="email"),
        ev("session", "2026-05-04 12:00", None, value=40, source_id="6", channel="ads"),
    ]
    with Ledger() as ledger:
        ledger.append(events)
        keys = dict(ledger.connection.execute(
            "SELECT source_id, CAST(idempotency_key AS VARCHAR) FROM events").fetchall())  # fmt: skip
        got, read = traffic_counts.traffic_daily(LedgerView(ledger, MetricsSettings()), None)
    winner = "web" if keys["2"] > keys["1"] else "ads"
    rows = canonical(got).set_index(["product", "channel"])
    assert read == 6
    assert rows.loc[("p1", "all"), ["sessions", "users", "signups", "converting_sessions"]
                    ].tolist() == [43.0, 2, 2, 1]  # fmt: skip
    assert rows.loc[("p1", "all"), "conversion"] == pytest.approx(1 / 43)
    assert rows.loc[("p1", "email"), ["sessions", "signups", "converting_sessions"]].tolist() == [0, 1, 0]
    assert pd.isna(rows.loc[("p1", "email"), "conversion"])  # no sessions: undefined
    assert rows.loc[("p1", winner), ["signups", "converting_sessions"]].tolist() == [1, 1]
    assert rows.loc[("all", "ads"), "users"] == 2  # a and b had an ads session


def _day(n: int, minutes: int = 0) -> Any:
    return t("2026-02-01") + timedelta(days=n, minutes=minutes)


def test_an_update_reads_only_the_events_of_its_rewrite(tmp_path: Any) -> None:
    """30 days of history, then a signup on the last day: the engine's update reads the
    events from half an hour before that day's start (the look-back), not the history,
    and the stores equal a full recompute."""
    history = [ev(k, _day(d, m), f"u{d % 7}", product=p, source_id=f"h{d}{k}{m}{p}",
                  channel="web" if m % 2 else "ads")
               for d in range(30) for m in (5, 20, 600) for k in ("session", "signup")
               for p in ("p1", "p2")]  # fmt: skip
    late = [ev("session", _day(30, 60), "x", source_id="n1", channel="ads"),
            ev("signup", _day(30, 70), "x", source_id="n2"),
            ev("session", _day(30, 300), "y", product="p2", source_id="n3", channel="web")]  # fmt: skip
    s = MetricsSettings()
    with Ledger(tmp_path / "ledger.duckdb") as ledger:
        ledger.append(history)
        engine = MetricsEngine(ledger, s, state_path=tmp_path / "state.json")
        engine.families = tuple(f for f in engine.families if f.name == "traffic")
        store = SeriesStore(tmp_path / "series.duckdb")
        engine.recompute([store])
        ledger.append(late)
        calls: list[int] = []
        family = engine.families[0]
        real = family.run

        def counted(*args: Any, **kwargs: Any) -> Any:
            out = real(*args, **kwargs)
            calls.append(out.counters["traffic_events"])
            return out

        family.run = counted  # type: ignore[method-assign]
        result = engine.update([store])
        # rewritten from the first new event's day, read from half an hour before it
        # (2026-03-02T23:30): the history's last events are before that, so only the
        # three new events are read
        assert result.families["traffic"] == "2026-03-03T00:00:00+00:00"
        assert calls == [3]
        incremental = store.read("traffic_daily").sort_values(["time", "product", "channel"],
                                                              ignore_index=True)  # fmt: skip
        store.close()
        full_store = SeriesStore(tmp_path / "full.duckdb")
        fresh = MetricsEngine(ledger, s)
        fresh.families = tuple(f for f in fresh.families if f.name == "traffic")
        fresh.recompute([full_store])
        full = full_store.read("traffic_daily").sort_values(["time", "product", "channel"],
                                                            ignore_index=True)  # fmt: skip
        full_store.close()
        pd.testing.assert_frame_equal(incremental, full)
        # a full run reads them all
        computed = Traffic().run(LedgerView(ledger, s), None, None, pd.Timestamp(_day(31)))
        assert computed.counters["traffic_events"] == len(history) + len(late) == 363


def test_the_engine_runs_traffic_in_one_piece() -> None:
    s = dataclasses.replace(MetricsSettings(), chunk_events=2)
    with Ledger() as ledger:
        ledger.append(build([("session", "p1", "u1", m * 600, "web", 1) for m in range(12)],
                            STARTS["UTC"][0]))  # fmt: skip
        engine = MetricsEngine(ledger, s)
        engine.families = tuple(f for f in engine.families if f.name == "traffic")
        result = engine.recompute([])
    assert result.chunks == {"traffic": 1}


@pytest.mark.parametrize("tz", ["UTC", "Europe/Berlin", "America/New_York"])
def test_the_statement_transpiles_to_bigquery(tz: str, caplog: pytest.LogCaptureFixture) -> None:
    where = q.ledger_where(["p9"], since="2026-03-01T00:00:00+00:00",
                           before="2026-04-01T00:00:00+00:00")  # fmt: skip
    sql = q.traffic(q.Source(where=where), tz, traffic.SESSION_MINUTES)
    with caplog.at_level(logging.WARNING, logger="sqlglot"):
        (out,) = sqlglot.transpile(sql, read="duckdb", write="bigquery",
                                   unsupported_level=ErrorLevel.RAISE)  # fmt: skip
    assert not caplog.records, [r.getMessage() for r in caplog.records]
    assert "DATETIME(ts" in out and "QUALIFY" in out and "INTERVAL '30' MINUTE" in out


@pytest.mark.parametrize("tz", ["UTC", "America/New_York"])
def test_sql_equals_the_pandas_definition_on_a_bulk_ledger(tmp_path: Any, tz: str) -> None:
    """50,000 events written by SQL, with what events from the sources cannot carry:
    sessions without a channel (the signups they convert keep their own), five-session
    aggregates, several sessions per visitor and day."""
    from test_state_memory import bulk_ledger

    path = tmp_path / "ledger.duckdb"
    bulk_ledger(path, 50_000)
    with Ledger(path) as ledger:
        got, read = traffic_counts.traffic_daily(LedgerView(ledger, MetricsSettings(timezone=tz)), None)
        want = reference(ledger, tz)
        (null_channel,) = ledger.connection.execute(
            "SELECT count(*) FROM events WHERE type = 'session' AND channel IS NULL").fetchone()  # fmt: skip
    assert null_channel > 500 and read == 7_500 and len(want) > 500
    same(got, want)
