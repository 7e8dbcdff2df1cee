"""Stripe pauses: ``pause_collection`` and status ``paused`` -> pause/resume events."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from exporters.stripe_mapping import subscription_transition
from growthwatch.events import EventType

T0 = 1_760_000_000


def subscription(sub_id: str) -> dict[str, Any]:
    """A Stripe subscription object (API shape, trimmed to what the mapping reads): one
    licensed monthly price of 20.00 USD."""
    price = {"id": "price_pro", "object": "price", "nickname": "pro", "currency": "usd",
             "unit_amount": 2000, "billing_scheme": "per_unit",
             "recurring": {"interval": "month", "interval_count": 1, "usage_type": "licensed"}}
    return {"id": sub_id, "object": "subscription", "customer": "cus_1", "status": "active",
            "currency": "usd", "created": T0 - 100, "start_date": T0 - 100,
            "pause_collection": None, "discounts": [],
            "items": {"object": "list", "data": [{"id": "si_1", "price": price, "quantity": 1}]}}

def test_pause_collection_and_status_paused_map_to_pause_and_resume() -> None:
    """Stripe ``pause_collection`` set -> subscription_paused (MRR -> 0, not a cancel);
    cleared -> subscription_resumed; status ``paused`` likewise."""
    sub = subscription("sub_p")  # 20.00 a month
    first = subscription_transition(None, sub, product="acme", observed=T0, event_id="evt_1")
    assert [e.type for e in first.events] == [EventType.SUBSCRIPTION_STARTED]
    paused = {**sub, "pause_collection": {"behavior": "void", "resumes_at": None}}
    second = subscription_transition(first.state, paused, product="acme", observed=T0 + 10,
                                     event_id="evt_2", event_type="customer.subscription.updated")  # fmt: skip
    (pause,) = second.events
    assert pause.type == EventType.SUBSCRIPTION_PAUSED
    assert (pause.mrr_before, pause.mrr_after) == (Decimal("20"), Decimal("0"))
    resumed = {**sub, "pause_collection": None}
    third = subscription_transition(second.state, resumed, product="acme", observed=T0 + 20,
                                    event_id="evt_3", event_type="customer.subscription.updated")  # fmt: skip
    (resume,) = third.events
    assert resume.type == EventType.SUBSCRIPTION_RESUMED
    assert (resume.mrr_before, resume.mrr_after) == (Decimal("0"), Decimal("20"))
    status_paused = {**sub, "status": "paused"}
    fourth = subscription_transition(third.state, status_paused, product="acme",
                                     observed=T0 + 30, event_id="evt_4")  # fmt: skip
    assert [e.type for e in fourth.events] == [EventType.SUBSCRIPTION_PAUSED]
