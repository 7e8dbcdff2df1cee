"""Stripe objects and events -> growth events: MRR of a subscription, lifecycle transitions.

Pure functions over plain dicts (a webhook's JSON, an Events API page, a list page), so the
webhook path, the Events API pull and the list-endpoint backfill share every rule and, for
the same fact, produce the same idempotency key:

| fact                        | source_id                    | kind                      |
| --------------------------- | ---------------------------- | ------------------------- |
| payment (charge succeeded)  | ``ch_...``                   | ``payment``               |
| refund                      | ``re_...``                   | ``refund``                |
| invoice payment failed      | ``in_...:attempt:N``         | ``payment_failed``        |
| trial started               | ``sub_...``                  | ``trial_started``         |
| subscription started        | ``sub_...``                  | ``subscription_started``  |
| subscription cancelled      | ``sub_...``                  | ``subscription_cancelled``|
| plan/seat/discount change   | ``sub_...@T:MRR``            | ``subscription_changed``  |
| pause (``pause_collection`` set, status ``paused``) | ``sub_...@T:MRR`` | ``subscription_paused`` |
| pause cleared               | ``sub_...@T:MRR``            | ``subscription_resumed``  |
| credit note (not refunded)  | ``cn_...``                   | ``refund``                |
| customer created (optional) | ``cus_...``                  | ``signup``                |

A change is keyed by the fact, not by the delivery: the subscription, the second ``T`` it
took effect (the event's ``created``; for the invoice rebuild of ``stripe_history``, the
proration's or the period's start) and the MRR it left. A webhook, an Events API read and
an invoice rebuild of the same change therefore collide in the ledger; two changes of one
subscription in the same second that end at different MRR stay two events.

Payments come from charges (the money that moved; invoice payments are charges too), so
``invoice.paid`` adds nothing and one-off charges are not missed. MRR follows
``docs/metrics.md`` (see ``subscription_mrr``). Several Stripe API versions are read:
``price`` or the legacy ``plan`` on items, ``discounts`` (list) or the legacy ``discount``,
coupons at ``discount.coupon`` or ``discount.source.coupon``.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any

from growthwatch import currency as iso4217
from growthwatch.events import EventType, GrowthEvent

log = logging.getLogger(__name__)

SOURCE = "stripe"
PAYING = frozenset({"active", "past_due"})  # statuses that carry MRR
TERMINAL = "canceled"
MICRO = Decimal("0.000001")
# months per billing interval unit, for normalising to one month
_MONTHS_PER: Mapping[str, Decimal] = {
    "day": Decimal(12) / Decimal(365),
    "week": Decimal(12) / Decimal(52),
    "month": Decimal(1),
    "year": Decimal(12),
}


class MappingError(ValueError):
    """A Stripe record that cannot become an event; ``reason`` is a low-cardinality code."""

    def __init__(self, reason: str, detail: str) -> None:
        self.reason = reason
        self.detail = detail
        super().__init__(f"{reason}: {detail}")


def ident(value: Any) -> str | None:
    """An id whether the field holds the id or the expanded object."""
    if isinstance(value, Mapping):
        value = value.get("id")
    return value if isinstance(value, str) and value else None


def require_id(obj: Mapping[str, Any], what: str) -> str:
    found = ident(obj.get("id"))
    if not found:
        raise MappingError("missing_id", f"{what} without an id")
    return found


def currency_of(obj: Mapping[str, Any]) -> str:
    raw = obj.get("currency")
    code = iso4217.normalise(raw) if isinstance(raw, str) else None
    if not code or not iso4217.is_currency(code):
        raise MappingError("unknown_currency", f"{obj.get('id')}: currency {raw!r}")
    return code


def ts(value: Any, what: str) -> datetime:
    if not isinstance(value, int | float) or isinstance(value, bool):
        raise MappingError("missing_timestamp", f"{what}: {value!r}")
    return datetime.fromtimestamp(value, UTC)


def _minor(amount: Decimal, code: str) -> Decimal:
    return amount.scaleb(-iso4217.MINOR_UNITS[code])


# -- MRR ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SubscriptionMRR:
    """A subscription's monthly-normalised MRR in its own currency."""

    mrr: Decimal  # with the status rules applied (trialing/unpaid/canceled/paused -> 0)
    gross: Decimal  # what it is worth while paying (status ignored; discounts applied)
    currency: str
    status: str
    plan: str | None
    interval: str | None
    quantity: int
    unresolved_discounts: bool = False

    def metadata(self, sub_id: str) -> dict[str, str | int | bool | None]:
        meta: dict[str, str | int | bool | None] = {
            "subscription": sub_id,
            "plan": self.plan,
            "interval": self.interval,
            "quantity": self.quantity,
            "status": self.status,
        }
        if self.unresolved_discounts:
            meta["discount_unresolved"] = True
        return meta


def _price_of(item: Mapping[str, Any]) -> Mapping[str, Any]:
    price = item.get("price") or item.get("plan")
    if not isinstance(price, Mapping):
        raise MappingError("missing_price", f"subscription item {item.get('id')} has no price")
    return price


def _recurring(price: Mapping[str, Any]) -> tuple[str, int, str] | None:
    """(interval, interval_count, usage_type) of a price or legacy plan; None if one-time."""
    rec = price.get("recurring")
    if isinstance(rec, Mapping):
        return str(rec.get("interval")), int(rec.get("interval_count") or 1), str(
            rec.get("usage_type") or "licensed"
        )
    if price.get("object") == "plan" or "interval" in price:
        if not price.get("interval"):
            return None
        return str(price["interval"]), int(price.get("interval_count") or 1), str(
            price.get("usage_type") or "licensed"
        )
    return None


def _unit_amount(price: Mapping[str, Any]) -> Decimal | None:
    for key in ("unit_amount_decimal", "amount_decimal", "unit_amount", "amount"):
        value = price.get(key)
        if value is not None:
            return Decimal(str(value))
    return None


def _tiered_amount(price: Mapping[str, Any], quantity: int) -> Decimal | None:
    """Amount for ``quantity`` under a tiered price (needs ``tiers`` expanded)."""
    tiers = price.get("tiers")
    if not isinstance(tiers, list) or not tiers:
        return None

    def tier_cost(tier: Mapping[str, Any], units: int) -> Decimal:
        unit = tier.get("unit_amount_decimal") or tier.get("unit_amount") or 0
        flat = tier.get("flat_amount_decimal") or tier.get("flat_amount") or 0
        return Decimal(str(unit)) * units + (Decimal(str(flat)) if units else Decimal(0))

    if price.get("tiers_mode") == "volume":
        for tier in tiers:
            upto = tier.get("up_to")
            if upto is None or quantity <= int(upto):
                return tier_cost(tier, quantity)
        return None
    total, below = Decimal(0), 0  # graduated
    for tier in tiers:
        upto = tier.get("up_to")
        top = quantity if upto is None else min(quantity, int(upto))
        if top > below:
            total += tier_cost(tier, top - below)
            below = top
        if upto is not None and quantity <= int(upto):
            break
    return total


def _quantity(item: Mapping[str, Any], price: Mapping[str, Any]) -> int:
    quantity = int(item.get("quantity") or (0 if item.get("quantity") == 0 else 1))
    transform = price.get("transform_quantity") or price.get("transform_usage")
    if isinstance(transform, Mapping) and transform.get("divide_by"):
        divided = quantity / int(transform["divide_by"])
        quantity = math.ceil(divided) if transform.get("round") == "up" else math.floor(divided)
    return quantity


def _coupon(discount: Any) -> Mapping[str, Any] | str | None:
    """The coupon of a discount object; a str when only ids are present (not expanded)."""
    if isinstance(discount, str):
        return discount
    if not isinstance(discount, Mapping):
        return None
    coupon = discount.get("coupon")
    if coupon is None and isinstance(discount.get("source"), Mapping):
        coupon = discount["source"].get("coupon")
    if isinstance(coupon, str):
        return coupon
    return coupon if isinstance(coupon, Mapping) else None


def _discount_applies(discount: Any, coupon: Mapping[str, Any], at: int) -> bool:
    duration = coupon.get("duration")
    if duration == "forever":
        return True
    if duration == "repeating":
        end = discount.get("end") if isinstance(discount, Mapping) else None
        return end is None or int(end) > at
    return False  # "once": Stripe's rule, it does not change MRR


def _apply_discounts(
    amount: Decimal, discounts: list[Any], currency: str, months: Decimal, at: int
) -> tuple[Decimal, bool]:
    """Monthly amount after recurring discounts; flag when some could not be resolved."""
    unresolved = False
    percent_factor = Decimal(1)
    amount_off = Decimal(0)
    for discount in discounts:
        coupon = _coupon(discount)
        if isinstance(coupon, str):
            unresolved = True
            continue
        if coupon is None or not _discount_applies(discount, coupon, at):
            continue
        if coupon.get("percent_off") is not None:
            percent_factor *= 1 - Decimal(str(coupon["percent_off"])) / 100
        elif coupon.get("amount_off") is not None:
            code = iso4217.normalise(str(coupon.get("currency") or currency))
            off = coupon["amount_off"]
            options = coupon.get("currency_options")
            if code != currency and isinstance(options, Mapping):
                alt = options.get(currency.lower())
                if isinstance(alt, Mapping) and alt.get("amount_off") is not None:
                    code, off = currency, alt["amount_off"]
            if code == currency:
                amount_off += _minor(Decimal(str(off)), currency) / months
            else:
                unresolved = True
    return max(amount * percent_factor - amount_off, Decimal(0)), unresolved


def _discount_list(obj: Mapping[str, Any]) -> list[Any]:
    found: list[Any] = []
    many = obj.get("discounts")
    if isinstance(many, list):
        found.extend(many)
    single = obj.get("discount")
    if isinstance(single, Mapping) and not any(
        ident(d) == single.get("id") for d in found if single.get("id")
    ):
        found.append(single)
    return found


def is_paused(sub: Mapping[str, Any]) -> bool:
    return sub.get("status") == "paused" or bool(sub.get("pause_collection"))


def subscription_mrr(sub: Mapping[str, Any], at: int | None = None) -> SubscriptionMRR:
    """Monthly recurring revenue of one subscription object, per METRICS.md.

    Per licensed recurring item: unit amount x quantity (``transform_quantity`` applied;
    tiered prices when their tiers are expanded), normalised to a month (interval and
    interval_count); metered and one-time items are excluded. Item-level then
    subscription-level recurring discounts ("forever", "repeating" until its end) reduce
    it, "once" does not. Status: active/past_due keep it; trialing, unpaid, canceled,
    incomplete and paused (status or ``pause_collection``) have MRR 0.
    """
    currency = currency_of(sub)
    at = at if at is not None else int(datetime.now(UTC).timestamp())
    items = sub.get("items")
    data = items.get("data") if isinstance(items, Mapping) else items
    if not isinstance(data, list):
        raise MappingError("missing_items", f"subscription {sub.get('id')} has no items")
    total = Decimal(0)
    quantity = 0
    plan: str | None = None
    interval: str | None = None
    months_main = Decimal(1)
    unresolved = False
    for item in data:
        price = _price_of(item)
        recurring = _recurring(price)
        if recurring is None:
            continue
        unit, count, usage = recurring
        if unit not in _MONTHS_PER:
            raise MappingError("bad_interval", f"price {price.get('id')}: interval {unit!r}")
        if usage == "metered":
            continue
        qty = _quantity(item, price)
        if qty < 0:
            raise MappingError("invalid_quantity",
                               f"subscription item {item.get('id')}: quantity {qty} is negative")  # fmt: skip
        if price.get("billing_scheme") == "tiered":
            minor = _tiered_amount(price, qty)
            if minor is None:
                log.warning("price %s: tiers not expanded; item counted as 0", price.get("id"))
                unresolved = True
                minor = Decimal(0)
        else:
            unit_amount = _unit_amount(price)
            if unit_amount is None:
                raise MappingError("missing_amount", f"price {price.get('id')} has no amount")
            if not unit_amount.is_finite() or unit_amount < 0:
                raise MappingError("invalid_amount", f"price {price.get('id')}: unit amount "
                                   f"{unit_amount} is not a non-negative number")  # fmt: skip
            minor = unit_amount * qty
        months = _MONTHS_PER[unit] * count
        item_amount, item_unresolved = _apply_discounts(
            _minor(minor, currency) / months, _discount_list(item), currency, months, at
        )
        unresolved |= item_unresolved
        total += item_amount
        quantity += qty
        if plan is None:
            plan = str(price.get("nickname") or price.get("lookup_key") or price.get("id"))
            interval = unit if count == 1 else f"{count} {unit}s"
            months_main = months
    gross, sub_unresolved = _apply_discounts(total, _discount_list(sub), currency, months_main, at)
    gross = gross.quantize(MICRO, ROUND_HALF_EVEN)
    status = str(sub.get("status") or "")
    mrr = gross if status in PAYING and not is_paused(sub) else Decimal(0)
    return SubscriptionMRR(
        mrr=mrr,
        gross=gross,
        currency=currency,
        status="paused" if is_paused(sub) and status in PAYING else status,
        plan=plan,
        interval=interval,
        quantity=quantity,
        unresolved_discounts=unresolved or sub_unresolved,
    )


# -- subscription lifecycle -----------------------------------------------------------------


@dataclass(frozen=True)
class Transition:
    """The events one subscription observation produces and the state it leaves."""

    events: list[GrowthEvent]
    state: dict[str, Any] | None  # None: stale observation, state unchanged


def _sub_event(
    etype: EventType,
    *,
    product: str,
    sub_id: str,
    customer: str,
    when: datetime,
    before: Decimal,
    after: Decimal,
    info: SubscriptionMRR,
    source_id: str,
    extra: Mapping[str, str | int | bool | None] | None = None,
) -> GrowthEvent:
    return GrowthEvent(
        product=product,
        type=etype,
        timestamp=when,
        value=after - before,
        currency=info.currency,
        subject=customer,
        mrr_before=before,
        mrr_after=after,
        metadata={**info.metadata(sub_id), **(extra or {})},
        source=SOURCE,
        source_id=source_id,
        kind=etype.value,
    )


def cancellation_metadata(sub: Mapping[str, Any]) -> dict[str, str]:
    """``cancellation_details.reason`` and ``feedback`` as ``cancel_reason`` and
    ``cancel_feedback``, when Stripe has them: the reason ``payment_failed`` makes the churn
    delinquent (growthwatch.metrics.mrr), the others are the customer's own cancellation.
    The free-text ``comment`` is left out: it is personal data, not a category."""
    details = sub.get("cancellation_details")
    if not isinstance(details, Mapping):
        return {}
    out: dict[str, str] = {}
    for key, name in (("reason", "cancel_reason"), ("feedback", "cancel_feedback")):
        value = details.get(key)
        if isinstance(value, str) and value:
            out[name] = value
    return out


def change_source_id(sub_id: str, observed: int, mrr: Decimal) -> str:
    """The fact-derived ``source_id`` of an MRR change (see the module table)."""
    return f"{sub_id}@{int(observed)}:{mrr.normalize():f}"


_EVENT_RANK = {"customer.subscription.created": 0, "customer.subscription.updated": 1,
               "customer.subscription.deleted": 2}  # fmt: skip
_STATUS_RANK = {"incomplete": 0, "incomplete_expired": 0, "trialing": 1, "active": 2,
                "past_due": 3, "paused": 3, "unpaid": 4, "canceled": 5}  # fmt: skip


def lifecycle_rank(event_type: str | None, status: str) -> tuple[int, int]:
    """Where an observation stands in a subscription's life, to order same-second ones:
    created before updated before deleted, then incomplete -> trialing -> active ->
    past_due/paused -> unpaid -> canceled. A list read (no event type) ranks as an update."""
    return _EVENT_RANK.get(event_type or "", 1), _STATUS_RANK.get(status, 2)


def _prev_rank(prev: Mapping[str, Any]) -> tuple[int, int]:
    stored = prev.get("rank")
    if isinstance(stored, list) and len(stored) == 2:
        return int(stored[0]), int(stored[1])
    return 1, _STATUS_RANK.get(str(prev.get("status")), 2)  # a state written before ranks


def subscription_transition(
    prev: Mapping[str, Any] | None,
    sub: Mapping[str, Any],
    *,
    product: str,
    observed: int,
    event_id: str | None = None,
    event_type: str | None = None,
) -> Transition:
    """Events for the step from the last-applied state ``prev`` to the object ``sub``.

    ``observed`` is when ``sub`` was true (the event's ``created``, or the fetch time of a
    list backfill). Observations older than the last-applied one are stale (out-of-order
    delivery) and change nothing; ``canceled`` is terminal. ``mrr_before`` is always the
    last-applied MRR, so a subscription's events telescope: their values sum to its MRR.
    """
    sub_id = require_id(sub, "subscription")
    customer = ident(sub.get("customer"))
    if not customer:
        raise MappingError("missing_customer", f"subscription {sub_id} has no customer")
    rank = lifecycle_rank(event_type, str(sub.get("status") or ""))
    if prev is not None and (prev["status"] == TERMINAL or observed < int(prev["observed"])):
        return Transition([], None)
    if prev is not None and observed == int(prev["observed"]) and rank < _prev_rank(prev):
        # Stripe sends created/updated/deleted of one subscription in the same second, in
        # any order: within a second, the step later in the lifecycle wins, never arrival.
        return Transition([], None)
    info = subscription_mrr(sub, at=observed)
    deleted = event_type == "customer.subscription.deleted" or info.status == TERMINAL
    status = TERMINAL if deleted else info.status
    mrr = Decimal(0) if deleted else info.mrr
    when = datetime.fromtimestamp(observed, UTC)
    change_id = change_source_id(sub_id, observed, mrr)
    extra = {"stripe_event": event_id} if event_id else None

    def event(
        etype: EventType, at: datetime, before: Decimal, after: Decimal, source_id: str = sub_id
    ) -> GrowthEvent:
        more: Mapping[str, str | int | bool | None] | None = extra
        if etype is EventType.SUBSCRIPTION_CANCELLED:
            more = {**(extra or {}), **cancellation_metadata(sub)} or None
        if etype is EventType.TRIAL_STARTED and isinstance(sub.get("trial_end"), int):
            # when the trial ends if it does not convert (growthwatch.metrics.trials)
            more = {**(extra or {}), "trial_end": int(sub["trial_end"])}
        return _sub_event(
            etype, product=product, sub_id=sub_id, customer=customer, when=at, before=before,
            after=after, info=info, source_id=source_id, extra=more,
        )  # fmt: skip

    def moment(key: str, fallback: datetime) -> datetime:
        value = sub.get(key)
        return datetime.fromtimestamp(value, UTC) if isinstance(value, int | float) else fallback

    start = moment("start_date", moment("created", when))
    trial_start = moment("trial_start", start)
    trial_end = moment("trial_end", when)
    had_trial = sub.get("trial_start") is not None and sub.get("trial_end") is not None
    ended = moment("ended_at", moment("canceled_at", when))
    events: list[GrowthEvent] = []
    if prev is None:
        before = Decimal(0)
        if status in ("incomplete", "incomplete_expired"):
            pass
        elif status == "trialing" or (had_trial and deleted and ended <= trial_end):
            events.append(event(EventType.TRIAL_STARTED, trial_start, before, before))
        else:
            if had_trial:
                events.append(event(EventType.TRIAL_STARTED, trial_start, before, before))
            started_at = trial_end if had_trial else start
            events.append(event(EventType.SUBSCRIPTION_STARTED, started_at, before, info.gross))
            before = info.gross
        if deleted:
            events.append(event(EventType.SUBSCRIPTION_CANCELLED, ended, before, Decimal(0)))
        elif before != mrr:  # first seen unpaid/paused: worth `gross` while paying, now 0
            etype = EventType.SUBSCRIPTION_PAUSED if status == "paused" and mrr == 0 else (
                EventType.SUBSCRIPTION_CHANGED)  # fmt: skip
            events.append(event(etype, when, before, mrr, change_id))
    else:
        before = Decimal(str(prev["mrr"]))
        if deleted:
            events.append(event(EventType.SUBSCRIPTION_CANCELLED, ended, before, Decimal(0)))
        elif not prev.get("paid") and mrr > 0:
            at = trial_end if prev["status"] == "trialing" and had_trial else when
            events.append(event(EventType.SUBSCRIPTION_STARTED, at, before, mrr))
        elif mrr != before:
            # ``pause_collection`` set or status ``paused``: a pause (MRR 0, not churn);
            # cleared again: a resume. Back from unpaid: a reactivation.
            if status == "paused" and mrr == 0:
                etype = EventType.SUBSCRIPTION_PAUSED
            elif before == 0 and prev["status"] == "paused":
                etype = EventType.SUBSCRIPTION_RESUMED
            elif before == 0 and prev["status"] == "unpaid":
                etype = EventType.SUBSCRIPTION_REACTIVATED
            else:
                etype = EventType.SUBSCRIPTION_CHANGED
            events.append(event(etype, when, before, mrr, change_id))
    paid = bool(prev and prev.get("paid")) or any(e.mrr_after for e in events) or mrr > 0
    state = {
        "status": status,
        "mrr": str(mrr),
        "currency": info.currency,
        "observed": observed,
        "rank": list(rank),
        "paid": paid,
        "customer": customer,
        "event": event_id,
    }
    return Transition(events, state)


# -- money ----------------------------------------------------------------------------------


def _subject(customer: Any, fallback: str) -> str:
    """The customer id; a guest payment has none, so it is its own subject."""
    return ident(customer) or f"guest:{fallback}"


def charge_payment(charge: Mapping[str, Any], product: str) -> GrowthEvent | None:
    """A succeeded, captured charge is a payment; anything else is not (yet)."""
    charge_id = require_id(charge, "charge")
    if charge.get("status") != "succeeded" or charge.get("captured") is False:
        return None
    code = currency_of(charge)
    amount = charge.get("amount_captured") or charge.get("amount")
    if not isinstance(amount, int) or amount <= 0:
        return None
    return GrowthEvent(
        product=product,
        type=EventType.PAYMENT,
        timestamp=ts(charge.get("created"), charge_id),
        value=_minor(Decimal(amount), code),
        currency=code,
        subject=_subject(charge.get("customer"), charge_id),
        metadata={"charge": charge_id, "invoice": ident(charge.get("invoice"))},
        source=SOURCE,
        source_id=charge_id,
        kind=EventType.PAYMENT.value,
    )


def refund_event(
    refund: Mapping[str, Any], product: str, customer: Any = None
) -> GrowthEvent | None:
    """A succeeded (or pending) refund, on the day it happened (never back-dated)."""
    refund_id = require_id(refund, "refund")
    if refund.get("status") not in ("succeeded", "pending", None):
        return None
    code = currency_of(refund)
    amount = refund.get("amount")
    if not isinstance(amount, int) or amount <= 0:
        return None
    charge_id = ident(refund.get("charge")) or refund_id
    return GrowthEvent(
        product=product,
        type=EventType.REFUND,
        timestamp=ts(refund.get("created"), refund_id),
        value=_minor(Decimal(amount), code),
        currency=code,
        subject=_subject(refund.get("customer") or customer, charge_id),
        metadata={"charge": charge_id},
        source=SOURCE,
        source_id=refund_id,
        kind=EventType.REFUND.value,
    )


def invoice_payment_failed(
    invoice: Mapping[str, Any], product: str, at: int | None = None
) -> GrowthEvent | None:
    """The invoice's latest failed attempt (one event per attempt number).

    ``at`` is the webhook/event time of the failure; a backfill only knows the invoice's
    creation time (the key is the same, so whichever arrives first keeps its time).
    """
    invoice_id = require_id(invoice, "invoice")
    attempts = int(invoice.get("attempt_count") or 0)
    if attempts < 1 or invoice.get("status") not in ("open", "uncollectible"):
        return None
    customer = ident(invoice.get("customer"))
    if not customer:
        raise MappingError("missing_customer", f"invoice {invoice_id} has no customer")
    code = currency_of(invoice)
    amount = int(invoice.get("amount_remaining") or invoice.get("amount_due") or 0)
    return GrowthEvent(
        product=product,
        type=EventType.PAYMENT_FAILED,
        timestamp=ts(at if at is not None else invoice.get("created"), invoice_id),
        value=_minor(Decimal(amount), code),
        currency=code,
        subject=customer,
        metadata={"invoice": invoice_id, "attempt": attempts},
        source=SOURCE,
        source_id=f"{invoice_id}:attempt:{attempts}",
        kind=EventType.PAYMENT_FAILED.value,
    )


def customer_signup(customer: Mapping[str, Any], product: str) -> GrowthEvent:
    customer_id = require_id(customer, "customer")
    return GrowthEvent(
        product=product,
        type=EventType.SIGNUP,
        timestamp=ts(customer.get("created"), customer_id),
        value=Decimal(1),
        subject=customer_id,
        metadata={"via": "stripe_customer"},
        source=SOURCE,
        source_id=customer_id,
        kind=EventType.SIGNUP.value,
    )


def credit_note_event(note: Mapping[str, Any], product: str) -> GrowthEvent | None:
    """The part of an issued post-payment credit note that no Refund object carries.

    A credit note after payment gives money back as a refund (a ``re_`` object, already a
    ``refund`` event), as customer balance, or out of band; only the last two are this
    event, so nothing is counted twice. A pre-payment note lowers what is still due (the
    payment is smaller), so it is no event; a void note is none either.
    """
    note_id = require_id(note, "credit note")
    if note.get("status") not in ("issued", None) or note.get("type") == "pre_payment":
        return None
    code = currency_of(note)
    total = note.get("total") if isinstance(note.get("total"), int) else note.get("amount")
    if not isinstance(total, int) or total <= 0:
        return None
    refunds = note.get("refunds")
    if isinstance(refunds, list):
        refunded = sum(int(r.get("amount_refunded") or 0) for r in refunds
                       if isinstance(r, Mapping))  # fmt: skip
    else:  # older API versions: one ``refund`` id, for the whole refunded part
        refunded = total if note.get("refund") else 0
    credited = total - refunded
    if credited <= 0:
        return None
    customer = ident(note.get("customer"))
    return GrowthEvent(
        product=product,
        type=EventType.REFUND,
        timestamp=ts(note.get("effective_at") or note.get("created"), note_id),
        value=_minor(Decimal(credited), code),
        currency=code,
        subject=_subject(customer, note_id),
        metadata={"credit_note": note_id, "invoice": ident(note.get("invoice"))},
        source=SOURCE,
        source_id=note_id,
        kind=EventType.REFUND.value,
    )
