"""Stripe's ``cancellation_details`` on the cancellation event: reason and feedback kept
in metadata (``cancel_reason``, ``cancel_feedback``); ``payment_failed`` makes the churn
delinquent in the metrics."""

from __future__ import annotations

from exporter_fakes import subscription

from exporters.stripe_mapping import subscription_transition
from growthwatch.events import EventType, GrowthEvent
from growthwatch.frames import events_to_frame
from growthwatch.metrics.mrr import customer_movements
from growthwatch.metrics.settings import MetricsSettings

T0 = 1_700_000_000


def cancelled(
    details: dict[str, object] | None, sub_id: str = "sub_1", customer: str = "cus_1"
) -> list[GrowthEvent]:
    live = subscription(sub_id, customer=customer)
    first = subscription_transition(None, live, product="acme", observed=T0,
                                    event_type="customer.subscription.created")  # fmt: skip
    gone = subscription(sub_id, customer=customer, status="canceled", ended_at=T0 + 86_400)
    if details is not None:
        gone["cancellation_details"] = details
    last = subscription_transition(first.state, gone, product="acme", observed=T0 + 86_400,
                                   event_type="customer.subscription.deleted")  # fmt: skip
    (event,) = last.events
    assert event.type == EventType.SUBSCRIPTION_CANCELLED
    return [*first.events, event]


def test_reason_and_feedback_are_kept_and_the_comment_is_not() -> None:
    *_, event = cancelled({"reason": "cancellation_requested", "feedback": "too_expensive",
                           "comment": "my card is maxed"})  # fmt: skip
    meta = dict(event.metadata)
    assert (meta["cancel_reason"], meta["cancel_feedback"]) == ("cancellation_requested",
                                                                "too_expensive")  # fmt: skip
    assert "my card is maxed" not in str(meta)


def test_absent_or_null_details_add_nothing() -> None:
    for details in (None, {"reason": None, "feedback": None, "comment": None}):
        *_, event = cancelled(details)
        assert not {"cancel_reason", "cancel_feedback"} & set(event.metadata)


def test_a_payment_failed_reason_is_delinquent_churn_downstream() -> None:
    events = cancelled({"reason": "payment_failed"}, "sub_1", "cus_1")
    events += cancelled({"reason": "cancellation_requested"}, "sub_2", "cus_2")
    moves = customer_movements(events_to_frame(events), MetricsSettings())
    churn = moves[moves["kind"] == "churn"].set_index("customer")["cause"].to_dict()
    assert churn == {"cus_1": "delinquent", "cus_2": "voluntary"}
