"""ARR, ASP and quick ratio: hand-computed cases, including the undefined ones."""

from __future__ import annotations

import math

import pandas as pd
import pytest
from metric_cases import frame, sub

from growthwatch.metrics.engine import compute, to_batches
from growthwatch.metrics.schema import unit
from growthwatch.metrics.settings import MetricsSettings

S = MetricsSettings()


def book() -> list:
    """January: c1..c4 start at 100 (new 400, 4 new customers, nothing lost).
    February: c1 churns (-100), c2 -20, c3 +50, c9 joins at 40 and churns at 40.
    March: c5 joins at 70 and c3 +30 (nothing lost).
    April: nothing happens."""
    events = [sub("2026-01-05", 0, 100, f"c{i}") for i in range(1, 5)]
    events += [
        sub("2026-02-03", 100, 0, "c1"),
        sub("2026-02-10", 100, 80, "c2"),
        sub("2026-02-11", 100, 150, "c3"),
        sub("2026-02-12", 0, 40, "c9"),
        sub("2026-02-20", 40, 0, "c9"),
        sub("2026-03-02", 0, 70, "c5"),
        sub("2026-03-09", 150, 180, "c3"),
        sub("2026-04-15", 80, 80, "c2"),  # a restatement: no movement, keeps April alive
    ]
    return events


@pytest.fixture(scope="module")
def frames() -> dict[str, pd.DataFrame]:
    return compute(frame(*book()), S)


def month(frames: dict[str, pd.DataFrame], text: str) -> pd.Series:
    out = frames["churn_monthly"]
    row = out[(out["product"] == "p1") & (out["time"].dt.strftime("%Y-%m") == text)]
    assert len(row) == 1
    return row.iloc[0]


def test_arr_is_twelve_times_mrr_at_the_period_end(frames: dict[str, pd.DataFrame]) -> None:
    assert month(frames, "2026-01")["arr"] == 12 * 400
    assert month(frames, "2026-02")["arr"] == 12 * 330  # 80 + 150 + 100
    assert month(frames, "2026-03")["arr"] == 12 * (80 + 180 + 100 + 70)
    daily = frames["mrr_daily"]
    feb10 = pd.Timestamp("2026-02-10", tz="UTC")
    day = daily[(daily["product"] == "p1") & (daily["time"] == feb10)]
    assert day.iloc[0]["arr"] == 12 * (0 + 80 + 100 + 100)  # c1 gone, c2 at 80


def test_asp_is_new_mrr_per_new_customer_and_undefined_without_one(
    frames: dict[str, pd.DataFrame],
) -> None:
    assert month(frames, "2026-01")["asp"] == 100  # 400 / 4
    assert month(frames, "2026-02")["asp"] == 40  # c9 only
    assert month(frames, "2026-03")["asp"] == 70
    assert math.isnan(month(frames, "2026-04")["asp"])  # no new customer: undefined


def test_quick_ratio_gained_over_lost_and_undefined_when_nothing_was_lost(
    frames: dict[str, pd.DataFrame],
) -> None:
    # February: gained new 40 + expansion 50 + reactivation 0; lost churn 140 + contraction 20
    assert month(frames, "2026-02")["quick_ratio"] == pytest.approx(90 / 160)
    for m in ("2026-01", "2026-03", "2026-04"):  # nothing lost: undefined, never infinite
        assert math.isnan(month(frames, m)["quick_ratio"])


def test_reactivation_counts_as_gained_and_portfolio_uses_sums() -> None:
    events = [
        sub("2026-01-05", 0, 100, "a", product="x"),
        sub("2026-01-20", 100, 0, "a", product="x"),
        sub("2026-02-03", 0, 60, "a", product="x", type_="subscription_reactivated"),
        sub("2026-01-05", 0, 50, "b", product="y"),
        sub("2026-02-07", 50, 30, "b", product="y"),
    ]
    out = compute(frame(*events), S)["churn_monthly"]
    feb = out[out["time"].dt.strftime("%Y-%m") == "2026-02"].set_index("product")
    assert math.isnan(feb.loc["x", "quick_ratio"])  # reactivation 60, nothing lost
    assert feb.loc["y", "quick_ratio"] == 0  # lost 20, gained nothing: 0, defined
    assert feb.loc["all", "quick_ratio"] == pytest.approx(60 / 20)  # ratio of sums
    assert math.isnan(feb.loc["all", "asp"])  # a reactivation is not a new customer
    jan = out[out["time"].dt.strftime("%Y-%m") == "2026-01"].set_index("product")
    assert jan.loc["all", "asp"] == pytest.approx(150 / 2)
    assert jan.loc["all", "quick_ratio"] == pytest.approx(150 / 100)


def test_schema_units_and_undefined_values_are_not_written(
    frames: dict[str, pd.DataFrame],
) -> None:
    assert unit("churn_monthly", "arr") == "money"
    assert unit("mrr_daily", "arr") == "money"
    assert unit("churn_monthly", "asp") == "money"
    assert unit("churn_monthly", "quick_ratio") == "number"  # 2.5, not 250 %
    batch = {b.measurement: b for b in to_batches(frames)}["churn_monthly"]
    april = batch.frame[(batch.frame["product"] == "p1")
                        & (batch.frame["time"].dt.strftime("%Y-%m") == "2026-04")]  # fmt: skip
    assert math.isnan(april.iloc[0]["asp"]) and april.iloc[0]["arr"] == 12 * 430
