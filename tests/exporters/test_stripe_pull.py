"""Stripe pulls through the official SDK against a local server speaking Stripe's wire format."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from exporter_fakes import (
    FAST,
    FakeStripe,
    charge,
    event,
    invoice_failed,
    refund,
    source,
    subscription,
)

from exporters import telemetry
from exporters.base import Ingestor, SourceAuthError
from exporters.state import StateStore
from exporters.stripe import StripeStream
from growthwatch.stores.ledger import Ledger

NOW = int(time.time())
DAY = 86400


def stream(fake: FakeStripe, state: StateStore, **options: object) -> StripeStream:
    config = source("stripe", api_key="${GW_TEST_STRIPE_KEY}", api_base=fake.url, **options)
    return StripeStream(config, state, policy=FAST)


@pytest.fixture(autouse=True)
def _key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GW_TEST_STRIPE_KEY", FakeStripe.api_key)


def lifecycle(n: int, start: int) -> list[dict[str, object]]:
    """n subscriptions: created, upgraded to 2 seats, half of them cancelled; one charge each."""
    events = []
    for i in range(n):
        sub_id, cus = f"sub_{i:04d}", f"cus_{i:04d}"
        t = start + i * 60
        events.append(event(f"evt_c{i:04d}", "customer.subscription.created",
                            subscription(sub_id, customer=cus, created=t), t))  # fmt: skip
        events.append(event(f"evt_u{i:04d}", "customer.subscription.updated",
                            subscription(sub_id, customer=cus, created=t, quantity=2), t + 10,
                            previous={"quantity": 1}))  # fmt: skip
        events.append(event(f"evt_p{i:04d}", "charge.succeeded",
                            charge(f"ch_{i:04d}", customer=cus, created=t + 5), t + 5))  # fmt: skip
        if i % 2:
            gone = subscription(sub_id, customer=cus, created=t, quantity=2, status="canceled",
                                ended_at=t + 20)  # fmt: skip
            events.append(event(f"evt_d{i:04d}", "customer.subscription.deleted", gone, t + 20))
    return events


def test_events_pull_paginates_advances_cursor_and_rereads_without_duplicates(
    fake_stripe: FakeStripe, ledger: Ledger, state: StateStore, ingestor: Ingestor
) -> None:
    fake_stripe.add("events", *lifecycle(40, NOW - 2 * DAY))  # 140 events: two pages
    s = stream(fake_stripe, state, api_version="2025-03-31.basil")
    result = ingestor.sync(s)
    assert result.inserted == 40 + 40 + 40 + 20  # started, changed, payment, cancelled
    assert result.rejected == 0
    pages = [p for m, p, _ in fake_stripe.requests if p.startswith("/v1/events")]
    assert len(pages) == 2 and "starting_after=" in pages[1]
    assert all(h.get("Stripe-Version") == "2025-03-31.basil" for *_, h in fake_stripe.requests)
    events = ledger.read()
    subs = events[events["type"].str.startswith("subscription")]
    assert subs["value"].sum() == pytest.approx(20 * 40.0)  # the 20 alive ones at 2 seats
    cursor = datetime.fromisoformat(state.get_cursor(s.stream_id))
    assert cursor >= datetime.now(UTC) - timedelta(minutes=1)
    # A second run re-reads the lookback window and stores nothing twice.
    again = ingestor.sync(s)
    assert again.inserted == 0 and ledger.count() == len(events)
    # New events after the cursor are picked up.
    fake_stripe.add("events", event("evt_new", "charge.succeeded",
                                    charge("ch_new", created=NOW), NOW))  # fmt: skip
    assert ingestor.sync(s).inserted == 1


def test_rate_limits_and_server_errors_are_retried(
    fake_stripe: FakeStripe, ledger: Ledger, state: StateStore, ingestor: Ingestor
) -> None:
    fake_stripe.add("events", *lifecycle(3, NOW - DAY))
    before = telemetry.API_ERRORS.labels("stripe", "429")._value.get()
    fake_stripe.fail_next(429, 500, 429)
    result = ingestor.sync(stream(fake_stripe, state))
    assert result.inserted == 3 * 3 + 1
    assert telemetry.API_ERRORS.labels("stripe", "429")._value.get() == before + 2
    fake_stripe.fail_next(*([503] * 10))
    with pytest.raises(Exception, match="gave up"):
        ingestor.sync(stream(fake_stripe, state))


def test_bad_key_fails_with_a_clear_message(fake_stripe: FakeStripe, state: StateStore,
                                            ingestor: Ingestor, monkeypatch: pytest.MonkeyPatch,
                                            ) -> None:  # fmt: skip
    monkeypatch.setenv("GW_TEST_STRIPE_KEY", "sk_test_wrong_key_123")
    with pytest.raises(SourceAuthError, match=r"refused key sk_test_\.\.\..*check api_key"):
        ingestor.sync(stream(fake_stripe, state))
    assert state.get_cursor("acme/stripe") is None


def test_bad_records_are_rejected_and_the_rest_stored(
    fake_stripe: FakeStripe, ledger: Ledger, state: StateStore, ingestor: Ingestor
) -> None:
    nameless = charge("ch_x", created=NOW - 100)
    del nameless["id"]
    fake_stripe.add(
        "events",
        event("evt_1", "charge.succeeded", charge("ch_ok", created=NOW - 300), NOW - 300),
        event("evt_2", "charge.succeeded", charge("ch_xyz", currency="xyz", created=NOW - 200),
              NOW - 200),
        event("evt_3", "charge.succeeded", nameless, NOW - 100),
        event("evt_4", "charge.succeeded", charge("ch_ok2", created=NOW - 50), NOW - 50),
    )  # fmt: skip
    result = ingestor.sync(stream(fake_stripe, state))
    assert (result.inserted, result.rejected) == (2, 2)
    reasons = sorted(r["reason"] for r in state.rejected())
    assert reasons == ["missing_id", "unknown_currency"]
    assert telemetry.EVENTS_REJECTED.labels("stripe", "acme", "unknown_currency")._value.get() >= 1


def backfill_objects(fake: FakeStripe) -> None:
    old = NOW - 80 * DAY
    fake.add("subscriptions",
             subscription("sub_old1", customer="cus_a", created=old, unit_amount=5000),
             subscription("sub_old2", customer="cus_b", created=old + 20 * DAY, status="canceled",
                          ended_at=NOW - 10 * DAY),
             subscription("sub_trial", customer="cus_c", created=old + 40 * DAY,
                          trial=(old + 40 * DAY, old + 54 * DAY)))  # fmt: skip
    fake.add("charges", *[charge(f"ch_b{i}", customer="cus_a", created=old + i * 5 * DAY)
                          for i in range(12)])  # fmt: skip
    # a busy day: 130 charges in one window, more than one page of 100
    fake.add("charges", *[charge(f"ch_busy{i:03d}", customer="cus_a", created=old + 3 * DAY + i)
                          for i in range(130)])  # fmt: skip
    fake.add("refunds", refund("re_b1", charge_id="ch_b1", amount=1000, created=old + 7 * DAY))
    fake.add("invoices", invoice_failed("in_b1", customer="cus_b", attempt=3,
                                        created=old + 30 * DAY))  # fmt: skip


def test_backfill_from_list_endpoints_matches_webhook_ids_and_resumes(
    fake_stripe: FakeStripe, ledger: Ledger, state: StateStore, ingestor: Ingestor
) -> None:
    backfill_objects(fake_stripe)
    # The Events API also has the cancellation of sub_old2 (within 30 days).
    fake_stripe.add("events", event(
        "evt_del", "customer.subscription.deleted",
        subscription("sub_old2", customer="cus_b", created=NOW - 60 * DAY, status="canceled",
                     ended_at=NOW - 10 * DAY), NOW - 10 * DAY))  # fmt: skip
    s = stream(fake_stripe, state)
    since = datetime.fromtimestamp(NOW - 90 * DAY, UTC)
    seen: list[float] = []

    def interrupt(fraction: float) -> None:
        seen.append(fraction)
        if len(seen) == 6:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        ingestor.sync(s, since=since, backfill=True, progress=interrupt)
    partial = ledger.count()
    resume = state.get_cursor(s.stream_id, "backfill")
    assert resume is not None and datetime.fromisoformat(resume["reached"]) > since
    paged = [p for _, p, _ in fake_stripe.requests if "/v1/charges" in p and "starting_after" in p]
    assert paged  # the busy window took a second page
    fake_stripe.requests.clear()
    result = ingestor.sync(s, since=since, backfill=True)
    first = next(p for _, p, _ in fake_stripe.requests if p.startswith("/v1/"))
    assert f"created%5Bgte%5D={int(since.timestamp())}" not in first  # resumed, not restarted
    assert ledger.count() == partial + result.inserted
    events = ledger.read()
    by_type = events.groupby("type").size().to_dict()
    assert by_type == {"payment": 12 + 130, "refund": 1, "payment_failed": 1, "trial_started": 1,
                       "subscription_started": 3, "subscription_cancelled": 1}  # fmt: skip
    mrr = events[events["type"].str.startswith(("subscription", "trial"))]
    assert Decimal(str(mrr["value"].sum())) == Decimal("70")  # sub_old1 50 + sub_trial 20
    assert state.get_cursor(s.stream_id, "backfill") is None
    # The Events API pull afterwards sees the same cancellation: no double count.
    assert ingestor.sync(s).inserted == 0
    assert ledger.count(types="subscription_cancelled") == 1
