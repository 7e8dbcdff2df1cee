"""Stripe objects -> growth events: MRR rules of METRICS.md and lifecycle transitions."""

from __future__ import annotations

import random
from decimal import Decimal

import pytest
from exporter_fakes import charge, invoice_failed, refund, stripe_fixture, subscription
from hypothesis import given, settings
from hypothesis import strategies as st

from exporters.stripe_mapping import (
    MappingError,
    charge_payment,
    invoice_payment_failed,
    refund_event,
    subscription_mrr,
    subscription_transition,
)
from growthwatch.events import EventType

T0 = 1_700_000_000


@pytest.mark.parametrize(
    ("interval", "count", "amount", "quantity", "expected"),
    [
        ("month", 1, 2000, 1, "20"),
        ("month", 3, 3000, 1, "10"),
        ("year", 1, 24000, 1, "20"),
        ("week", 1, 1000, 2, "86.666667"),  # 20 * 52 / 12
        ("day", 1, 100, 1, "30.416667"),  # 1 * 365 / 12
        ("month", 1, 2000, 5, "100"),
    ],
)
def test_mrr_normalises_interval_and_quantity(
    interval: str, count: int, amount: int, quantity: int, expected: str
) -> None:
    sub = subscription("sub_1", interval=interval, interval_count=count, unit_amount=amount,
                       quantity=quantity)  # fmt: skip
    assert subscription_mrr(sub).mrr == Decimal(expected)


def test_mrr_uses_minor_units_of_the_currency() -> None:
    assert subscription_mrr(subscription("sub_1", currency="jpy", unit_amount=1500)).mrr == 1500
    assert subscription_mrr(subscription("sub_1", currency="kwd", unit_amount=1500)).mrr == Decimal(
        "1.5"
    )


def coupon(duration: str, *, percent: float | None = None, amount: int | None = None,
           end: int | None = None, months: int | None = None) -> dict[str, object]:  # fmt: skip
    c = stripe_fixture("coupon", duration=duration, percent_off=percent, amount_off=amount,
                       duration_in_months=months, currency="usd")  # fmt: skip
    return stripe_fixture("discount", end=end, source={"coupon": c, "type": "coupon"})


def test_recurring_coupons_reduce_mrr_once_does_not() -> None:
    forever = subscription("sub_1", unit_amount=10000, discounts=[coupon("forever", percent=25)])
    assert subscription_mrr(forever).mrr == Decimal("75")
    repeating = subscription("sub_1", unit_amount=10000,
                             discounts=[coupon("repeating", amount=1000, end=T0 + 100)])  # fmt: skip
    assert subscription_mrr(repeating, at=T0).mrr == Decimal("90")
    assert subscription_mrr(repeating, at=T0 + 200).mrr == Decimal("100")  # it ran out
    once = subscription("sub_1", unit_amount=10000, discounts=[coupon("once", percent=50)])
    assert subscription_mrr(once).mrr == Decimal("100")
    full = subscription("sub_1", unit_amount=10000, discounts=[coupon("forever", percent=100)])
    assert subscription_mrr(full).mrr == 0


def test_legacy_discount_with_coupon_field() -> None:
    sub = subscription("sub_1", unit_amount=10000)
    sub["discount"] = {"id": "di_1", "coupon": {"duration": "forever", "percent_off": 10}}
    assert subscription_mrr(sub).mrr == Decimal("90")


@pytest.mark.parametrize(
    ("status", "paused", "expected"),
    [("active", False, "20"), ("past_due", False, "20"), ("trialing", False, "0"),
     ("unpaid", False, "0"), ("canceled", False, "0"), ("paused", False, "0"),
     ("active", True, "0")],
)  # fmt: skip
def test_status_rules(status: str, paused: bool, expected: str) -> None:
    sub = subscription("sub_1", status=status)
    if paused:
        sub["pause_collection"] = {"behavior": "void", "resumes_at": None}
    info = subscription_mrr(sub)
    assert info.mrr == Decimal(expected)
    assert info.gross == Decimal("20")


def test_metered_items_are_excluded_and_legacy_plan_items_are_read() -> None:
    sub = subscription("sub_1")
    metered = subscription("sub_x")["items"]["data"][0]
    metered["price"]["recurring"]["usage_type"] = "metered"
    sub["items"]["data"].append(metered)
    assert subscription_mrr(sub).mrr == Decimal("20")
    legacy = subscription("sub_2", unit_amount=12000, interval="year")
    del legacy["items"]["data"][0]["price"]
    assert subscription_mrr(legacy).mrr == Decimal("10")


def test_transition_chain_telescopes_and_cancel_at_period_end_is_not_churn() -> None:
    sub = subscription("sub_1")
    first = subscription_transition(None, sub, product="acme", observed=T0, event_id="evt_1",
                                    event_type="customer.subscription.created")  # fmt: skip
    (started,) = first.events
    assert started.type == EventType.SUBSCRIPTION_STARTED
    assert (started.mrr_before, started.mrr_after, started.value) == (0, 20, 20)
    assert started.source_id == "sub_1" and started.kind == "subscription_started"
    expected = {"subscription": "sub_1", "plan": "pro", "interval": "month", "quantity": 1}
    assert dict(started.metadata).items() >= expected.items()
    seats = subscription("sub_1", quantity=3)
    second = subscription_transition(first.state, seats, product="acme", observed=T0 + 10,
                                     event_id="evt_2", event_type="customer.subscription.updated")  # fmt: skip
    (changed,) = second.events
    assert changed.type == EventType.SUBSCRIPTION_CHANGED
    assert changed.source_id == "sub_1@1700000010:60"  # the fact (sub, second, MRR), not evt_2
    assert (changed.mrr_before, changed.mrr_after) == (20, 60)
    scheduled = subscription("sub_1", quantity=3, cancel_at_period_end=True)
    third = subscription_transition(second.state, scheduled, product="acme", observed=T0 + 20,
                                    event_id="evt_3", event_type="customer.subscription.updated")  # fmt: skip
    assert third.events == []
    gone = subscription("sub_1", quantity=3, status="canceled", ended_at=T0 + 30)
    fourth = subscription_transition(third.state, gone, product="acme", observed=T0 + 30,
                                     event_id="evt_4", event_type="customer.subscription.deleted")  # fmt: skip
    (cancelled,) = fourth.events
    assert cancelled.type == EventType.SUBSCRIPTION_CANCELLED
    assert (cancelled.mrr_before, cancelled.mrr_after, cancelled.value) == (60, 0, -60)
    assert sum(e.value for t in (first, second, third, fourth) for e in t.events) == 0
    # an older observation after the terminal one changes nothing
    late = subscription_transition(fourth.state, seats, product="acme", observed=T0 + 10,
                                   event_id="evt_2")  # fmt: skip
    assert late.events == [] and late.state is None


def test_trial_then_conversion_and_first_sight_of_a_cancelled_subscription() -> None:
    trial = subscription("sub_t", status="trialing", trial=(T0, T0 + 14 * 86400))
    first = subscription_transition(None, trial, product="acme", observed=T0)
    (started_trial,) = first.events
    assert started_trial.type == EventType.TRIAL_STARTED and started_trial.value == 0
    assert started_trial.metadata["trial_end"] == T0 + 14 * 86400  # the trials' end of trial
    paid = subscription("sub_t", trial=(T0, T0 + 14 * 86400))
    second = subscription_transition(first.state, paid, product="acme", observed=T0 + 14 * 86400,
                                     event_id="evt_9")  # fmt: skip
    (converted,) = second.events
    assert converted.type == EventType.SUBSCRIPTION_STARTED and converted.source_id == "sub_t"
    assert converted.mrr_after == 20
    # A backfill that sees the same subscription only now produces the same keys.
    backfill = subscription_transition(None, paid, product="acme", observed=T0 + 20 * 86400)
    assert {e.idempotency_key for e in backfill.events} == {
        started_trial.idempotency_key, converted.idempotency_key
    }
    dead = subscription("sub_d", status="canceled", ended_at=T0 + 50)
    seen = subscription_transition(None, dead, product="acme", observed=T0 + 60)
    assert [e.type for e in seen.events] == [EventType.SUBSCRIPTION_STARTED,
                                             EventType.SUBSCRIPTION_CANCELLED]  # fmt: skip
    assert sum(e.value for e in seen.events) == 0


def test_money_events_and_bad_records() -> None:
    payment = charge_payment(charge("ch_1", amount=1999), "acme")
    assert payment is not None and payment.value == Decimal("19.99") and payment.currency == "USD"
    assert payment.source_id == "ch_1" and payment.subject == "cus_1"
    guest = charge_payment(charge("ch_2", customer=None), "acme")
    assert guest is not None and guest.subject == "guest:ch_2"
    uncaptured = charge("ch_3")
    uncaptured["captured"] = False
    assert charge_payment(uncaptured, "acme") is None
    money_back = refund_event(refund("re_1", charge_id="ch_1", amount=500), "acme")
    assert money_back is not None and money_back.value == Decimal("5") and money_back.subject
    failed = invoice_payment_failed(invoice_failed("in_1", attempt=2), "acme")
    assert failed is not None and failed.source_id == "in_1:attempt:2"
    with pytest.raises(MappingError) as exc:
        charge_payment(charge("ch_4", currency="xyz"), "acme")
    assert exc.value.reason == "unknown_currency"
    nameless = charge("ch_5")
    del nameless["id"]
    with pytest.raises(MappingError) as exc:
        charge_payment(nameless, "acme")
    assert exc.value.reason == "missing_id"


STATUSES = ("active", "past_due", "trialing", "unpaid", "paused", "incomplete")


@settings(max_examples=200, deadline=None)
@given(
    steps=st.lists(st.tuples(st.sampled_from(STATUSES), st.integers(1, 5)), min_size=1,
                   max_size=6),
    cancelled=st.booleans(),
    order=st.randoms(use_true_random=False),
)  # fmt: skip
def test_any_delivery_order_ends_in_the_latest_state_and_mrr_adds_up(
    steps: list[tuple[str, int]], cancelled: bool, order: random.Random
) -> None:
    observations = [(T0 + 10 * i, subscription("sub_p", status=s, quantity=q))
                    for i, (s, q) in enumerate(steps)]  # fmt: skip
    if cancelled:
        last = T0 + 10 * len(steps)
        observations.append((last, subscription("sub_p", status="canceled", ended_at=last)))
    delivered = observations[:]
    order.shuffle(delivered)
    state = None
    total = Decimal(0)
    keys: set[str] = set()
    for observed, sub in delivered:
        step = subscription_transition(state, sub, product="acme", observed=observed,
                                       event_id=f"evt_{observed}")  # fmt: skip
        for event in step.events:
            if event.idempotency_key not in keys:  # the ledger stores a key once
                keys.add(event.idempotency_key)
                total += event.value
        state = step.state or state
    assert state is not None
    latest_at, latest = max(observations, key=lambda o: o[0])
    assert state["observed"] == latest_at  # the newest observation always wins
    assert Decimal(state["mrr"]) == subscription_mrr(latest).mrr
    assert total == Decimal(state["mrr"])  # the events' values sum to the MRR they leave


def test_credit_note_counts_only_what_no_refund_object_carries() -> None:
    from exporters.stripe_mapping import credit_note_event

    note = stripe_fixture("credit_note", id="cn_1", total=1690, currency="usd",
                          customer="cus_1", type="post_payment", status="issued",
                          effective_at=T0, created=T0,
                          refunds=[{"amount_refunded": 1000, "refund": "re_1"}])  # fmt: skip
    event = credit_note_event(note, "acme")
    assert event is not None and event.type == EventType.REFUND
    assert (event.value, event.source_id, event.subject) == (Decimal("6.9"), "cn_1", "cus_1")
    assert credit_note_event({**note, "type": "pre_payment"}, "acme") is None  # not paid yet
    assert credit_note_event({**note, "status": "void"}, "acme") is None
    assert credit_note_event({**note, "refunds": [{"amount_refunded": 1690}]}, "acme") is None


def test_history_reads_legacy_line_items_too() -> None:
    """Before 2025-03-31 lines carried ``price``, ``proration``, ``subscription_item``."""
    from exporters.stripe_history import rebuild_subscription

    sub = subscription("sub_l", created=T0, quantity=3, unit_amount=1000)
    price = sub["items"]["data"][0]["price"]
    si = sub["items"]["data"][0]["id"]

    def line(start: int, qty: int, proration: bool, amount: int) -> dict[str, object]:
        return {"object": "line_item", "type": "invoiceitem" if proration else "subscription",
                "subscription": "sub_l", "subscription_item": si, "price": price,
                "quantity": qty, "proration": proration, "amount": amount,
                "period": {"start": start, "end": T0 + 60 * 86400}, "discounts": []}  # fmt: skip

    invoices = [
        {"id": "in_1", "status": "paid", "created": T0, "subscription": "sub_l",
         "lines": {"data": [line(T0, 1, False, 1000)]}},
        {"id": "in_2", "status": "paid", "created": T0 + 30 * 86400, "subscription": "sub_l",
         "lines": {"data": [line(T0 + 10 * 86400, 1, True, -600),
                            line(T0 + 10 * 86400, 3, True, 1800),
                            line(T0 + 30 * 86400, 3, False, 3000)]}},
    ]  # fmt: skip
    rebuilt = rebuild_subscription(sub, invoices, lambda _: price, now=T0 + 40 * 86400)
    quantities = [(at, s["items"]["data"][0]["quantity"]) for at, s in rebuilt.snapshots]
    assert quantities[:2] == [(T0, 1), (T0 + 10 * 86400, 3)]
    assert rebuilt.outcome == "exact"


def test_history_of_an_unpaid_subscription_ends_at_zero_with_an_assumption() -> None:
    from exporters.stripe_history import rebuild_subscription

    sub = subscription("sub_u", created=T0, status="unpaid")
    price = sub["items"]["data"][0]["price"]
    line = {"object": "line_item", "type": "subscription", "subscription": "sub_u",
            "subscription_item": sub["items"]["data"][0]["id"], "price": price, "quantity": 1,
            "proration": False, "amount": 2000, "period": {"start": T0, "end": T0 + 2_592_000}}
    invoice = {"id": "in_u", "status": "open", "created": T0, "subscription": "sub_u",
               "lines": {"data": [line]}}  # fmt: skip
    rebuilt = rebuild_subscription(sub, [invoice], lambda _: price, now=T0 + 5_000_000)
    prev, events = None, []
    for at, snap in rebuilt.snapshots:
        step = subscription_transition(prev, snap, product="acme", observed=at)
        prev = step.state or prev
        events.extend(step.events)
    assert [(e.type, e.mrr_after) for e in events] == [
        (EventType.SUBSCRIPTION_STARTED, 20), (EventType.SUBSCRIPTION_CHANGED, 0)]
    assert [a.reason for a in rebuilt.assumptions] == ["unpaid"]
