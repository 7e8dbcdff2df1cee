"""The metric SQL run in the ledger's DuckDB (``growthwatch/metrics/sql``) against the
pandas definitions of the pure path (the demo's), on random streams in UTC and across
Berlin's and New York's DST changes: the active users' interval edges from the rollup, and
the whole product and lifecycle families (their ``run`` over a ledger, from the start or
from a later day, vs their ``compute`` over the same events); every rollup statement
transpiles to BigQuery, and its cheap local days equal the time zone conversion."""

from __future__ import annotations

import inspect
import logging
from datetime import timedelta
from typing import Any

import duckdb
import pandas as pd
import pytest
import sqlglot
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from metric_cases import ev, t
from sqlglot import ErrorLevel

from growthwatch.metrics import engagement
from growthwatch.metrics import families as registry
from growthwatch.metrics._frame import TIME_DTYPE, local_day_numbers
from growthwatch.metrics.families.base import Scope
from growthwatch.metrics.reads import LedgerView, read_events
from growthwatch.metrics.schema import bucket_floor
from growthwatch.metrics.settings import MetricsSettings
from growthwatch.metrics.sql import activity as rollup
from growthwatch.metrics.sql import activity_queries as aq
from growthwatch.stores.ledger import Ledger

activity = st.tuples(
    st.sampled_from(["p1", "p2", "p3"]),
    st.sampled_from(["u1", "u2", "u3", "u4"]),
    st.integers(0, 80 * 24 * 60),  # minutes over 80 days: windows of 30 days overlap
    st.sampled_from(["active_use", "active_use", "signup"]),
)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(activity, min_size=1, max_size=60), st.sampled_from(["UTC", "Europe/Berlin", "America/New_York"]),
       st.integers(0, 60))  # fmt: skip
def test_sql_edges_equal_the_pandas_definition(
    raw: list[tuple[Any, ...]], tz: str, start_day: int
) -> None:
    """The rollup's edges over the whole history are the pandas edges of the same events;
    read from a later day, their running sums (the counts) agree from a window on."""
    begin = t("2026-02-20")  # Berlin: winter time, then summer time from 2026-03-29
    events = [ev(kind, begin + timedelta(minutes=minute), user, product=product,
                 source_id=f"e{i}") for i, (product, user, minute, kind) in enumerate(raw)]  # fmt: skip
    since = pd.Timestamp(begin + timedelta(days=start_day))
    with Ledger() as ledger:
        ledger.append(events)
        view = LedgerView(ledger, MetricsSettings(timezone=tz))
        rollup.sync(view)
        got = rollup.rolling_edges(view, None)
        late = rollup.rolling_edges(view, since)
        frame = read_events(ledger, ["active_use"])
    days = local_day_numbers(frame["ts"].astype(TIME_DTYPE), tz)
    want = engagement.rolling_edges(frame["product"].to_numpy(dtype=object),
                                    frame["subject"].to_numpy(dtype=object), days)  # fmt: skip
    want = want.sort_values(["product", "day"], ignore_index=True)
    pd.testing.assert_frame_equal(got.reset_index(drop=True), want.astype(got.dtypes.to_dict()))

    if want.empty:  # no activity
        assert late.empty
        return
    first = int(local_day_numbers(pd.Series([since]).astype(TIME_DTYPE), tz)[0]) + 30
    lo, hi = int(want["day"].min()), max(int(want["day"].max()), first) + 1

    def counts(edges: pd.DataFrame) -> pd.DataFrame:
        """Each product's DAU/WAU/MAU on every day from 30 days after ``since``'s."""
        rows = []
        for product in sorted(set(want["product"])):
            part = edges[edges["product"] == product]
            grid = part.set_index("day")[list(engagement.WINDOWS)].reindex(
                range(min(lo, int(part["day"].min()) if len(part) else lo), hi), fill_value=0)
            rows.append(grid.cumsum().loc[first:].assign(product=product).reset_index())
        return pd.concat(rows, ignore_index=True)

    pd.testing.assert_frame_equal(counts(late), counts(want), check_dtype=False)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(activity, min_size=1, max_size=60), st.sampled_from(["UTC", "Europe/Berlin", "America/New_York"]),
       st.sampled_from([None, 20, 45]))  # fmt: skip
def test_sql_families_equal_their_pandas_compute(
    raw: list[tuple[Any, ...]], tz: str, from_day: int | None
) -> None:
    begin = t("2026-02-20")
    events = [ev(kind, begin + timedelta(minutes=minute), user, product=product,
                 source_id=f"e{i}") for i, (product, user, minute, kind) in enumerate(raw)]  # fmt: skip
    settings_ = MetricsSettings(timezone=tz)
    horizon = pd.Timestamp(begin + timedelta(days=81))
    start = None if from_day is None else pd.Timestamp(begin + timedelta(days=from_day))
    with Ledger() as ledger:
        ledger.append(events)
        view = LedgerView(ledger, settings_)
        for family in registry.load():
            if family.name not in ("product", "lifecycle"):
                continue
            got = family.run(view, start, None, horizon).frames
            frame = read_events(ledger, family.types(settings_))
            want = family.compute(frame, Scope(settings_, horizon))
            for name, expected in want.items():
                mine = got[name]
                if start is not None:  # the buckets a run from ``start`` is right for
                    floor = bucket_floor(name, start, tz)
                    mine = mine[mine["time"] >= floor]
                    expected = expected[expected["time"] >= floor]
                pd.testing.assert_frame_equal(
                    mine.sort_values(["time", "product"], ignore_index=True),
                    expected.sort_values(["time", "product"], ignore_index=True), obj=name)


def rendered() -> dict[str, list[str]]:
    """Each builder of ``activity_queries``, rendered for a few zones and ranges as the
    rollup runs them."""
    where = "pid IN (1, 2) AND day >= 20512 AND day <= 20600"
    out: dict[str, list[str]] = {"rolling_edges": [aq.rolling_edges(rollup.DAYS, where),
                                                   aq.rolling_edges(rollup.COUNTS, where, weighted=True)],
                                 "lifecycle_counts": [], "day_number": [], "user_firsts": [],
                                 "user_day_rows": [],
                                 "new_activity": [], "grid_firsts": [aq.grid_firsts("seq <= 10")]}  # fmt: skip
    for period in ("day", "week"):
        out["lifecycle_counts"].append(aq.lifecycle_counts(rollup.DAYS, where, period))
        out["lifecycle_counts"].append(aq.lifecycle_counts(rollup.COUNTS, where, period,
                                                           weighted=True))  # fmt: skip
    span = (pd.Timestamp("2025-11-03", tz="UTC"), pd.Timestamp("2026-10-31 23:30", tz="UTC"))
    for tz in ("UTC", "Europe/Berlin", "America/New_York"):
        out["day_number"].append(f"SELECT {aq.day_number('ts', tz)} FROM events")
        out["day_number"].append(f"SELECT {aq.day_number('ts', tz, span)} FROM events")
        out["user_firsts"].append(aq.user_firsts("seq <= 10", tz))
        out["user_day_rows"].append(aq.user_day_rows(rollup.DAYS.replace("days", "users"),
                                                     "seq <= 10", tz))  # fmt: skip
        out["new_activity"].append(aq.new_activity("seq > 10 AND seq <= 20", tz))
    return out


def test_every_activity_query_builder_is_covered() -> None:
    builders = {name for name, fn in inspect.getmembers(aq, inspect.isfunction)
                if fn.__module__ == aq.__name__ and not name.startswith("_")}  # fmt: skip
    assert builders == set(rendered())


@pytest.mark.parametrize("name", sorted(rendered()))
def test_the_activity_sql_transpiles_to_bigquery(name: str, caplog: pytest.LogCaptureFixture) -> None:
    """The rollup's statements carry to BigQuery: nothing unsupported, local days as
    ``DATETIME(ts, zone)``."""
    for sql in rendered()[name]:
        with caplog.at_level(logging.WARNING, logger="sqlglot"):
            (out,) = sqlglot.transpile(sql, read="duckdb", write="bigquery",
                                       unsupported_level=ErrorLevel.RAISE)  # fmt: skip
        assert not caplog.records, [r.getMessage() for r in caplog.records]
        assert "AT TIME ZONE" not in out
        if "date_diff" in sql:
            assert "DATETIME(" in out


@pytest.mark.parametrize("tz", ["UTC", "Europe/Berlin", "America/New_York", "Asia/Kolkata",
                                "Australia/Lord_Howe"])  # fmt: skip
def test_day_numbers_by_offsets_equal_the_time_zone_conversion(tz: str) -> None:
    """The rollup's cheap local day (epoch microseconds plus the zone's offset from a CASE
    over its changes in the span) is the conversion's, instant by instant: every 7 minutes
    of a year and a half (each DST change inside, half-hour zones and shifts too), the
    microseconds around each local midnight, and instants outside the span."""
    lo, hi = pd.Timestamp("2025-04-30", tz="UTC"), pd.Timestamp("2026-10-31 23:59", tz="UTC")
    grid = pd.date_range(lo, hi, freq="7min")
    days = pd.date_range(lo.tz_convert(tz).normalize(), hi.tz_convert(tz), freq="D")
    midnights = pd.DatetimeIndex([d.tz_convert("UTC") for d in days])
    near = [midnights + pd.Timedelta(microseconds=k) for k in (-1, 0, 1)]
    outside = pd.DatetimeIndex([lo - pd.Timedelta(days=400), hi + pd.Timedelta(days=40)])
    at = pd.Series(grid.append(near).append(outside)).astype(TIME_DTYPE)
    want = local_day_numbers(at, tz)
    con = duckdb.connect()
    try:
        con.execute("SET TimeZone = 'UTC'")
        con.register("instants", pd.DataFrame({"ts": at}))
        got = con.execute(f"SELECT {aq.day_number('ts', tz, (lo, hi))} AS day FROM instants"
                          ).fetchnumpy()["day"]  # fmt: skip
    finally:
        con.close()
    assert (got.astype("int64") == want).all()
