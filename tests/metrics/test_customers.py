"""Customer counts, churn rates, GRR/NRR, ARPA and LTV: hand-computed cases."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from metric_cases import ev, frame, sub

from growthwatch.metrics.customers import churn_periods
from growthwatch.metrics.mrr import compute_mrr
from growthwatch.metrics.revenue import revenue
from growthwatch.metrics.settings import MetricsSettings

S = MetricsSettings()


def periods(events: list, freq: str = "MS") -> pd.DataFrame:
    out = churn_periods(compute_mrr(frame(*events), S), freq)
    out["month"] = out["time"].dt.strftime("%Y-%m")
    return out.set_index(["product", "month"])


def feb_book() -> list:
    """Four customers paying 100 from January; February: c1 churns, c2 -20, c3 +50,
    c9 joins and churns inside February, c4 stays."""
    events = [sub("2026-01-05", 0, 100, f"c{i}") for i in range(1, 5)]
    events += [
        sub("2026-02-03", 100, 0, "c1"),
        sub("2026-02-10", 100, 80, "c2"),
        sub("2026-02-11", 100, 150, "c3"),
        sub("2026-02-12", 0, 40, "c9"),
        sub("2026-02-20", 40, 0, "c9"),
    ]
    return events


def test_customer_churn_rate_uses_customers_active_at_the_start() -> None:
    feb = periods(feb_book()).loc[("p1", "2026-02")]
    assert feb["customers_start"] == 4
    assert feb["churned_customers"] == 2  # two churn movements happened...
    assert feb["churned"] == 1  # ...but only c1 was active at the start
    assert feb["customer_churn_rate"] == pytest.approx(1 / 4)
    assert feb["customers_end"] == 3


def test_gross_and_net_revenue_churn_grr_nrr() -> None:
    feb = periods(feb_book()).loc[("p1", "2026-02")]
    assert feb["mrr_start"] == 400
    # churn 100 (c1) + 40 (c9, new in the month) ; contraction 20 ; expansion 50
    assert (feb["churn"], feb["contraction"], feb["expansion"], feb["new"]) == (140, 20, 50, 40)
    assert feb["gross_mrr_churn_rate"] == pytest.approx((140 + 20) / 400)
    assert feb["net_mrr_churn_rate"] == pytest.approx((140 + 20 - 50) / 400)
    assert feb["grr"] == pytest.approx(1 - 160 / 400)
    assert feb["nrr"] == pytest.approx(1 - 110 / 400)
    assert feb["mrr_end"] == 330  # 80 + 150 + 100
    assert feb["arpa"] == pytest.approx(330 / 3)


def test_portfolio_rates_are_ratios_of_sums_not_means_of_rates() -> None:
    events = [sub("2026-01-05", 0, 100, f"c{i}", product="a") for i in range(4)]
    events += [sub("2026-01-05", 0, 10, "z", product="b"), sub("2026-02-02", 10, 0, "z", product="b")]
    events += [sub("2026-02-02", 100, 0, "c0", product="a")]
    out = periods(events)
    assert out.loc[("a", "2026-02"), "customer_churn_rate"] == pytest.approx(1 / 4)
    assert out.loc[("b", "2026-02"), "customer_churn_rate"] == pytest.approx(1.0)
    assert out.loc[("all", "2026-02"), "customer_churn_rate"] == pytest.approx(2 / 5)
    assert out.loc[("all", "2026-02"), "gross_mrr_churn_rate"] == pytest.approx(110 / 410)


def test_zero_customer_periods_have_undefined_rates_not_zero() -> None:
    events = [sub("2026-01-05", 0, 100), sub("2026-01-20", 100, 0), sub("2026-04-02", 0, 50,
              type_="subscription_reactivated")]  # fmt: skip
    out = periods(events)
    for month in ("2026-02", "2026-03"):
        row = out.loc[("p1", month)]
        assert row["customers_start"] == 0 and row["customers_end"] == 0
        assert math.isnan(row["customer_churn_rate"])
        assert math.isnan(row["gross_mrr_churn_rate"]) and math.isnan(row["arpa"])
    assert out.loc[("p1", "2026-04"), "reactivated_customers"] == 1


def ltv_book(churn_each_month: bool) -> list:
    """Ten customers at 50 from Dec 15; each month Jan-Jul one churns and one joins."""
    events = [sub("2025-12-15", 0, 50, f"c{i}") for i in range(10)]
    if churn_each_month:
        for m in range(1, 8):
            events += [
                sub(f"2026-{m:02d}-10", 50, 0, f"c{m - 1}"),
                sub(f"2026-{m:02d}-10 12:00", 0, 50, f"n{m}"),
            ]
    return events


def test_ltv_is_arpa_over_mean_churn_of_previous_six_months() -> None:
    out = periods(ltv_book(True))
    # Jan..Jun each lose 1 of 10 customers at the start: mean churn 0.1; ARPA 500/10 = 50.
    for month in ("2026-01", "2026-06"):
        assert out.loc[("p1", month), "customer_churn_rate"] == pytest.approx(0.1)
    assert out.loc[("p1", "2026-07"), "arpa"] == pytest.approx(50)
    assert out.loc[("p1", "2026-07"), "ltv"] == pytest.approx(50 / 0.1)
    # December had no customers at its start: its rate is undefined and not averaged in.
    assert out.loc[("p1", "2026-02"), "ltv"] == pytest.approx(500)


def test_ltv_is_undefined_when_churn_is_zero() -> None:
    events = [*ltv_book(False), sub("2026-07-01", 0, 50, "late")]
    out = periods(events)
    assert out.loc[("p1", "2026-07"), "customer_churn_rate"] == 0
    assert math.isnan(out.loc[("p1", "2026-07"), "ltv"])
    assert not np.isinf(out["ltv"].to_numpy(dtype=float)).any()


def test_daily_counts_and_yearly_periods() -> None:
    days = churn_periods(compute_mrr(frame(*feb_book()), S), "D")
    feb3 = days[(days["product"] == "p1") & (days["time"] == pd.Timestamp("2026-02-03", tz="UTC"))]
    assert feb3["customers_start"].item() == 4 and feb3["churned"].item() == 1
    assert feb3["customer_churn_rate"].item() == pytest.approx(0.25)
    year = periods(feb_book(), "YS").loc[("p1", "2026-01")]
    assert year["customers_start"] == 0 and year["customers_end"] == 3
    assert year["mrr_end"] == 330


def test_refund_after_churn_lands_on_the_refund_day_and_leaves_mrr_alone() -> None:
    events = [
        sub("2026-01-01", 0, 100),
        ev("payment", "2026-01-01 00:05", value="100"),
        sub("2026-01-10", 100, 0),
        ev("refund", "2026-01-15 08:00", value="40"),
    ]
    until = pd.Timestamp("2026-01-20", tz="UTC")
    days = churn_periods(compute_mrr(frame(*events), S, until), "D").set_index(["product", "time"])
    assert days.loc[("p1", pd.Timestamp("2026-01-15", tz="UTC")), "churn"] == 0
    assert days["churned_customers"].sum() == 2  # p1 and all
    rev = revenue(frame(*events), S.fx)
    rev = rev[rev["product"] == "p1"].set_index("time")
    assert rev.loc[pd.Timestamp("2026-01-01", tz="UTC"), "net"] == 100
    jan15 = rev.loc[pd.Timestamp("2026-01-15", tz="UTC")]
    assert (jan15["gross"], jan15["refunds"], jan15["net"]) == (0, 40, -40)
