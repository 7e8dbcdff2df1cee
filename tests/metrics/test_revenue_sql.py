"""Revenue summed in the ledger's DuckDB (``growthwatch.metrics.sql.revenue_counts`` then
``revenue.from_sums``) against the pandas definition (``revenue.revenue``, kept as the
reference): random payments, refunds and failed payments in two currencies with dated
rates, over DST changes, in full and from a later start (the hourly grid's first hours
from the ledger's first money events); the statement transpiles to BigQuery."""

from __future__ import annotations

import logging
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

import pandas as pd
import pytest
import sqlglot
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from metric_cases import ev, t
from sqlglot.errors import ErrorLevel

from growthwatch.events import GrowthEvent
from growthwatch.metrics import revenue
from growthwatch.metrics.families.revenue import Revenue
from growthwatch.metrics.fx import FxTable
from growthwatch.metrics.reads import LedgerView, read_events
from growthwatch.metrics.settings import MetricsSettings
from growthwatch.metrics.sql import queries as q
from growthwatch.stores.ledger import Ledger

FX = FxTable("USD", {"EUR": ((date(2026, 1, 1), Decimal("1.1")), (date(2026, 3, 29), Decimal("1.2")))})
STARTS = {"Europe/Berlin": t("2026-03-27"), "America/New_York": t("2026-03-06"), "UTC": t("2026-01-30")}

event = st.tuples(
    st.sampled_from(["payment", "payment", "refund", "payment_failed"]),
    st.sampled_from(["p1", "p2"]),
    st.sampled_from(["USD", "EUR"]),
    st.one_of(st.integers(0, 4 * 24 * 60), st.sampled_from([600, 601, 2 * 24 * 60])),
    st.sampled_from(["9.99", "10", "0.000001", "1234567.89"]),  # micro-units past DECIMAL(18)
)


def build(raw: list[tuple[Any, ...]], start: Any) -> list[GrowthEvent]:
    return [ev(k, start + timedelta(minutes=m), "c1", product=p, value=v, currency=c,
               source_id=f"m{i}") for i, (k, p, c, m, v) in enumerate(raw)]  # fmt: skip


def _frames(view: LedgerView, start: pd.Timestamp | None) -> dict[str, pd.DataFrame]:
    family = Revenue()
    return family.run(view, start, None, pd.Timestamp("2027-01-01", tz="UTC")).frames


def _reference(ledger: Ledger, s: MetricsSettings, start: pd.Timestamp | None) -> dict[str, pd.DataFrame]:
    family = Revenue()
    view = LedgerView(ledger, s)
    events = read_events(ledger, revenue.MONEY_TYPES, start=start)
    first = family.first_days(view, start)
    return {"revenue_daily": revenue.revenue(events, s.fx, "D", s.timezone),
            "revenue_hourly": revenue.revenue(events, s.fx, "h", s.timezone, first, start)}  # fmt: skip


def same(got: pd.DataFrame, want: pd.DataFrame, name: str) -> None:
    keys = ["time", "product", "currency"]
    got = got.astype({"product": object, "currency": object}).sort_values(keys, ignore_index=True)
    want = want.astype({"product": object, "currency": object}).sort_values(keys, ignore_index=True)
    if want.empty:
        assert got.empty, got
        return
    pd.testing.assert_frame_equal(got, want, check_exact=True, obj=name)


@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(event, min_size=1, max_size=40), st.sampled_from(sorted(STARTS)),
       st.sampled_from([None, 1, 2]))  # fmt: skip
def test_sql_sums_equal_the_pandas_definition(
    raw: list[tuple[Any, ...]], tz: str, start_day: int | None
) -> None:
    s = MetricsSettings(fx=FX, timezone=tz)
    events = build(raw, STARTS[tz])
    start = None if start_day is None else pd.Timestamp(STARTS[tz] + timedelta(days=start_day))
    with Ledger() as ledger:
        ledger.append(events)
        got = _frames(LedgerView(ledger, s), start)
        want = _reference(ledger, s, start)
    for name in want:
        same(got[name], want[name], name)


def test_an_update_sums_only_the_events_from_its_start() -> None:
    events = build([("payment", "p1", "USD", d * 24 * 60 + 5, "10") for d in range(20)],
                   STARTS["UTC"])  # fmt: skip
    with Ledger() as ledger:
        ledger.append(events)
        start = pd.Timestamp(STARTS["UTC"] + timedelta(days=18))
        computed = Revenue().run(LedgerView(ledger, MetricsSettings()), start, None,
                                 pd.Timestamp("2027-01-01", tz="UTC"))  # fmt: skip
    assert computed.counters["revenue_events"] == 2
    hourly = computed.frames["revenue_hourly"]
    assert hourly["time"].min() == start and len(hourly) == 2 * (24 + 1)  # both hours' grids


@pytest.mark.parametrize("freq", ["D", "h"])
@pytest.mark.parametrize("tz", ["UTC", "Europe/Berlin"])
def test_the_statement_transpiles_to_bigquery(freq: str, tz: str, caplog: pytest.LogCaptureFixture) -> None:
    sql = q.revenue(q.Source(where=q.ledger_where(["p9"], since="2026-03-01T00:00:00+00:00")), freq, tz)
    with caplog.at_level(logging.WARNING, logger="sqlglot"):
        (out,) = sqlglot.transpile(sql, read="duckdb", write="bigquery",
                                   unsupported_level=ErrorLevel.RAISE)  # fmt: skip
    assert not caplog.records, [r.getMessage() for r in caplog.records]
    assert "DATETIME(ts" in out
    with pytest.raises(ValueError, match="days or hours"):
        q.revenue(q.Source(), "MS", tz)
