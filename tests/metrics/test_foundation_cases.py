"""The foundation's hand-computed daily case (formerly ``metrics/daily.py``), on the engine.

Same events and the same expected numbers as the first version of the demo series, so
replacing ``daily_series`` by the engine kept what the demo showed.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from growthwatch.events import GrowthEvent
from growthwatch.frames import events_to_frame
from growthwatch.metrics.engine import metric_batches

D = datetime(2025, 2, 1, tzinfo=UTC)
_n = 0


def ev(type_: str, day: float, subject: str, **kw: Any) -> GrowthEvent:
    global _n
    _n += 1
    return GrowthEvent(product=kw.pop("product", "p"), type=type_, timestamp=D + timedelta(days=day),  # type: ignore[arg-type]
                       subject=subject, source="t", source_id=str(_n), **kw)  # fmt: skip


def sub(type_: str, day: float, subject: str, before: str, after: str) -> GrowthEvent:
    return ev(type_, day, subject, currency="USD", value=Decimal(after) - Decimal(before),
              mrr_before=Decimal(before), mrr_after=Decimal(after))  # fmt: skip


def test_foundation_daily_case_on_the_engine() -> None:
    events = [
        # c1: two subscriptions; cancelling one keeps c1 active, cancelling both churns.
        sub("subscription_started", 0.1, "c1", "0", "10"),
        sub("subscription_started", 0.2, "c1", "0", "5"),
        sub("subscription_started", 1.5, "c2", "0", "20"),
        sub("subscription_cancelled", 2.5, "c1", "10", "0"),
        sub("subscription_cancelled", 3.5, "c1", "5", "0"),
        sub("subscription_reactivated", 3.9, "c1", "0", "7"),  # same day: still active at end
        sub("subscription_cancelled", 4.5, "c2", "20", "0"),
        ev("payment", 0.5, "c1", currency="USD", value=Decimal("15.00")),
        ev("payment", 0.7, "c3", currency="USD", value=Decimal("4.99")),
        ev("refund", 2.2, "c1", currency="USD", value=Decimal("15.00")),
        ev("payment", 0.5, "c9", currency="EUR", value=Decimal("9.00")),
        ev("signup", 0.3, "u1", value=Decimal(1)),
        ev("signup", 0.4, "u2", value=Decimal(1)),
        ev("signup", 3.0, "u3", value=Decimal(1)),
    ]
    from growthwatch.metrics.fx import FxTable
    from growthwatch.metrics.settings import MetricsSettings

    settings = MetricsSettings(fx=FxTable.constant("USD", {"EUR": Decimal("1.1")}))
    batches = {b.measurement: b.frame for b in metric_batches(events_to_frame(events), settings)}
    customers = batches["customers_daily"]
    customers = customers[customers["product"] == "p"]
    assert customers["active"].tolist() == [1, 2, 2, 2, 1]  # Feb 1..5
    assert customers["time"].dt.day.tolist() == [1, 2, 3, 4, 5]
    assert customers["cancellations"].tolist() == [0, 0, 1, 1, 1]
    assert customers["churned"].tolist() == [0, 0, 0, 1, 1]  # Feb 4: churn and reactivation
    assert customers["reactivated"].tolist() == [0, 0, 0, 1, 0]
    revenue = batches["revenue_daily"]
    revenue = revenue[revenue["product"] == "p"].set_index(["time", "currency"])
    feb1 = revenue.loc[(D, "USD")]
    assert (feb1["gross"], feb1["refunds"], feb1["net"], feb1["payments"]) == (19.99, 0, 19.99, 2)
    feb3 = revenue.loc[(D + timedelta(days=2), "USD")]  # refund lands on its own day
    assert (feb3["gross"], feb3["refunds"], feb3["net"]) == (0, 15.0, -15.0)
    assert revenue.loc[(D, "EUR")]["net"] == 9.0
    assert revenue.loc[(D, "EUR")]["net_rc"] == 9.9
    product = batches["product_daily"]
    assert product[product["product"] == "p"]["signups"].tolist() == [2, 0, 0, 1, 0]
    mrr = batches["mrr_daily"]
    assert mrr[mrr["product"] == "p"]["mrr"].tolist() == [15, 35, 25, 27, 7]
