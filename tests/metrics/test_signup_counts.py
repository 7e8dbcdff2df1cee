"""Signups and activations counted in the ledger's DuckDB (``sql.signup_counts``, the
product family's engine path) against the pandas definition in
``engagement.product_daily`` (the reference), on random streams over DST changes with
activations on the window's edge and before their signup; and a
hand-computed case; the statement transpiles to BigQuery."""

from __future__ import annotations

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
from growthwatch.metrics import engagement
from growthwatch.metrics.reads import LedgerView, read_events
from growthwatch.metrics.settings import MetricsSettings
from growthwatch.metrics.sql import queries as q
from growthwatch.metrics.sql import signup_counts
from growthwatch.stores.ledger import Ledger

BEGIN = {"Europe/Berlin": t("2026-03-24"), "America/New_York": t("2026-03-04"),
         "UTC": t("2026-01-29")}  # fmt: skip
WINDOW = 3  # activation_window_days

event = st.tuples(
    st.sampled_from(["signup", "signup", "activation", "activation", "active_use"]),
    st.sampled_from(["p1", "p2"]),
    st.sampled_from(["u1", "u2", "u3"]),
    # any minute of about 8 days, or instants exactly a window apart (the edge)
    st.one_of(st.integers(0, 8 * 24 * 60),
              st.sampled_from([60, 60 + WINDOW * 24 * 60, 61 + WINDOW * 24 * 60])),
)


def build(raw: list[tuple[Any, ...]], start: Any) -> list[GrowthEvent]:
    return [ev(kind, start + timedelta(minutes=minute), user, product=product,
               source_id=f"e{i}") for i, (kind, product, user, minute) in enumerate(raw)]  # fmt: skip


def both(events: list[GrowthEvent], tz: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(the SQL counts laid on the grid, the pandas definition) of the same ledger."""
    s = MetricsSettings(timezone=tz, activation_window_days=WINDOW)
    with Ledger() as ledger:
        ledger.append(events)
        frame = read_events(ledger, list(engagement.TYPES))
        counts = signup_counts.signup_counts(LedgerView(ledger, s), None)
    until = pd.Timestamp(max(e.timestamp for e in events)) + pd.Timedelta(days=1)
    got = engagement.product_daily(frame, s, until, counts=counts)
    want = engagement.product_daily(frame, s, until)
    return got, want


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(event, min_size=1, max_size=40), st.sampled_from(sorted(BEGIN)))
def test_sql_counts_equal_the_pandas_definition(raw: list[tuple[Any, ...]], tz: str) -> None:
    got, want = both(build(raw, BEGIN[tz]), tz)
    pd.testing.assert_frame_equal(got, want)


@pytest.mark.parametrize("tz", ["UTC", "Europe/Berlin"])
def test_hand_counted_signups_and_activations(tz: str) -> None:
    """Berlin moves its clocks on 2026-03-29: a window of 3 x 24 hours still ends at the
    same instant, not the same wall-clock time."""
    at = t("2026-03-27 08:00")
    window = timedelta(days=WINDOW)
    events = [
        ev("signup", at, "a", source_id="1"),
        ev("signup", at + timedelta(hours=1), "a", source_id="2"),  # same user and day
        ev("activation", at + window, "a", source_id="3"),  # on the edge: activated
        ev("signup", at, "b", source_id="4"),
        ev("activation", at + window + timedelta(minutes=1), "b", source_id="5"),  # too late
        ev("signup", at, "c", source_id="6"),
        ev("activation", at - timedelta(hours=1), "c", source_id="7"),  # before: no
    ]
    got, _ = both(events, tz)
    mine = got[got["product"] == "p1"].set_index(got["time"][got["product"] == "p1"])
    day = pd.Timestamp("2026-03-27", tz=tz).tz_convert("UTC")
    edge = pd.Timestamp("2026-03-30", tz=tz).tz_convert("UTC")
    assert mine.loc[day, ["signups", "activations", "activated"]].tolist() == [3, 1, 1]
    # a's and b's activations fall on day 30 (b's a minute after a's)
    assert mine.loc[edge, ["signups", "activations"]].tolist() == [0, 2]
    assert mine.loc[day, "activation_rate"] == pytest.approx(1 / 3)


@pytest.mark.parametrize("tz", ["UTC", "Europe/Berlin"])
def test_the_statement_transpiles_to_bigquery(tz: str, caplog: pytest.LogCaptureFixture) -> None:
    where = q.ledger_where(["p9"], since="2026-03-01T00:00:00+00:00")
    sql = q.signup_counts(q.Source(where=where), tz, WINDOW)
    with caplog.at_level(logging.WARNING, logger="sqlglot"):
        (out,) = sqlglot.transpile(sql, read="duckdb", write="bigquery",
                                   unsupported_level=ErrorLevel.RAISE)  # fmt: skip
    assert not caplog.records, [r.getMessage() for r in caplog.records]
    assert "DATETIME(ts" in out and "INTERVAL '72' HOUR" in out and "COUNT(DISTINCT" in out
