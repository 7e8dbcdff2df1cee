"""Stripe history rebuilt from invoices equals the history the webhooks delivered.

A generated account (``stripe_account``: two products, 318 subscriptions over two years)
is served by the fake Stripe in two ways: (a) only its event stream, read through the
Events API path (the processor webhooks use too); (b) only the list endpoints and
invoices, read by ``backfill``. The metrics engine runs on both ledgers; the MRR, movement,
customer and churn series are equal for every product and day once the customers whose
subscriptions the backfill summary lists with an assumption are left out of both, and
those are exactly the subscriptions the generator knows no invoice can explain.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from exporter_fakes import FAST, FakeStripe, running, source
from stripe_account import DAY, HORIZON, T0, Account, generate

from exporters.base import Batch, Ingestor
from exporters.state import StateStore
from exporters.stripe import StripeStream
from exporters.stripe_history import rebuild_subscription
from exporters.stripe_mapping import subscription_transition
from growthwatch.metrics.engine import MetricsEngine, read_events
from growthwatch.metrics.fx import FxTable
from growthwatch.metrics.revenue import revenue
from growthwatch.metrics.settings import MetricsSettings
from growthwatch.stores.ledger import Ledger
from growthwatch.stores.series import SeriesStore

PRODUCTS = {"acme": (11, "a"), "beta": (23, "b")}  # product -> (seed, id prefix)
SUBSCRIPTIONS = 150  # first subscriptions per product; returning customers add more
SETTINGS = MetricsSettings(fx=FxTable.constant("USD", {
    "EUR": Decimal("1.08"), "GBP": Decimal("1.27"), "JPY": Decimal("0.0067")}))  # fmt: skip
COMPARED = ("mrr_daily", "customers_daily", "churn_monthly", "churn_yearly")
REVENUE_TYPES = ("payment", "refund", "payment_failed")
SINCE = datetime.fromtimestamp(T0, UTC)
UNTIL = datetime.fromtimestamp(HORIZON, UTC)


class EventsOnly(StripeStream):
    """The Stripe stream reading only ``GET /v1/events`` (what webhooks delivered)."""

    def run(self, since: datetime, until: datetime) -> Iterator[Batch]:
        return self.run_events(since, until)


@pytest.fixture(autouse=True)
def _key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GW_TEST_STRIPE_KEY", FakeStripe.api_key)


@pytest.fixture(scope="module")
def accounts() -> dict[str, Account]:
    return {product: generate(seed, SUBSCRIPTIONS, prefix)
            for product, (seed, prefix) in PRODUCTS.items()}  # fmt: skip


def serve_events(account: Account) -> FakeStripe:
    fake = FakeStripe()
    fake.add("events", *account.events, copy_objects=False)  # read-only here
    return fake


def serve_lists(account: Account) -> FakeStripe:
    fake = FakeStripe()
    for resource, objects in account.objects.items():
        fake.add(resource, *objects, copy_objects=False)
    fake.lines.update(account.lines)
    return fake


def stream(cls: type[StripeStream], fake: FakeStripe, state: StateStore,
           product: str) -> StripeStream:  # fmt: skip
    config = source("stripe", product, api_key="${GW_TEST_STRIPE_KEY}", api_base=fake.url)
    found = cls(config, state, policy=FAST)
    found.clock = lambda: float(HORIZON)  # the account is read at the end of its history
    return found


def series(ledger: Ledger, tmp: Path, name: str) -> dict[str, pd.DataFrame]:
    """The metric series of a ledger, through the metrics engine and a series store."""
    with SeriesStore(tmp / f"{name}.duckdb") as store:
        MetricsEngine(ledger, SETTINGS).recompute([store])
        return {m: store.read(m).sort_values(["product", "time"]).reset_index(drop=True)
                for m in COMPARED}  # fmt: skip


def daily_revenue(ledger: Ledger) -> pd.DataFrame:
    """Payments, refunds (credit notes too) and failures per product, currency and day."""
    frame = revenue(read_events(ledger, REVENUE_TYPES), SETTINGS.fx, "D")
    return frame.sort_values(["product", "currency", "time"]).reset_index(drop=True)


def without(ledger: Ledger, customers: set[str], path: Path) -> Ledger:
    """A copy of the ledger without the events of ``customers``."""
    frame = ledger.read()
    kept = frame[~frame["subject"].isin(sorted(customers))]
    copy = Ledger(path)
    copy.append(kept.reset_index(drop=True))
    return copy


def test_backfill_from_invoices_equals_the_webhook_history(
    accounts: dict[str, Account], tmp_path: Path
) -> None:
    ledger_a, ledger_b = Ledger(tmp_path / "a.duckdb"), Ledger(tmp_path / "b.duckdb")
    state_a, state_b = StateStore(tmp_path / "a.sqlite"), StateStore(tmp_path / "b.sqlite")
    summaries = {}
    for product, account in accounts.items():
        with running(serve_events(account)) as fake:
            result = Ingestor(ledger_a, state_a).sync(
                stream(EventsOnly, fake, state_a, product), since=SINCE, until=UNTIL + timedelta(days=1))
            assert result.rejected == 0
        with running(serve_lists(account)) as fake:
            fake.fail_next(429, 500)  # rate limited and a hiccup: retried, nothing lost
            s = stream(StripeStream, fake, state_b, product)
            s.backfill_window = timedelta(days=28)  # type: ignore[misc]
            seen: list[float] = []

            def interrupt(done: float, seen: list[float] = seen) -> None:
                seen.append(done)
                if len(seen) == 10:
                    raise KeyboardInterrupt

            ingestor = Ingestor(ledger_b, state_b)
            with pytest.raises(KeyboardInterrupt):  # stopped part-way ...
                ingestor.sync(s, since=SINCE, until=UNTIL, backfill=True, progress=interrupt)
            result = ingestor.sync(s, since=SINCE, until=UNTIL, backfill=True)  # ... resumed
            assert result.rejected == 0
            assert any("/lines" in p for _, p, _ in fake.requests)  # > 10 lines: paged
            summaries[product] = s.backfill_summary()
            first_quarter = SINCE + timedelta(days=90)
            again = ingestor.sync(s, since=SINCE, until=first_quarter, backfill=True)
            assert again.received > 0 and again.inserted == 0  # idempotent

    # What the summary lists is what the generator knows no invoice shows, and no more.
    assumed = {sub for summary in summaries.values() for sub in summary.assumed()}
    invisible = {sub for a in accounts.values() for sub, why in a.invisible.items() if why}
    assert assumed == invisible
    total = sum(len(a.customer_of) for a in accounts.values())
    exact = sum(summary.count("exact") for summary in summaries.values())
    assert total >= 300 and exact + len(assumed) == total  # every one rebuilt from invoices
    assert len(assumed) <= 0.15 * total, summaries["acme"].by_reason()
    reasons = {r for summary in summaries.values() for r in summary.by_reason()}
    assert reasons <= {"pause", "unprorated_change", "changed_after_last_invoice"}

    # Revenue (payments, refunds, credit notes, failed invoices) is the same everywhere.
    revenue_a = daily_revenue(ledger_a)
    assert revenue_a["refunds"].sum() > 0 and revenue_a["failed"].sum() > 0
    pd.testing.assert_frame_equal(revenue_a, daily_revenue(ledger_b))
    # MRR, movements, customers, churn: equal for every product and day without the
    # customers of the assumed subscriptions.
    customers = {a.customer_of[sub] for a in accounts.values() for sub in assumed
                 if sub in a.customer_of}  # fmt: skip
    left_a = without(ledger_a, customers, tmp_path / "a2.duckdb")
    left_b = without(ledger_b, customers, tmp_path / "b2.duckdb")
    got_a, got_b = series(left_a, tmp_path, "a2"), series(left_b, tmp_path, "b2")
    for name in COMPARED:
        assert set(got_a[name]["product"]) == {"acme", "beta", "all"}
        pd.testing.assert_frame_equal(got_a[name], got_b[name], obj=name)
    movements = got_b["mrr_daily"][["expansion", "contraction", "reactivation"]]
    assert (movements > 0).sum().min() > 10  # the history has its upgrades/downgrades
    # and the backfill without invoices (today's state only) would not have matched
    types_b = left_b.read()["type"].value_counts().to_dict()
    assert types_b.get("subscription_changed", 0) > 100

    # The same history delivered again by the Events API (or webhooks) into the backfill's
    # ledger: every fact the invoices proved is a duplicate; only what they could not
    # date is new. (A fresh state file, so no delivery is dismissed as stale: the ids
    # alone must match.)
    before = set(ledger_b.read(products="beta")["idempotency_key"])
    state_c = StateStore(tmp_path / "c.sqlite")
    year = SINCE + timedelta(days=365)  # the first year is enough to prove the ids
    with running(serve_events(accounts["beta"])) as fake:
        replay = Ingestor(ledger_b, state_c).sync(stream(EventsOnly, fake, state_c, "beta"),
                                                  since=SINCE, until=year)  # fmt: skip
    state_c.close()
    assert replay.duplicates > 500
    new = ledger_b.read(products="beta")
    new = new[~new["idempotency_key"].isin(before)]
    subs = new[new["type"].str.startswith(("subscription", "trial"))]
    touched = {_meta(m).get("subscription") for m in subs["metadata"]}
    assert len(subs) > 0 and touched <= set(summaries["beta"].assumed())
    assert set(new["type"]) <= {"subscription_changed", "subscription_reactivated",
                                "subscription_paused", "subscription_resumed"}
    for ledger in (ledger_a, ledger_b, left_a, left_b):
        ledger.close()
    state_a.close()
    state_b.close()


def _meta(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else json.loads(value)


def test_seat_history_10_25_15_is_rebuilt_with_its_moments(accounts: dict[str, Account]) -> None:
    """The issue's example, from the invoices alone: start at 10, up to 25, down to 15."""
    gen = accounts["acme"]
    price = {p["id"]: p for p in gen.objects["prices"]}
    sub = next(s for s in gen.objects["subscriptions"]
               if s["items"]["data"][0]["price"]["id"].endswith("_basic_usd"))  # fmt: skip
    template = next(i for i in gen.objects["invoices"]
                    if i["parent"]["subscription_details"]["subscription"] == sub["id"])
    si = sub["items"]["data"][0]["id"]
    sub = dict(sub, status="canceled", created=T0, start_date=T0, trial_start=None,
               trial_end=None, discounts=[], canceled_at=T0 + 90 * DAY, ended_at=T0 + 90 * DAY)
    sub["items"] = {**sub["items"], "data": [dict(sub["items"]["data"][0], quantity=15)]}
    line0 = template["lines"]["data"][-1]

    def line(start: int, end: int, qty: int, proration: bool, credit: bool) -> dict[str, Any]:
        details = {**line0["parent"]["subscription_item_details"], "proration": proration,
                   "subscription": sub["id"], "subscription_item": si,
                   "proration_details": {"credited_items": {"invoice": "in_x"} if credit
                                         else None}}  # fmt: skip
        return {**line0, "period": {"start": start, "end": end}, "quantity": qty,
                "amount": (-1 if credit else 1) * 1500 * qty, "discounts": [],
                "discount_amounts": [], "parent": {**line0["parent"],
                                                   "subscription_item_details": details},
                "pricing": {**line0["pricing"], "price_details": {
                    "price": sub["items"]["data"][0]["price"]["id"]}}}  # fmt: skip

    def invoice(at: int, lines: list[dict[str, Any]]) -> dict[str, Any]:
        return {**template, "id": f"in_{at}", "created": at, "status": "paid",
                "discounts": [], "lines": {"data": lines, "has_more": False}}  # fmt: skip

    m1, m2, m3 = T0 + 31 * DAY, T0 + 60 * DAY, T0 + 91 * DAY
    up, down = T0 + 40 * DAY, T0 + 70 * DAY
    invoices = [
        invoice(T0, [line(T0, m1, 10, False, False)]),
        invoice(m1, [line(m1, m2, 10, False, False)]),
        invoice(m2, [line(up, m2, 10, True, True), line(up, m2, 25, True, False),
                     line(m2, m3, 25, False, False)]),
        # the downgrade's proration was never invoiced: the subscription ended first
    ]
    rebuilt = rebuild_subscription(sub, invoices, price.__getitem__, now=HORIZON)
    prev, events = None, []
    for at, snap in rebuilt.snapshots:
        step = subscription_transition(prev, snap, product="acme", observed=at)
        prev = step.state or prev
        events.extend(step.events)
    got = [(e.type.value, int(e.timestamp.timestamp()), e.mrr_after) for e in events]
    assert got[0] == ("subscription_started", T0, Decimal(150))
    assert got[1] == ("subscription_changed", up, Decimal(375))  # dated by its proration
    assert got[-1] == ("subscription_cancelled", T0 + 90 * DAY, Decimal(0))
    assert got[-2][2] == Decimal(225)  # 15 seats at the end: the current object says so
    assert [a.reason for a in rebuilt.assumptions] == ["changed_after_last_invoice"]
    assert down not in {g[1] for g in got}  # its moment is on no invoice
