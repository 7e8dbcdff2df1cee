"""Revenue, engagement, cohorts, funnels, traffic and KPIs: hand-computed cases."""

from __future__ import annotations

import math
from datetime import date
from decimal import Decimal

import pandas as pd
import pytest
from metric_cases import ev, frame, sub

from growthwatch.metrics.cohorts import logo_retention, revenue_retention
from growthwatch.metrics.engagement import product_daily
from growthwatch.metrics.funnels import funnel_steps
from growthwatch.metrics.fx import FxTable
from growthwatch.metrics.kpis import kpi_series
from growthwatch.metrics.mrr import compute_mrr
from growthwatch.metrics.revenue import revenue
from growthwatch.metrics.settings import Funnel, MetricsSettings
from growthwatch.metrics.traffic import traffic_daily

S = MetricsSettings(activation_window_days=7)
EUR = FxTable("USD", {"EUR": ((date(2026, 1, 1), Decimal("1.5")), (date(2026, 1, 2), Decimal("2")))})


def ts(day: str) -> pd.Timestamp:
    return pd.Timestamp(day, tz="UTC")


# -- revenue ---------------------------------------------------------------------------------


def test_revenue_per_day_and_hour_with_refunds_on_their_own_day_and_fx() -> None:
    events = [
        ev("payment", "2026-01-01 10:15", value="19.99"),
        ev("payment", "2026-01-01 10:45", value="0.01"),
        ev("payment", "2026-01-01 23:59", "c2", value="10", currency="EUR"),
        ev("refund", "2026-01-02 08:00", value="5"),
        ev("refund", "2026-01-02 09:00", "c2", value="10", currency="EUR"),
        ev("payment_failed", "2026-01-02 09:00", value="30"),
    ]
    both = revenue(frame(*events), EUR, "D")
    day = both[both["product"] != "all"].set_index(["time", "currency"])
    usd1 = day.loc[(ts("2026-01-01"), "USD")]
    assert (usd1["gross"], usd1["refunds"], usd1["net"], usd1["payments"]) == (20, 0, 20, 2)
    eur1 = day.loc[(ts("2026-01-01"), "EUR")]
    assert (eur1["gross"], eur1["gross_rc"]) == (10, 15)  # EUR at 1.5 that day
    eur2 = day.loc[(ts("2026-01-02"), "EUR")]
    assert (eur2["refunds"], eur2["net"], eur2["net_rc"]) == (10, -10, -20)  # refund at 2.0
    usd2 = day.loc[(ts("2026-01-02"), "USD")]
    assert (usd2["failed"], usd2["failed_count"], usd2["net"]) == (30, 1, -5)
    # The portfolio row is in the reporting currency (USD): Jan 1 20 USD + 10 EUR x 1.5;
    # Jan 2 refunds 5 USD + 10 EUR x 2.0, failed 30 USD.
    total = both[both["product"] == "all"].set_index("time")
    assert set(total["currency"]) == {"USD"}
    jan1, jan2 = total.loc[ts("2026-01-01")], total.loc[ts("2026-01-02")]
    assert (jan1["gross"], jan1["net"], jan1["payments"]) == (35, 35, 3)
    assert (jan2["refunds"], jan2["net"], jan2["failed"], jan2["refund_count"]) == (25, -25, 30, 2)
    assert jan2["net_rc"] == jan2["net"]
    hour = revenue(frame(*events), EUR, "h")
    hour = hour[hour["product"] != "all"].set_index(["time", "currency"])
    assert hour.loc[(pd.Timestamp("2026-01-01 10:00", tz="UTC"), "USD"), "gross"] == 20
    assert hour.loc[(pd.Timestamp("2026-01-01 23:00", tz="UTC"), "EUR"), "gross"] == 10


# -- engagement ------------------------------------------------------------------------------


def test_dau_wau_mau_and_stickiness() -> None:
    events = [ev("active_use", d, "a") for d in ("2026-01-01", "2026-01-02", "2026-01-10 18:00",
              "2026-01-10 19:00")]  # fmt: skip
    events.append(ev("active_use", "2026-01-05", "b"))
    out = product_daily(frame(*events), S, until=ts("2026-02-10"))
    p = out[out["product"] == "p1"].set_index("time")
    assert p.loc[ts("2026-01-10"), ["dau", "wau", "mau"]].tolist() == [1, 2, 2]
    assert p.loc[ts("2026-01-10"), "stickiness"] == pytest.approx(0.5)
    assert p.loc[ts("2026-01-12"), ["dau", "wau", "mau"]].tolist() == [0, 1, 2]
    assert p.loc[ts("2026-02-04"), ["dau", "wau", "mau"]].tolist() == [0, 0, 1]  # Jan 6..Feb 4
    assert p.loc[ts("2026-02-09"), "mau"] == 0
    assert math.isnan(p.loc[ts("2026-02-09"), "stickiness"])
    assert len(p) == 41  # every day from the first event to `until`


def test_activation_rate_within_n_days_of_signup() -> None:
    events = [
        ev("signup", "2026-01-01 10:00", "u1"),
        ev("activation", "2026-01-08 09:00", "u1"),  # 6 days 23 h: in
        ev("signup", "2026-01-01 11:00", "u2"),
        ev("activation", "2026-01-09 11:00", "u2"),  # 8 days: out
        ev("signup", "2026-01-01 12:00", "u3"),
        ev("activation", "2025-12-31", "u4"),  # no signup
    ]
    out = product_daily(frame(*events), S)
    day1 = out[(out["product"] == "p1") & (out["time"] == ts("2026-01-01"))].iloc[0]
    assert (day1["signups"], day1["activated"]) == (3, 1)
    assert day1["activation_rate"] == pytest.approx(1 / 3)
    total = out[out["product"] == "p1"]["activations"].sum()
    assert total == 3


def test_a_product_first_seen_after_the_grid_end_has_no_row() -> None:
    """``first_days`` may hold the whole history (the rollup) while the events and ``until``
    stop earlier (a time chunk): a product first seen after the grid's last day gets no
    row, not one on that last day. Berlin (UTC+1 before 29 March): until 2026-03-23 00:00Z
    is 01:00 on 23 March, whose day starts 2026-03-22 23:00Z."""
    berlin = MetricsSettings(activation_window_days=2, timezone="Europe/Berlin")
    events = [ev("signup", "2026-03-22 03:31", "u1", product="p2")]  # 04:31 on 22 March
    first_days = pd.Series(
        [ts("2026-03-22 03:31"), ts("2026-03-27 12:32")], index=pd.Index(["p2", "p1"], dtype=object)
    )
    out = product_daily(frame(*events), berlin, ts("2026-03-23"), first_days)
    assert "p1" not in set(out["product"])
    days = [ts("2026-03-21 23:00"), ts("2026-03-22 23:00")]  # 22 and 23 March in Berlin
    for product in ("p2", "all"):
        rows = out[out["product"] == product].set_index("time")
        assert list(rows.index) == days, product
        assert rows["signups"].tolist() == [1, 0], product
    only_later = product_daily(frame(), berlin, ts("2026-03-23"), first_days.loc[["p1"]])
    assert only_later.empty


def test_a_chunked_berlin_recompute_writes_no_row_before_a_product_exists() -> None:
    """The engine streams product in chunks ending at UTC midnights, inside a Berlin day;
    p1's first event (25 March 12:00Z, Berlin day starting 24 March 23:00Z) comes after the
    early chunks, whose grids must not hold p1. Its rows: that day only (the horizon)."""
    from test_properties import MemoryStore

    from growthwatch.metrics.engine import MetricsEngine
    from growthwatch.stores.ledger import Ledger

    events = [
        ev("signup", "2026-03-22 05:00", "u1", product="p2"),
        ev("signup", "2026-03-23 05:00", "u2", product="p2"),
        ev("signup", "2026-03-24 05:00", "u3", product="p2"),
        ev("signup", "2026-03-25 12:00", "u4", product="p1"),
    ]
    stores = []
    for chunk_events in (10**9, 1):
        store = MemoryStore()
        settings = MetricsSettings(
            activation_window_days=2, timezone="Europe/Berlin", chunk_events=chunk_events
        )
        with Ledger() as ledger:
            ledger.append(events)
            engine = MetricsEngine(ledger, settings)
            engine.chunk_days = 1
            engine.recompute([store])
        stores.append(store)
    for store in stores:
        p1 = sorted(k[2] for k in store.points if k[:2] == ("product_daily", ("p1",)))
        assert p1 == [ts("2026-03-24 23:00")]
        p2 = sorted(k[2] for k in store.points if k[:2] == ("product_daily", ("p2",)))
        assert p2 == [ts("2026-03-21 23:00"), ts("2026-03-22 23:00"), ts("2026-03-23 23:00"),
                      ts("2026-03-24 23:00")]  # fmt: skip
    whole, chunked = stores
    assert chunked.points == whole.points


# -- cohorts ---------------------------------------------------------------------------------


def test_logo_retention_matrix_by_signup_month() -> None:
    events = [
        ev("signup", "2026-01-03", "a"), ev("signup", "2026-01-20", "b"),
        ev("signup", "2026-02-02", "c"),
        ev("active_use", "2026-01-04", "a"), ev("active_use", "2026-03-01", "a"),
        ev("active_use", "2026-02-10", "b"), ev("active_use", "2026-02-11", "b"),
        ev("active_use", "2026-02-03", "c"), ev("active_use", "2026-03-05", "c"),
        ev("active_use", "2026-03-05", "zz"),  # never signed up: no cohort
    ]  # fmt: skip
    out = logo_retention(frame(*events))
    p = out[out["product"] == "p1"]
    cells = {(r.time.strftime("%Y-%m"), r.age): (r.cohort_size, r.retained) for r in p.itertuples()}
    assert cells == {
        ("2026-01", "0"): (2, 1), ("2026-01", "1"): (2, 1), ("2026-01", "2"): (2, 1),
        ("2026-02", "0"): (1, 1), ("2026-02", "1"): (1, 1),
    }  # fmt: skip
    assert p["rate"].tolist() == [0.5, 0.5, 0.5, 1.0, 1.0]


def test_revenue_retention_by_first_payment_month() -> None:
    events = [
        sub("2026-01-05", 0, 100, "a"),
        sub("2026-01-25", 0, 100, "b"),
        sub("2026-02-10", 100, 150, "a"),  # expansion: cohort above 100 %
        sub("2026-03-02", 100, 0, "b"),
        sub("2026-02-01", 0, 40, "c"),
    ]
    out = revenue_retention(compute_mrr(frame(*events), S))
    p = out[(out["product"] == "p1")]
    got = {(r.time.strftime("%Y-%m"), r.age): (r.retained, r.mrr, round(r.rate, 4))
           for r in p.itertuples()}  # fmt: skip
    assert got == {
        ("2026-01", "0"): (2, 200, 1.0),
        ("2026-01", "1"): (2, 250, 1.25),
        ("2026-01", "2"): (1, 150, 0.75),
        ("2026-02", "0"): (1, 40, 1.0),
        ("2026-02", "1"): (1, 40, 1.0),
    }


# -- funnels ---------------------------------------------------------------------------------


def test_ordered_funnel_with_window_dropoff_and_branches() -> None:
    f = Funnel("paid", ("signup", "activation", "payment"), window_days=14)
    events = [
        ev("signup", "2026-01-01", "a"), ev("activation", "2026-01-03", "a"),
        ev("payment", "2026-01-10", "a", value="9"),
        ev("signup", "2026-01-01", "b"), ev("payment", "2026-01-05", "b", value="9"),
        ev("signup", "2026-01-02", "c"), ev("activation", "2026-01-20", "c"),  # outside window
        ev("activation", "2025-12-31", "d"), ev("signup", "2026-01-03", "d"),
        ev("activation", "2026-01-04", "d"),  # order matters: the Dec 31 one does not count
        ev("signup", "2026-01-05", "e"), ev("signup", "2026-02-01", "e"),  # counted once
    ]  # fmt: skip
    steps, branches = funnel_steps(frame(*events), f, S)
    p = steps[steps["product"] == "p1"].set_index("step")
    assert p["users"].tolist() == [5, 2, 1]
    assert p["conversion"].tolist() == pytest.approx([1, 0.4, 0.2])
    assert p["step_conversion"].tolist()[1:] == pytest.approx([0.4, 0.5])
    assert p["dropoff"].tolist() == [0, 3, 1]
    assert set(p["time"]) == {ts("2026-01-01")}
    b = branches[(branches["product"] == "p1") & (branches["users"] > 0)]
    got = {(r.step, r.next): r.users for r in b.itertuples()}
    assert got == {("1:signup", "payment"): 1, ("1:signup", "(none)"): 2,
                   ("2:activation", "(none)"): 1}  # fmt: skip
    everything = branches[branches["product"] == "p1"]
    assert len(everything) == 2 * everything["next"].nunique()  # full grid, zeros included


# -- traffic and KPIs ------------------------------------------------------------------------


def test_sessions_users_and_conversion_by_channel() -> None:
    """Signups take the channel of their session; conversion = converting sessions /
    sessions (one unit), so channel=all can never exceed 100 %."""
    events = [
        ev("session", "2026-01-01", None, value=100, channel="seo"),  # aggregate (GA4 row)
        ev("session", "2026-01-01", None, value=50, channel="ads"),
        ev("session", "2026-01-01 10:50", "u2", value=1, channel="ads"),  # u2's visit
        ev("session", "2026-01-01 11:40", "u4", value=1, channel="email"),  # too early
        ev("session", "2026-01-01", None, value=30, channel="seo", product="p2"),
        ev("signup", "2026-01-01 10:00", "u1", channel="seo"),  # no session: own channel
        ev("signup", "2026-01-01 11:00", "u2"),  # session 10 min before: ads
        ev("signup", "2026-01-01 12:00", "u3"),  # no session, no channel: only in "all"
        ev("signup", "2026-01-01 12:20", "u4"),  # session 40 min before (> 30): unattributed
    ]
    out = traffic_daily(frame(*events)).set_index(["product", "channel"])
    # seo: 100 sessions, u1's own channel -> 1 signup; no session led to it: 0 / 100
    assert out.loc[("p1", "seo"), ["sessions", "signups", "converting_sessions"]].tolist() == [
        100, 1, 0]  # fmt: skip
    assert out.loc[("p1", "seo"), "conversion"] == 0
    # ads: 50 + 1 sessions, one visitor (u2), u2's signup, 1 converting session: 1 / 51
    assert out.loc[("p1", "ads"), ["sessions", "users", "signups"]].tolist() == [51, 1, 1]
    assert out.loc[("p1", "ads"), "conversion"] == pytest.approx(1 / 51)
    assert out.loc[("p1", "email"), ["sessions", "signups"]].tolist() == [1, 0]
    # all channels: 100 + 50 + 1 + 1 sessions, 4 signups, 1 converting session
    assert out.loc[("p1", "all"), ["sessions", "signups"]].tolist() == [152, 4]
    assert out.loc[("p1", "all"), "conversion"] == pytest.approx(1 / 152)
    assert out.loc[("all", "seo"), "sessions"] == 130
    assert out.loc[("all", "all"), "conversion"] == pytest.approx(1 / 182)  # 152 + 30


def test_kpis_pass_through_once_each() -> None:
    events = [
        ev("kpi", "2026-01-01 06:00", None, value="12.5", kpi="orders", source_id="k1"),
        ev("kpi", "2026-01-01 07:00", None, value="3", kpi="tickets", source_id="k2"),
        ev("kpi", "2026-01-01 06:00", None, value="12.5", kpi="orders", source_id="k1"),  # replay
        ev("kpi", "2026-01-02 06:00", None, value="14", kpi="orders", source_id="k3"),
    ]
    out = kpi_series(frame(*events))
    got = sorted(zip(out["time"].dt.strftime("%d %H"), out["kpi"], out["value"], strict=True))
    assert got == [("01 06", "orders", 12.5), ("01 07", "tickets", 3.0), ("02 06", "orders", 14.0)]
