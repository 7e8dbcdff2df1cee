"""A generated Stripe account with two years of history, seen two ways.

``generate(seed, subscriptions)`` simulates an account subscription by subscription
(trials, upgrades, downgrades, seat changes with and without proration, add-on items,
annual plans, discounts that end, a coupon added between invoices, pauses, cancellations at
period end and immediately, un-cancellations, reactivations as new subscriptions of a
returning customer, failed payments, refunds, credit notes, one-off charges, several
currencies) and renders it twice from one truth:

- ``events``: every ``customer.subscription.*``, ``charge.*``, ``invoice.payment_failed``
  and ``credit_note.created`` event, at the second it happened, as webhooks would have
  delivered it;
- ``objects``: what the list endpoints show at the end: the current subscriptions,
  every invoice with its line items (``period``, proration flag, price, quantity,
  ``discount_amounts``), charges, refunds, credit notes and prices.

Every object is built from Stripe's example objects (``exporter_fakes.stripe_fixture``) in
the shape of the API version the exporter pins. Event payloads carry discount objects
(what the processor's retrieve-with-expand would have returned at delivery time; a fixed
fake cannot answer that retrieve historically).

``invisible`` is the generator's own list of what no invoice can show, per subscription:
the reasons the rebuild must name (a change without proration, a pause, a change with no
invoice before the end). Deterministic for a seed; no wall clock.
"""

from __future__ import annotations

import calendar
import copy
import json
import random
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from exporter_fakes import stripe_fixture

T0 = 1_704_067_200  # 2024-01-01 00:00 UTC
DAY = 86_400
HORIZON = T0 + 730 * DAY
API_VERSION = "2026-10-28.endive"

# plan -> (interval, unit amount in minor units per currency)
PLANS: dict[str, tuple[str, dict[str, int]]] = {
    "basic": ("month", {"usd": 1500, "eur": 1400, "gbp": 1200, "jpy": 2000}),
    "pro": ("month", {"usd": 4900, "eur": 4500, "gbp": 3900, "jpy": 7000}),
    "addon": ("month", {"usd": 500, "eur": 500, "gbp": 400, "jpy": 800}),
    "annual": ("year", {"usd": 49000, "eur": 45000, "gbp": 39000, "jpy": 70000}),
}
CURRENCIES = ("usd", "usd", "usd", "eur", "gbp", "jpy")


def add_months(ts: int, months: int) -> int:
    """``ts`` plus whole calendar months (day clamped to the month's end), like Stripe."""
    at = datetime.fromtimestamp(ts, UTC)
    total = at.month - 1 + months
    year, month = at.year + total // 12, total % 12 + 1
    day = min(at.day, calendar.monthrange(year, month)[1])
    return int(at.replace(year=year, month=month, day=day).timestamp())


@dataclass
class Account:
    events: list[dict[str, Any]] = field(default_factory=list)
    objects: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    invisible: dict[str, set[str]] = field(default_factory=dict)  # sub id -> reasons
    customer_of: dict[str, str] = field(default_factory=dict)  # sub id -> customer id
    scenarios: dict[str, set[str]] = field(default_factory=dict)  # sub id -> what it has
    lines: dict[str, list[dict[str, Any]]] = field(default_factory=dict)  # > 10 lines

    def add(self, resource: str, obj: dict[str, Any]) -> None:
        self.objects.setdefault(resource, []).append(obj)


@dataclass
class _Sub:
    """The simulated truth of one subscription while it runs."""

    id: str
    customer: str
    currency: str
    created: int
    annual: bool
    items: dict[str, tuple[str, int]] = field(default_factory=dict)  # si -> (plan, qty)
    discounts: list[dict[str, Any]] = field(default_factory=list)
    status: str = "active"
    paused: bool = False
    trial: tuple[int, int] | None = None
    cancel_at_period_end: bool = False
    canceled_at: int | None = None
    ended_at: int | None = None
    pending: list[dict[str, Any]] = field(default_factory=list)  # proration lines
    once_used: bool = False


class _Generator:
    def __init__(self, seed: int, prefix: str) -> None:
        self.rng = random.Random(seed)
        self.prefix = prefix
        self.account = Account()
        self.counter = 0
        self.busy_left = 1  # subscriptions with more than 10 lines on one invoice
        self.prices: dict[tuple[str, str], dict[str, Any]] = {}
        for plan, (interval, amounts) in PLANS.items():
            for cur, amount in amounts.items():
                price = stripe_fixture(
                    "price", id=f"price_{prefix}_{plan}_{cur}", nickname=plan, currency=cur,
                    unit_amount=amount, unit_amount_decimal=str(amount), transform_quantity=None,
                    product=f"prod_{prefix}_{plan}", created=T0 - 30 * DAY, lookup_key=None,
                )  # fmt: skip
                price["recurring"] = {**price["recurring"], "interval": interval,
                                      "interval_count": 1, "usage_type": "licensed"}  # fmt: skip
                self.prices[(plan, cur)] = price
                self.account.add("prices", price)

    def next_id(self, kind: str) -> str:
        self.counter += 1
        return f"{kind}_{self.prefix}{self.counter:06d}"

    # -- rendering ------------------------------------------------------------------

    def event(self, etype: str, obj: dict[str, Any], at: int,
              previous: dict[str, Any] | None = None) -> None:  # fmt: skip
        data: dict[str, Any] = {"object": json.loads(json.dumps(obj))}  # as it was then
        if previous is not None:
            data["previous_attributes"] = previous
        self.account.events.append(stripe_fixture(
            "event", id=self.next_id("evt"), type=etype, created=at, data=data,
            api_version=API_VERSION, livemode=False,
        ))  # fmt: skip

    def sub_object(self, s: _Sub, period: tuple[int, int]) -> dict[str, Any]:
        obj = stripe_fixture(
            "subscription", id=s.id, customer=s.customer, currency=s.currency,
            created=s.created, start_date=s.created, billing_cycle_anchor=s.trial[1] if s.trial
            else s.created, status=s.status, cancel_at=None, canceled_at=s.canceled_at,
            ended_at=s.ended_at, cancel_at_period_end=s.cancel_at_period_end,
            trial_start=s.trial[0] if s.trial else None, trial_end=s.trial[1] if s.trial
            else None, discounts=copy.deepcopy(s.discounts), latest_invoice=None,
            pause_collection={"behavior": "void", "resumes_at": None} if s.paused else None,
            pending_update=None, schedule=None, test_clock=None,
            next_pending_invoice_item_invoice=None,
        )  # fmt: skip
        template = obj["items"]["data"][0]
        items = []
        for si, (plan, qty) in sorted(s.items.items()):
            item = copy.deepcopy(template)
            price = copy.deepcopy(self.prices[(plan, s.currency)])
            item.update(id=si, subscription=s.id, quantity=qty, price=price, discounts=[],
                        current_period_start=period[0], current_period_end=period[1],
                        created=s.created)  # fmt: skip
            item["plan"] = {**item["plan"], "id": price["id"], "amount": price["unit_amount"],
                            "amount_decimal": price["unit_amount_decimal"], "currency": s.currency,
                            "interval": price["recurring"]["interval"], "interval_count": 1,
                            "billing_scheme": "per_unit", "transform_usage": None,
                            "nickname": plan, "product": price["product"]}  # fmt: skip
            items.append(item)
        obj["items"] = {"object": "list", "data": items, "has_more": False,
                        "url": f"/v1/subscription_items?subscription={s.id}"}  # fmt: skip
        return obj

    def line(self, s: _Sub, si: str, plan: str, qty: int, start: int, end: int, amount: int,
             *, proration: bool, credit: bool = False, invoice: str = "") -> dict[str, Any]:  # fmt: skip
        price = self.prices[(plan, s.currency)]
        line = stripe_fixture(
            "line_item", id=self.next_id("il"), amount=amount, subtotal=amount,
            currency=s.currency, period={"start": start, "end": end}, quantity=qty,
            description=f"{'Unused' if credit else 'Remaining'} time on {qty} x {plan}"
            if proration else f"{qty} x {plan}", invoice=invoice, discounts=[],
            discount_amounts=[], subscription=None, metadata={},
        )  # fmt: skip
        line["parent"] = {"type": "subscription_item_details", "invoice_item_details": None,
                          "subscription_item_details": {
                              "invoice_item": self.next_id("ii") if proration else None,
                              "proration": proration,
                              "proration_details": {"credited_items": {
                                  "invoice": "in_previous", "invoice_line_items": []}}
                              if credit else {"credited_items": None},
                              "subscription": s.id, "subscription_item": si}}  # fmt: skip
        line["pricing"] = {"type": "price_details", "unit_amount_decimal": str(price["unit_amount"]),
                           "price_details": {"price": price["id"],
                                             "product": price["product"]}}  # fmt: skip
        return line

    def invoice(self, s: _Sub, at: int, lines: list[dict[str, Any]], status: str, reason: str,
                attempts: int = 1) -> dict[str, Any]:  # fmt: skip
        invoice_id = self.next_id("in")
        applied = [d for d in s.discounts if self.discount_applies(s, d, at)]
        for line in lines:
            line["invoice"] = invoice_id
            if line["parent"]["subscription_item_details"]["proration"]:
                continue
            off = 0
            for d in applied:
                pct = d["source"]["coupon"]["percent_off"] or 0
                cut = round(line["amount"] * pct / 100)
                off += cut
                line["discount_amounts"].append({"amount": cut, "discount": d["id"]})
                line["discounts"].append(d["id"])
        if any(d["source"]["coupon"]["duration"] == "once" for d in applied):
            s.once_used = True
        subtotal = sum(x["amount"] for x in lines)
        discount = sum(a["amount"] for x in lines for a in x["discount_amounts"])
        total = max(subtotal - discount, 0)
        shown = lines[:10]
        inv = stripe_fixture(
            "invoice", id=invoice_id, customer=s.customer, currency=s.currency, created=at,
            effective_at=at, status=status, billing_reason=reason, subscription=None,
            parent={"type": "subscription_details", "quote_details": None,
                    "subscription_details": {"metadata": {}, "subscription": s.id}},
            lines={"object": "list", "data": shown, "has_more": len(lines) > 10,
                   "url": f"/v1/invoices/{invoice_id}/lines"},
            discounts=copy.deepcopy(applied), period_start=at, period_end=at,
            subtotal=subtotal, total=total, amount_due=total,
            amount_paid=total if status == "paid" else 0,
            amount_remaining=0 if status == "paid" else total,
            attempt_count=attempts if status in ("open", "uncollectible") else
            (1 if status == "paid" and total else 0), attempted=status != "void",
            total_discount_amounts=[], last_finalization_error=None, from_invoice=None,
            next_payment_attempt=None, number=None, due_date=None,
        )  # fmt: skip
        inv["lines"]["data"] = shown
        if len(lines) > 10:
            self.account.lines[invoice_id] = lines
        self.account.add("invoices", inv)
        return inv

    def charge(self, customer: str, currency: str, amount: int, at: int,
               invoice: str | None) -> dict[str, Any]:  # fmt: skip
        ch = stripe_fixture(
            "charge", id=self.next_id("ch"), amount=amount, amount_captured=amount,
            captured=True, customer=customer, created=at, currency=currency, status="succeeded",
            paid=True, invoice=invoice, amount_refunded=0, refunded=False,
        )  # fmt: skip
        ch["refunds"] = {"object": "list", "data": [], "has_more": False,
                         "url": f"/v1/charges/{ch['id']}/refunds"}  # fmt: skip
        self.account.add("charges", ch)
        self.event("charge.succeeded", ch, at)
        if self.rng.random() < 0.04:  # a partial refund a few days later
            at_r = at + self.rng.randint(1, 6) * DAY
            if at_r < HORIZON:
                re = stripe_fixture("refund", id=self.next_id("re"), charge=ch["id"],
                                    amount=max(amount // 2, 1), created=at_r, currency=currency,
                                    status="succeeded", customer=None)  # fmt: skip
                self.account.add("refunds", re)
                ch["amount_refunded"] = re["amount"]
                ch["refunds"]["data"] = [re]
                self.event("charge.refunded", ch, at_r)
        return ch

    def pending_items(self, s: _Sub) -> None:
        """Proration lines still waiting for an invoice, as pending invoice items."""
        for line in s.pending:
            details = line["parent"]["subscription_item_details"]
            self.account.add("invoiceitems", stripe_fixture(
                "invoiceitem", id=details["invoice_item"], amount=line["amount"],
                currency=s.currency, customer=s.customer, date=line["period"]["start"],
                created=line["period"]["start"], period=line["period"], proration=True,
                quantity=line["quantity"], invoice=None, discounts=[], net_amount=line["amount"],
                quantity_decimal=str(line["quantity"]), description=line["description"],
                parent={"type": "subscription_details", "subscription_details": {
                    "subscription": s.id, "subscription_item": details["subscription_item"]}},
                pricing=line["pricing"],
            ))  # fmt: skip
        s.pending = []

    def credit_note(self, inv: dict[str, Any], at: int) -> None:
        amount = max(inv["total"] // 5, 1)
        note = stripe_fixture(
            "credit_note", id=self.next_id("cn"), amount=amount, total=amount, subtotal=amount,
            subtotal_excluding_tax=amount, total_excluding_tax=amount, currency=inv["currency"],
            customer=inv["customer"], invoice=inv["id"], created=at, effective_at=at,
            type="post_payment", status="issued", refunds=[], out_of_band_amount=None,
            post_payment_amount=amount, pre_payment_amount=0, voided_at=None,
            reason="product_unsatisfactory", number=None, memo=None, pdf=None,
        )  # fmt: skip
        first = note["lines"]["data"][1]
        note["lines"] = {"object": "list", "has_more": False, "url": note["lines"]["url"],
                         "data": [dict(first, amount=amount, unit_amount=amount,
                                       unit_amount_decimal=str(amount))]}  # fmt: skip
        self.account.add("credit_notes", note)
        self.event("credit_note.created", note, at)

    def discount(self, s: _Sub, at: int, duration: str, percent: float,
                 months: int | None = None) -> dict[str, Any]:  # fmt: skip
        coupon = stripe_fixture("coupon", id=self.next_id("co"), duration=duration,
                                duration_in_months=months, percent_off=percent, amount_off=None,
                                currency=None, name=f"{percent}% off", created=at - DAY,
                                redeem_by=None)  # fmt: skip
        return stripe_fixture(
            "discount", id=self.next_id("di"), customer=s.customer, subscription=s.id,
            subscription_item=None, start=at, end=add_months(at, months) if months else None,
            source={"coupon": coupon, "type": "coupon"}, invoice=None, invoice_item=None,
            checkout_session=None, promotion_code=None,
        )  # fmt: skip

    @staticmethod
    def discount_applies(s: _Sub, d: dict[str, Any], at: int) -> bool:
        duration = d["source"]["coupon"]["duration"]
        if duration == "once":
            return not s.once_used
        return d["end"] is None or at < d["end"]

    # -- simulation -----------------------------------------------------------------

    def customer(self) -> str:
        return self.next_id("cus")

    def subscription(self, customer: str, created: int, depth: int = 0) -> None:
        rng = self.rng
        acc = self.account
        sub_id = self.next_id("sub")
        annual = rng.random() < 0.18
        currency = rng.choice(CURRENCIES)
        s = _Sub(sub_id, customer, currency, created, annual)
        acc.customer_of[sub_id] = customer
        tags = acc.scenarios.setdefault(sub_id, set())
        invisible = acc.invisible.setdefault(sub_id, set())
        s.items[self.next_id("si")] = ("annual" if annual else rng.choice(("basic", "pro")),
                                       rng.choice((1, 1, 2, 3, 5, 10)))  # fmt: skip
        if not annual and rng.random() < 0.12:
            s.items[self.next_id("si")] = ("addon", rng.randint(1, 4))
            tags.add("addon")
        if rng.random() < 0.3:
            s.trial = (created, created + 14 * DAY)
            s.status = "trialing"
            tags.add("trial")
        months = 12 if annual else 1
        anchor = s.trial[1] if s.trial else created
        roll = rng.random()
        if roll < 0.12 and not annual:
            s.discounts.append(self.discount(s, created, "repeating", 20.0, 3))
            tags.add("discount_ends")
        elif roll < 0.2:
            s.discounts.append(self.discount(s, created, "forever", 10.0))
            tags.add("discount_forever")
        elif roll < 0.25:
            s.discounts.append(self.discount(s, created, "once", 50.0))
            tags.add("discount_once")

        boundaries = []
        k = 0
        while add_months(anchor, k * months) < HORIZON:
            boundaries.append(add_months(anchor, k * months))
            k += 1

        def period_of(t: int) -> tuple[int, int]:
            """The billing period holding ``t``: from one anchor date to the next."""
            if s.trial and t < s.trial[1]:
                return s.trial
            k = max(i for i, b in enumerate(boundaries) if b <= t) if t >= anchor else 0
            return add_months(anchor, k * months), add_months(anchor, (k + 1) * months)

        # The end: cancellation (immediately or at period end), or alive at the horizon.
        end_at: int | None = None
        end_mode = ""
        roll = rng.random()
        if s.trial and roll < 0.06:
            end_at, end_mode = created + rng.randint(2, 12) * DAY + 3600, "trial_cancel"
        elif roll < 0.5:
            end_at = created + rng.randint(40, 600) * DAY + rng.randint(1, 80000)
            end_mode = rng.choice(("immediately", "period_end"))
            if end_at >= HORIZON - 40 * DAY:
                end_at, end_mode = None, ""
        tags.add(end_mode or "alive")
        stop = end_at if end_at is not None else HORIZON

        actions: list[tuple[int, str]] = []
        if end_mode != "trial_cancel":
            for _ in range(rng.choice((0, 0, 1, 1, 2, 3, 4))):
                t = anchor + rng.randint(3, max(4, (stop - anchor) // DAY - 3)) * DAY \
                    + rng.randint(1, 80000)
                actions.append((t, "change"))
            if rng.random() < 0.06 and stop - anchor > 150 * DAY and not annual:
                p = anchor + rng.randint(40, (stop - anchor) // DAY - 100) * DAY + 5000
                actions.append((p, "pause"))
                actions.append((add_months(p, rng.choice((1, 2))) + 9 * DAY + 7, "resume"))
            if rng.random() < 0.03 and stop - anchor > 90 * DAY:
                actions.append((anchor + 45 * DAY + 777, "coupon"))
            if rng.random() < 0.05 and end_at is None:
                t = anchor + rng.randint(10, max(11, (stop - anchor) // DAY - 10)) * DAY + 99
                actions.append((t, "cancel_request"))
                actions.append((t + 2 * DAY, "uncancel"))
            if depth == 0 and self.busy_left and not annual and end_at is None:
                self.busy_left -= 1
                base = anchor + 35 * DAY
                actions.extend((base + i * 3600 + 11, "busy_change") for i in range(7))
                tags.add("many_lines")
        if end_at is not None:
            actions.append((end_at, f"end_{end_mode}"))
        for d in s.discounts:
            if d["end"] is not None and d["end"] < stop:
                actions.append((d["end"], "discount_end"))
        actions = [(t, kind) for t, kind in actions if t < HORIZON]
        # never on a period boundary, never two things in one second
        moments = sorted(set(boundaries))
        actions = [a for a in actions if a[0] not in moments or a[1] == "discount_end"]
        timeline = sorted([(b, "boundary") for b in moments if b < stop or
                           (end_mode == "period_end" and b == stop)] + actions)  # fmt: skip
        # a pause must resume before anything else happens to it
        paused_until = None
        chosen: list[tuple[int, str]] = []
        for t, kind in timeline:
            if kind == "pause":
                resume = next(x for x, k2 in timeline if k2 == "resume")
                if end_at is not None and resume >= end_at:
                    continue
                paused_until = resume
            elif (paused_until is not None and t < paused_until and kind not in (
                    "boundary", "resume", "discount_end")) or (kind == "resume" and paused_until is None):
                continue
            chosen.append((t, kind))
        self.run(s, chosen, boundaries, period_of, months, end_at, invisible, tags, depth)

    def run(self, s: _Sub, timeline: list[tuple[int, str]], boundaries: list[int],
            period_of: Any, months: int, end_at: int | None, invisible: set[str],
            tags: set[str], depth: int) -> None:  # fmt: skip
        rng = self.rng
        first_paid = True
        unexplained: list[int] = []  # times of changes no proration shows
        period_end_requested = False
        self.event("customer.subscription.created", self.sub_object(s, period_of(s.created)),
                   s.created)  # fmt: skip
        if s.trial:  # the $0 trial invoice
            lines = [self.line(s, si, plan, qty, s.trial[0], s.trial[1], 0, proration=False)
                     for si, (plan, qty) in sorted(s.items.items())]  # fmt: skip
            self.invoice(s, s.created, lines, "paid", "subscription_create")
        for t, kind in timeline:
            if s.ended_at is not None:
                break
            if kind == "boundary":
                if s.trial and t < s.trial[1]:
                    continue
                if period_end_requested and end_at is not None and t >= end_at:
                    break
                if s.trial and t == s.trial[1] and s.status == "trialing":
                    s.status = "active"
                    self.event("customer.subscription.updated", self.sub_object(s, period_of(t)),
                               t, {"status": "trialing"})  # fmt: skip
                start, end = period_of(t)
                lines = list(s.pending)
                s.pending = []
                for si, (plan, qty) in sorted(s.items.items()):
                    unit = self.prices[(plan, s.currency)]["unit_amount"]
                    lines.append(self.line(s, si, plan, qty, start, end, unit * qty,
                                           proration=False))  # fmt: skip
                if s.paused:
                    self.invoice(s, t, lines, "void", "subscription_cycle")
                    continue
                fail = end_at is not None and rng.random() < 0.25 and \
                    0 < end_at - t < 25 * DAY and not period_end_requested
                inv = self.invoice(s, t, lines, "open" if fail else "paid",
                                   "subscription_create" if first_paid and not s.trial
                                   else "subscription_cycle")  # fmt: skip
                unexplained = []
                first_paid = False
                if fail:
                    tags.add("payment_failed")
                    s.status = "past_due"
                    self.event("invoice.payment_failed", inv, t)
                    self.event("customer.subscription.updated", self.sub_object(s, (start, end)),
                               t + 1, {"status": "active"})  # fmt: skip
                elif inv["total"] > 0:
                    self.charge(s.customer, s.currency, inv["total"], t, inv["id"])
                    if rng.random() < 0.03:
                        note_at = t + 5 * DAY
                        if note_at < HORIZON:
                            self.credit_note(inv, note_at)
                continue
            previous: dict[str, Any] = {}
            if kind in ("change", "busy_change"):
                if s.status != "active" or s.paused:
                    continue
                old = dict(s.items)
                si = rng.choice(sorted(s.items))
                plan, qty = s.items[si]
                if kind == "busy_change":
                    s.items[si] = (plan, qty + 1)
                elif plan == "annual" or plan == "addon" or rng.random() < 0.5:
                    s.items[si] = (plan, max(1, qty + rng.choice((-2, -1, 1, 2, 5, 15))))
                    tags.add("seats")
                else:
                    s.items[si] = ("pro" if plan == "basic" else "basic", qty)
                    tags.add("upgrade" if plan == "basic" else "downgrade")
                if s.items == old:
                    continue
                previous = {"items": {"data": [{"id": si, "quantity": old[si][1]}]}}
                prorate = kind == "busy_change" or rng.random() < 0.96
                start, end = period_of(t)
                if prorate:
                    tags.add("proration")
                    frac = (end - t) / (end - start)
                    op, oq = old[si]
                    np_, nq = s.items[si]
                    credit = -round(self.prices[(op, s.currency)]["unit_amount"] * oq * frac)
                    debit = round(self.prices[(np_, s.currency)]["unit_amount"] * nq * frac)
                    pro = [self.line(s, si, op, oq, t, end, credit, proration=True, credit=True),
                           self.line(s, si, np_, nq, t, end, debit, proration=True)]
                    if months == 12:  # annual plans invoice prorations at once
                        inv = self.invoice(s, t, pro, "paid", "subscription_update")
                        if inv["total"] > 0:
                            self.charge(s.customer, s.currency, inv["total"], t, inv["id"])
                    else:
                        s.pending.extend(pro)
                else:
                    tags.add("no_proration")
                    unexplained.append(t)
            elif kind == "coupon":
                if s.status != "active" or s.paused:
                    continue
                s.discounts.append(self.discount(s, t, "forever", 20.0))
                previous = {"discounts": []}
                tags.add("coupon_between_invoices")
                unexplained.append(t)
            elif kind == "discount_end":
                s.discounts = [d for d in s.discounts if d["end"] != t]
                previous = {"discounts": ["ended"]}
            elif kind == "pause":
                if s.status != "active":
                    continue
                s.paused = True
                previous = {"pause_collection": None}
                tags.add("pause")
                invisible.add("pause")
            elif kind == "resume":
                if not s.paused:
                    continue
                s.paused = False
                previous = {"pause_collection": {"behavior": "void"}}
            elif kind == "cancel_request":
                s.cancel_at_period_end, s.canceled_at = True, t
                previous = {"cancel_at_period_end": False}
                tags.add("uncancel")
            elif kind == "uncancel":
                s.cancel_at_period_end, s.canceled_at = False, None
                previous = {"cancel_at_period_end": True}
            elif kind == "end_immediately" or kind == "end_trial_cancel":
                s.status, s.canceled_at, s.ended_at = "canceled", t, t
                self.end(s, t, unexplained, invisible, depth)
                return
            elif kind == "end_period_end":
                _, end = period_of(t)
                if end >= HORIZON or s.paused:
                    continue
                s.cancel_at_period_end, s.canceled_at = True, t
                self.event("customer.subscription.updated", self.sub_object(s, period_of(t)), t,
                           {"cancel_at_period_end": False})  # fmt: skip
                for d in sorted((d for d in s.discounts if d["end"] and t < d["end"] < end),
                                key=lambda d: d["end"]):  # ends before the subscription does
                    s.discounts = [x for x in s.discounts if x is not d]
                    self.event("customer.subscription.updated",
                               self.sub_object(s, period_of(t)), d["end"],
                               {"discounts": [d["id"]]})  # fmt: skip
                period_end_requested = True
                end_at = end
                tags.add("cancel_at_period_end")
                # no invoice at the period end: it ends then
                s.status, s.ended_at = "canceled", end
                self.end(s, end, unexplained, invisible, depth)
                return
            else:
                continue
            self.event("customer.subscription.updated", self.sub_object(s, period_of(t)), t,
                       previous)  # fmt: skip
        if unexplained:  # a change no proration and no invoice shows
            invisible.add("changed_after_last_invoice")
        self.pending_items(s)
        self.account.add("subscriptions", self.sub_object(s, period_of(min(HORIZON - 1,
                                                                       timeline[-1][0]))))

    def end(self, s: _Sub, at: int, unexplained: list[int], invisible: set[str],
            depth: int) -> None:  # fmt: skip
        if unexplained:
            invisible.add("changed_after_last_invoice")
        self.pending_items(s)  # prorations of the last period, never invoiced
        final = self.sub_object(s, (at, at))
        self.event("customer.subscription.deleted", final, at)
        self.account.add("subscriptions", final)
        if depth == 0 and self.rng.random() < 0.4:  # the customer comes back later
            again = at + self.rng.randint(20, 120) * DAY + 4321
            if again < HORIZON - 30 * DAY:
                self.account.scenarios[s.id].add("reactivated_later")
                self.subscription(s.customer, again, depth + 1)


def generate(seed: int, subscriptions: int, prefix: str = "a") -> Account:
    """An account of ``subscriptions`` first subscriptions (plus returning customers')."""
    gen = _Generator(seed, prefix)
    rng = gen.rng
    for _ in range(subscriptions):
        created = T0 + rng.randint(0, 600) * DAY + rng.randint(0, 86_399)
        gen.subscription(gen.customer(), created)
    for _ in range(max(subscriptions // 20, 1)):  # one-off charges, no invoice
        customer = gen.customer()
        gen.charge(customer, "usd", rng.randint(500, 20000),
                   T0 + rng.randint(0, 700) * DAY + 17, None)  # fmt: skip
    acc = gen.account
    _mark_unprorated(acc)
    acc.events.sort(key=lambda e: int(e["created"]))  # stable: same-second order kept
    return acc


def _mark_unprorated(acc: Account) -> None:
    """A change no proration shows: the rebuild must name it (whatever the reason code)."""
    for sub_id, tags in acc.scenarios.items():
        if "no_proration" in tags or "coupon_between_invoices" in tags:
            acc.invisible.setdefault(sub_id, set()).add("unprorated_change")
