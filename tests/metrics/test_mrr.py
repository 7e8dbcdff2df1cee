"""MRR state and movements: hand-computed cases, including the hard ones of the issue."""

from __future__ import annotations

import random
from datetime import date
from decimal import Decimal

import pandas as pd
import pytest
from metric_cases import ev, frame, sub, t

from growthwatch.metrics.customers import churn_periods
from growthwatch.metrics.fx import FxError, FxTable
from growthwatch.metrics.mrr import compute_mrr, monthly_mrr
from growthwatch.metrics.settings import MetricsSettings

USD = MetricsSettings()
FX = MetricsSettings(
    fx=FxTable(
        "USD",
        {
            "EUR": ((date(2026, 1, 1), Decimal("1.10")), (date(2026, 1, 15), Decimal("1.20"))),
        },
    )
)


def daily(events: list, settings: MetricsSettings = USD, until: str | None = None) -> pd.DataFrame:
    """Per-day frame in units, indexed by (product, 'YYYY-MM-DD')."""
    state = compute_mrr(frame(*events), settings, None if until is None else pd.Timestamp(t(until)))
    out = churn_periods(state, "D")
    out["day"] = out["time"].dt.strftime("%Y-%m-%d")
    return out.set_index(["product", "day"])


def moves(events: list, settings: MetricsSettings = USD) -> list[tuple[str, str, str, float]]:
    m = compute_mrr(frame(*events), settings).movements
    return [
        (r.time.strftime("%m-%d %H:%M"), r.customer, r.kind, r.amount / 1e6)
        for r in m.itertuples()
    ]


def test_monthly_normalisation_follows_the_policy_table() -> None:
    assert monthly_mrr(Decimal("1200"), "year") == Decimal("100")
    assert monthly_mrr(Decimal("300"), "month", interval_count=3) == Decimal("100")  # quarterly
    assert monthly_mrr(Decimal("10"), "week") == Decimal("43.333333")  # 10 * 52 / 12
    assert monthly_mrr(Decimal("1"), "day") == Decimal("30.416667")  # 365 / 12
    assert monthly_mrr(Decimal("20"), "month", quantity=5, percent_off=Decimal(25)) == 75
    assert monthly_mrr(Decimal("20"), "month", percent_off=Decimal(100)) == 0
    with pytest.raises(ValueError):
        monthly_mrr(Decimal("1"), "fortnight")


def test_mid_cycle_upgrade_and_downgrade() -> None:
    events = [
        sub("2026-01-01 09:00", 0, 100),
        sub("2026-01-10 12:00", 100, 150),  # upgrade mid cycle: +50 expansion
        sub("2026-01-20 12:00", 150, 80),  # downgrade: -70 contraction
    ]
    assert moves(events) == [
        ("01-01 09:00", "c1", "new", 100.0),
        ("01-10 12:00", "c1", "expansion", 50.0),
        ("01-20 12:00", "c1", "contraction", 70.0),
    ]
    d = daily(events)
    assert d.loc[("p1", "2026-01-09"), "mrr_end"] == 100
    assert d.loc[("p1", "2026-01-10"), "mrr_end"] == 150
    assert d.loc[("p1", "2026-01-20"), "mrr_end"] == 80
    assert d.loc[("p1", "2026-01-20"), "contraction"] == 70
    assert d.loc[("all", "2026-01-20"), "mrr_end"] == 80
    assert (d["customers_end"] == 1).all()


def test_annual_plan_counts_one_twelfth_and_its_payment_is_revenue_not_mrr() -> None:
    annual = monthly_mrr(Decimal("1200"), "year")
    events = [
        sub("2026-01-05", 0, annual, interval="year"),
        ev("payment", "2026-01-05", value="1200"),
    ]
    d = daily(events, until="2026-03-01")
    assert d.loc[("p1", "2026-01-05"), "new"] == 100
    assert d.loc[("p1", "2026-02-28"), "mrr_end"] == 100  # no renewal needed to keep MRR
    assert d.loc[("p1", "2026-03-01"), "mrr_end"] == 100


def test_trial_has_no_mrr_until_it_converts() -> None:
    events = [
        ev("trial_started", "2026-01-01", before=0, after=0),
        sub("2026-01-15", 0, 50, type_="subscription_changed"),
    ]
    d = daily(events)
    assert d.loc[("p1", "2026-01-14"), "mrr_end"] == 0
    assert d.loc[("p1", "2026-01-14"), "customers_end"] == 0
    assert d.loc[("p1", "2026-01-15"), "new"] == 50
    assert d.loc[("p1", "2026-01-15"), "new_customers"] == 1


def test_cancel_at_period_end_keeps_mrr_until_the_period_ends() -> None:
    # Cancelled on Jan 10 "at period end": the source emits the cancellation on Feb 1.
    events = [sub("2026-01-01", 0, 100), sub("2026-02-01", 100, 0)]
    d = daily(events)
    assert d.loc[("p1", "2026-01-31"), "mrr_end"] == 100
    assert d.loc[("p1", "2026-01-31"), "customers_end"] == 1
    assert d.loc[("p1", "2026-02-01"), "churn"] == 100
    assert d.loc[("p1", "2026-02-01"), "churned_customers"] == 1
    assert d.loc[("p1", "2026-02-01"), "mrr_end"] == 0


def test_reactivation_before_period_end_is_no_movement() -> None:
    # Scheduled cancel undone before the period ended: MRR never left.
    events = [
        sub("2026-01-01", 0, 100),
        sub("2026-01-20", 100, 100, type_="subscription_reactivated"),
    ]
    assert moves(events) == [("01-01 00:00", "c1", "new", 100.0)]


def test_reactivation_within_the_netting_window_is_netted_away() -> None:
    events = [
        sub("2026-01-01", 0, 100),
        sub("2026-01-10 10:00", 100, 0),
        sub("2026-01-10 10:40", 0, 100, type_="subscription_reactivated"),
    ]
    assert moves(events) == [("01-01 00:00", "c1", "new", 100.0)]
    d = daily(events)
    assert d.loc[("p1", "2026-01-10"), ["churn", "reactivation"]].tolist() == [0, 0]


def test_reactivation_after_the_window_is_churn_then_reactivation() -> None:
    events = [
        sub("2026-01-01", 0, 100),
        sub("2026-01-10 10:00", 100, 0),
        sub("2026-01-10 11:30", 0, 120, type_="subscription_reactivated"),  # 90 min later
        sub("2026-03-01", 120, 0),
        sub("2026-04-02", 0, 90, type_="subscription_reactivated"),
    ]
    assert moves(events) == [
        ("01-01 00:00", "c1", "new", 100.0),
        ("01-10 10:00", "c1", "churn", 100.0),
        ("01-10 11:30", "c1", "reactivation", 120.0),
        ("03-01 00:00", "c1", "churn", 120.0),
        ("04-02 00:00", "c1", "reactivation", 90.0),
    ]
    d = daily(events)
    assert d.loc[("p1", "2026-01-10"), "mrr_end"] == 120
    assert d.loc[("p1", "2026-01-10"), "customers_end"] == 1
    assert d["new_customers"].sum() == 2  # p1 and all rows: one new customer each


def test_plan_switch_as_cancel_plus_new_subscription_is_one_expansion() -> None:
    events = [
        sub("2026-01-01", 0, 100, sid="s1"),
        sub("2026-01-05 10:00", 100, 0, sid="s1"),
        sub("2026-01-05 10:05", 0, 180, sid="s2"),
    ]
    assert moves(events)[1:] == [("01-05 10:00", "c1", "expansion", 80.0)]


def test_one_of_two_subscriptions_ending_is_contraction_not_churn() -> None:
    events = [
        sub("2026-01-01", 0, 100, sid="s1"),
        sub("2026-01-02", 0, 30, sid="s2"),
        sub("2026-01-09", 30, 0, sid="s2"),
    ]
    assert moves(events) == [
        ("01-01 00:00", "c1", "new", 100.0),
        ("01-02 00:00", "c1", "expansion", 30.0),
        ("01-09 00:00", "c1", "contraction", 30.0),
    ]


def test_foreign_mrr_is_valued_at_the_service_period_start_and_fx_moves_at_renewal() -> None:
    # EUR 100 from Jan 1 at 1.10 -> 110 USD. The rate moves to 1.20 on Jan 15, but the paid
    # period started at 1.10, so MRR stays 110 until the renewal on Feb 1 (a payment of the
    # subscription): +10 FX impact, never expansion. On Feb 10 the customer moves to a USD
    # subscription of 130 (cancel + new within the netting window): one expansion of 10.
    events = [
        sub("2026-01-01", 0, 100, currency="EUR", sid="eur"),
        ev("payment", "2026-02-01", value="100", currency="EUR", subscription="eur"),
        sub("2026-02-10 09:00", 100, 0, currency="EUR", sid="eur"),
        sub("2026-02-10 09:10", 0, 130, currency="USD", sid="usd"),
    ]
    d = daily(events, FX)
    assert d.loc[("p1", "2026-01-01"), ["mrr_end", "new"]].tolist() == pytest.approx([110, 110])
    assert d.loc[("p1", "2026-01-31"), "mrr_end"] == pytest.approx(110)
    row = d.loc[("p1", "2026-02-01")]
    assert (row["mrr_end"], row["fx_impact"], row["expansion"]) == pytest.approx((120, 10, 0))
    row = d.loc[("p1", "2026-02-10")]
    assert (row["mrr_end"], row["expansion"], row["churn"], row["fx_impact"]) == pytest.approx(
        (130, 10, 0, 0)
    )
    assert moves(events, FX)[1] == ("02-10 09:00", "c1", "expansion", 10.0)
    assert d["fx_impact"].sum() == pytest.approx(2 * 10)  # p1 and all


def test_a_change_inside_the_period_keeps_the_periods_rate() -> None:
    events = [
        sub("2026-01-10", 0, 100, currency="EUR", sid="s"),  # 1.10 -> 110
        sub("2026-01-20", 100, 200, currency="EUR", sid="s"),  # seats added at the same rate
    ]
    d = daily(events, FX)
    row = d.loc[("p1", "2026-01-20")]
    assert (row["expansion"], row["fx_impact"], row["mrr_end"]) == pytest.approx((110, 0, 220))


def test_same_subscription_changing_currency_is_valued_at_the_days_rate() -> None:
    events = [
        sub("2026-01-16", 0, 100, currency="EUR", sid="s"),
        sub("2026-01-18", 100, 100, currency="USD", sid="s", type_="subscription_changed"),
    ]
    d = daily(events, FX)
    assert d.loc[("p1", "2026-01-18"), "contraction"] == pytest.approx(20)  # 120 -> 100
    assert d.loc[("p1", "2026-01-18"), "mrr_end"] == pytest.approx(100)


def test_missing_exchange_rate_is_an_error_not_a_silent_zero() -> None:
    with pytest.raises(FxError, match="GBP"):
        compute_mrr(frame(sub("2026-01-01", 0, 10, currency="GBP")), FX)
    assert FX.fx.rate_on("EUR", date(2025, 6, 1)) == pytest.approx(1.10)  # before the table
    assert FX.fx.rate_on("EUR", date(2026, 1, 15)) == pytest.approx(1.20)
    assert FX.fx.rate_on("USD", date(2026, 1, 15)) == 1


def test_out_of_order_and_duplicated_events_give_the_same_numbers() -> None:
    events = [
        sub("2026-01-01", 0, 100, source_id="a"),
        sub("2026-01-03", 100, 140, source_id="b"),
        sub("2026-01-02", 0, 60, "c2", source_id="c"),
        sub("2026-01-08", 60, 0, "c2", source_id="d"),
        sub("2026-01-09", 0, 70, "c2", source_id="e", type_="subscription_reactivated"),
    ]
    shuffled = events[::-1] + events[1:3]  # reversed, and two replays (same keys)
    random.Random(7).shuffle(shuffled)
    pd.testing.assert_frame_equal(daily(events), daily(shuffled))
    d = daily(events)
    assert d.loc[("p1", "2026-01-09"), "mrr_end"] == 210
    assert d.loc[("p1", "2026-01-09"), "reactivation"] == 70


def test_a_lost_event_is_corrected_by_the_next_state() -> None:
    # The 100 -> 140 change never arrived; the next event restates the subscription.
    events = [sub("2026-01-01", 0, 100, sid="s1"), sub("2026-01-05", 140, 150, sid="s1")]
    d = daily(events)
    assert d.loc[("p1", "2026-01-05"), "mrr_end"] == 150
    assert d.loc[("p1", "2026-01-05"), "expansion"] == 50


def test_without_subscription_ids_the_events_own_change_is_used() -> None:
    # Two subscriptions the source cannot tell apart: each event's before/after is trusted.
    events = [sub("2026-01-01", 0, 10), sub("2026-01-01 05:00", 0, 5), sub("2026-01-03", 10, 0)]
    d = daily(events)
    assert d.loc[("p1", "2026-01-01"), "mrr_end"] == 15
    assert d.loc[("p1", "2026-01-03"), ["mrr_end", "contraction", "churn"]].tolist() == [5, 10, 0]


def test_identity_holds_for_every_product_and_day() -> None:
    events = [
        sub("2026-01-01", 0, 100, product="a"),
        sub("2026-01-02", 0, 50, "c2", product="b", currency="EUR", sid="b1"),
        sub("2026-01-16", 100, 30, product="a"),
        ev("payment", "2026-01-16", "c2", product="b", value="50", currency="EUR",
           subscription="b1"),
        sub("2026-01-17", 50, 0, "c2", product="b", currency="EUR", sid="b1"),
    ]  # fmt: skip
    d = daily(events, FX).reset_index()
    explained = (
        d["mrr_start"] + d["new"] + d["expansion"] + d["reactivation"]
        - d["contraction"] - d["churn"] + d["fx_impact"]
    )  # fmt: skip
    assert ((explained - d["mrr_end"]).abs() < 0.005).all()
    b = d[d["product"] == "b"]
    assert b["fx_impact"].sum() == pytest.approx(5)  # renewal on Jan 16: 55 -> 60
    assert b["churn"].sum() == pytest.approx(60)  # churn of what it was worth
