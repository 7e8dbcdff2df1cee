"""Subscription customers, one lifecycle at a time: trials, plans, renewals, churn, comebacks.

Paying customers are few (a few per product and day at the default volume), so each one is
simulated with plain Python over its whole life, which keeps the rules readable: every
billing period charges once (annual plans once a year), a failed charge is retried and
either recovers or ends in an involuntary cancellation, plans and seats change, customers
cancel at period end or immediately (sometimes with a refund) and some come back.

Money is in integer minor units throughout, so MRR values chain exactly: every
subscription event's value is ``mrr_after - mrr_before`` and the next event of that
subscription starts where the previous one ended. MRR follows METRICS.md: price x seats
per month, annual / 12, nothing while trialing.

Every customer draws from its own random stream (seed, product, customer number), so a
customer's life does not depend on how many others were simulated before it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Final

import numpy as np

from growthwatch.currency import MINOR_UNITS
from growthwatch.demo.catalog import TIERS, DemoPlan, DemoProduct, ProductProfile
from growthwatch.demo.columns import CODE, Block, empty, nulls, strings
from growthwatch.demo.incidents import CHURN_SPIKE_FACTOR, Incident
from growthwatch.demo.spec import DAY_S, HOUR_S, Stream, add_months_s, rng
from growthwatch.events import SUBSCRIPTION_TYPES, EventType

TRIAL_DAYS: Final = 14
FAIL_RATE: Final = 0.035  # a renewal charge fails (card declined, expired, ...)
RETRY_DAYS: Final = (3, 5, 7)  # dunning schedule after a failed charge
RETRY_SUCCESS: Final = 0.5
INVOLUNTARY_RATE: Final = FAIL_RATE * (1 - RETRY_SUCCESS) ** len(RETRY_DAYS)
REFUND_RATE: Final = 0.015  # a payment is refunded in full a few days later
CHANGE_RATE: Final = 0.06  # per monthly period (annual plans: per year, see _decide_change)
UPGRADE_SHARE: Final = 0.65
IMMEDIATE_SHARE: Final = 0.4  # voluntary cancellations that end the subscription at once
REFUND_ON_IMMEDIATE: Final = 0.35  # immediate cancellations refunded pro rata
ANNUAL_NON_RENEWAL: Final = 0.22
REACTIVATION_RATE: Final = 0.2
TIER_WEIGHTS: Final = (0.5, 0.35, 0.15)
_SUBSCRIPTION_CODES: Final = frozenset(CODE[t] for t in SUBSCRIPTION_TYPES)
_OPENING_KEYS: Final = ("subscription", "interval", "quantity")


@dataclass(frozen=True)
class ProductContext:
    """What a customer's simulation needs to know about its product and the spec."""

    seed: int
    index: int
    product: DemoProduct
    profile: ProductProfile
    end_s: int
    churn_spike: Incident | None
    payment_outage: Incident | None

    @property
    def daily_churn(self) -> float:
        """Baseline probability per day that a paying monthly customer's MRR ends."""
        return (self.profile.churn + INVOLUNTARY_RATE) * 12 / 365


Row = tuple[int, int, int, int | None, int | None, str, str, str]  # see _Customer.emit


class _Draws:
    """Uniform draws from one customer's stream, fetched in batches (scalar draws are slow)."""

    def __init__(self, generator: np.random.Generator) -> None:
        self._gen = generator
        self._buf: list[float] = []
        self._pos = 0

    def u(self) -> float:
        if self._pos == len(self._buf):
            self._buf = self._gen.random(32).tolist()
            self._pos = 0
        self._pos += 1
        return self._buf[self._pos - 1]

    def between(self, low: int, high: int) -> int:
        """An integer in ``[low, high)`` (``low`` if the range is empty)."""
        return low + int(self.u() * max(high - low, 0))

    def choice(self, weights: tuple[float, ...]) -> int:
        x, acc = self.u() * sum(weights), 0.0
        for i, w in enumerate(weights):
            acc += w
            if x < acc:
                return i
        return len(weights) - 1


class _Customer:
    """One customer's life; ``rows`` collects its events in time order."""

    def __init__(self, ctx: ProductContext, number: int, acquired_s: int) -> None:
        self.ctx = ctx
        self.draw = _Draws(rng(ctx.seed, Stream.CUSTOMER, ctx.index, number))
        self.name = f"cus_{number:06d}"
        self.subject = f"{ctx.product.id}:{self.name}"
        self.acquired_s = acquired_s
        self.rows: list[Row] = []
        self.sub_no = 0
        self.seq = 0
        self.plan: DemoPlan = ctx.product.plans[0]
        self.quantity = 1
        self.mrr = 0
        self.cancelled_s: int | None = None

    # -- the lifecycle ---------------------------------------------------------------------

    def live(self) -> None:
        t = self._begin()
        while t is not None:
            ended = self._subscribe(t)
            if ended is None:
                return
            t = self._comeback(ended)

    def _begin(self) -> int | None:
        """Trial or direct start; the time the first paid period starts, or None."""
        d, p = self.draw, self.ctx.profile
        tier = TIERS[d.choice(TIER_WEIGHTS)]
        interval = "year" if d.u() < p.annual_share else "month"
        self.plan = self.ctx.product.plan(tier, interval)
        self.quantity = self._initial_seats()
        self.sub_no = 1
        t = self.acquired_s
        if d.u() < p.trial_rate:
            if not self.subscription_event(t, EventType.TRIAL_STARTED, 0):
                return None
            converts = d.u() < p.trial_conversion
            t += TRIAL_DAYS * DAY_S + d.between(0, 2 * HOUR_S)
            if not converts or t >= self.ctx.end_s:
                return None
        if not self.subscription_event(t, EventType.SUBSCRIPTION_STARTED, self._list_mrr()):
            return None
        return t

    def _comeback(self, ended_s: int) -> int | None:
        """Some churned customers reactivate: days later (changed mind) or months later."""
        d = self.draw
        if d.u() >= REACTIVATION_RATE:
            return None
        soon = d.u() < 0.4
        delay = d.between(1 * DAY_S, 14 * DAY_S) if soon else d.between(30 * DAY_S, 300 * DAY_S)
        t = ended_s + delay
        if t >= self.ctx.end_s:
            return None
        self.sub_no += 1
        if d.u() < 0.3:
            self.plan = self.ctx.product.plan(TIERS[d.choice(TIER_WEIGHTS)], self.plan.interval)
        if not self.subscription_event(t, EventType.SUBSCRIPTION_REACTIVATED, self._list_mrr()):
            return None
        return t

    def _subscribe(self, started_s: int) -> int | None:
        """Bill period after period; the time MRR went to 0, or None if still paying at end."""
        period = 0
        while True:
            period_start = add_months_s(started_s, period * self.plan.months)
            if period_start >= self.ctx.end_s:
                return None
            period_end = add_months_s(started_s, (period + 1) * self.plan.months)
            paid_s = self._charge(period_start)
            if paid_s is None:
                return self.cancelled_s
            ended = self._during(paid_s, period_end)
            if ended is not None:
                return ended
            period += 1

    # -- one billing period --------------------------------------------------------------

    def _charge(self, due_s: int) -> int | None:
        """Charge the period; the time it was paid, or None (end reached or dunning lost).

        A charge inside the payment outage fails and is retried once the provider is back;
        an ordinary decline follows the dunning schedule and may end the subscription.
        """
        self.cancelled_s = None
        amount = self.plan.price_minor * self.quantity
        outage = self.ctx.payment_outage
        for attempt, retry_day in enumerate((0, *RETRY_DAYS), start=1):
            t = due_s + retry_day * DAY_S + self.draw.between(1, 900)
            if outage is not None and outage.covers(t):
                if not self.money_event(t, EventType.PAYMENT_FAILED, amount,
                                        attempt=attempt, reason="processor_error"):  # fmt: skip
                    return None
                t = outage.end_s + self.draw.between(600, 2 * HOUR_S)
                return t if self.payment(t, amount) else None
            u = self.draw.u()
            if (u >= FAIL_RATE) if attempt == 1 else (u < RETRY_SUCCESS):
                return t if self.payment(t, amount) else None
            if not self.money_event(t, EventType.PAYMENT_FAILED, amount,
                                    attempt=attempt, reason="card_declined"):  # fmt: skip
                return None
        last = due_s + RETRY_DAYS[-1] * DAY_S + HOUR_S
        if self.subscription_event(last, EventType.SUBSCRIPTION_CANCELLED, 0,
                                   reason="payment_failed"):  # fmt: skip
            self.cancelled_s = last
        return None

    def payment(self, t: int, amount: int) -> bool:
        if not self.money_event(t, EventType.PAYMENT, amount):
            return False
        if self.draw.u() < REFUND_RATE:
            self.money_event(t + self.draw.between(DAY_S, 10 * DAY_S), EventType.REFUND, amount,
                             reason="requested_by_customer")  # fmt: skip
        return True

    def _during(self, paid_s: int, period_end: int) -> int | None:
        """Changes and cancellations inside a paid period; the churn time, if any."""
        d, annual = self.draw, self.plan.interval == "year"
        spike = self._spike_cancel(paid_s, period_end)
        churn_p = ANNUAL_NON_RENEWAL if annual else self.ctx.profile.churn
        churns = d.u() < churn_p
        immediate = d.u() < (0.1 if annual else IMMEDIATE_SHARE)
        cancel_s = spike if spike is not None else (
            d.between(paid_s + HOUR_S, period_end) if churns and immediate else None
        )  # fmt: skip
        change_p = CHANGE_RATE * (3 if annual else 1)
        if d.u() < change_p:
            change_s = d.between(paid_s + HOUR_S, period_end - HOUR_S)
            if cancel_s is None or change_s < cancel_s:
                self._change(change_s)
        if cancel_s is not None:
            return self._cancel(cancel_s, paid_s, period_end, immediate=True)
        if churns:
            return self._cancel(period_end, paid_s, period_end, immediate=False)
        return None

    def _spike_cancel(self, paid_s: int, period_end: int) -> int | None:
        """During the churn spike, extra immediate cancellations: about 5x the usual rate."""
        spike = self.ctx.churn_spike
        if spike is None:
            return None
        low, high = max(spike.start_s, paid_s + 60), min(spike.end_s, period_end)
        if low >= high:
            return None
        days = (high - low) / DAY_S
        extra = (CHURN_SPIKE_FACTOR - 1) * self.ctx.daily_churn * days
        return self.draw.between(low, high) if self.draw.u() < extra else None

    def _change(self, t: int) -> None:
        """Upgrade or downgrade: seats on seat-based products, else the tier."""
        d = self.draw
        up = d.u() < UPGRADE_SHARE
        if self.ctx.product.seat_based and d.u() < 0.7:
            step = 1 + int(d.u() * 3)
            self.quantity = max(1, self.quantity + (step if up else -step))
        else:
            tier = TIERS.index(self.plan.tier) + (1 if up else -1)
            tier = min(max(tier, 0), len(TIERS) - 1)
            self.plan = self.ctx.product.plan(TIERS[tier], self.plan.interval)
        new = self._list_mrr()
        if new != self.mrr:
            self.subscription_event(t, EventType.SUBSCRIPTION_CHANGED, new,
                                    direction="upgrade" if new > self.mrr else "downgrade")  # fmt: skip

    def _cancel(self, t: int, paid_s: int, period_end: int, *, immediate: bool) -> int | None:
        refund = 0
        if immediate and self.draw.u() < REFUND_ON_IMMEDIATE:
            unused = (period_end - t) / max(period_end - paid_s, 1)
            refund = max(1, int(self.plan.price_minor * self.quantity * unused))
        if not self.subscription_event(t, EventType.SUBSCRIPTION_CANCELLED, 0,
                                       reason="voluntary", at_period_end=not immediate):  # fmt: skip
            return None
        if refund:
            self.money_event(t + self.draw.between(60, 2 * DAY_S), EventType.REFUND, refund,
                             reason="prorated_cancellation")  # fmt: skip
        return t

    # -- emitting ------------------------------------------------------------------------

    def _initial_seats(self) -> int:
        if not self.ctx.product.seat_based:
            return 1
        return 1 + int(self.draw.u() ** 3 * 12)

    def _list_mrr(self) -> int:
        return self.plan.mrr_minor * self.quantity

    def subscription_event(self, t: int, etype: EventType, mrr_after: int, **extra: object) -> bool:
        """Move this subscription's MRR to ``mrr_after``; False (nothing kept) past the end."""
        if t >= self.ctx.end_s:
            return False
        before, self.mrr = self.mrr, mrr_after
        self.emit(t, etype, mrr_after - before, before, mrr_after, extra)
        return True

    def money_event(self, t: int, etype: EventType, amount: int, **extra: object) -> bool:
        if t >= self.ctx.end_s:
            return False
        self.emit(t, etype, amount, None, None, extra)
        return True

    def emit(
        self,
        t: int,
        etype: EventType,
        value: int,
        before: int | None,
        after: int | None,
        extra: dict[str, object],
    ) -> None:
        self.seq += 1
        meta = {
            "subscription": f"sub_{self.name[4:]}_{self.sub_no}",
            "interval": self.plan.interval,
            "quantity": self.quantity,
            **extra,
        }
        source_id = f"{self.subject}:{self.seq:04d}"
        self.rows.append((t, CODE[etype], value, before, after, self.plan.id,
                          metadata_json(meta), source_id))  # fmt: skip


def metadata_json(meta: dict[str, object]) -> str:
    """``json.dumps(meta, sort_keys=True)`` for the flat, plain values used here, faster
    (it runs for every subscription and payment event); anything else goes to json."""
    parts = []
    for key in sorted(meta):
        value = meta[key]
        if isinstance(value, bool):
            text = "true" if value else "false"
        elif isinstance(value, int):
            text = str(value)
        elif isinstance(value, str) and value.isidentifier():
            text = f'"{value}"'
        else:
            text = json.dumps(value)
        parts.append(f'"{key}": {text}')
    return "{" + ", ".join(parts) + "}"


def customers_block(
    ctx: ProductContext, first_number: int, acquired_s: np.ndarray, opening_s: int | None = None
) -> Block:
    """All events of the customers acquired at these times (numbered from ``first_number``).

    With ``opening_s``, the customers were acquired before the range: their lives are
    simulated from the start, but what happened before ``opening_s`` is replaced by one
    opening event (see ``opening_rows``).
    """
    rows: list[Row] = []
    subjects: list[str] = []
    for offset, t in enumerate(acquired_s.tolist()):
        customer = _Customer(ctx, first_number + offset, int(t))
        customer.live()
        mine = customer.rows if opening_s is None else opening_rows(customer, opening_s)
        rows.extend(mine)
        subjects.extend([customer.subject] * len(mine))
    return _rows_block(ctx, rows, subjects)


OPENING_LEAD_S = DAY_S  # the opening base is dated this long before the range starts


def opening_rows(customer: _Customer, opening_s: int) -> list[Row]:
    """A pre-existing customer's events from ``opening_s`` on, led by its opening state.

    The ledger must hold whole MRR chains (metrics sum ``value`` per customer from 0), so a
    customer who was paying (or trialing) when the data starts gets one opening event with
    its state at that moment: ``subscription_started`` 0 -> its MRR (``trial_started`` for
    a trial), marked ``"opening": true``, dated ``OPENING_LEAD_S`` before the start so the
    first reported month's MRR opens with it rather than counting it as new.
    """
    later = [r for r in customer.rows if r[0] > opening_s]
    subs = [r for r in customer.rows if r[0] <= opening_s and r[1] in _SUBSCRIPTION_CODES]
    if not subs:
        return later
    ts, code, _value, _before, after, plan, meta_json, _sid = subs[-1]
    trialing = code == CODE[EventType.TRIAL_STARTED] and ts + TRIAL_DAYS * DAY_S > opening_s
    if not (after or trialing):
        return later
    meta = {k: v for k, v in json.loads(meta_json).items() if k in _OPENING_KEYS}
    meta["opening"] = True
    opening_code = code if trialing else CODE[EventType.SUBSCRIPTION_STARTED]
    # Dated one day before the range, so the first reported month opens with this base as
    # its starting MRR instead of booking it as new MRR (the day before is a partial month).
    opening: Row = (opening_s - OPENING_LEAD_S, opening_code, after or 0, 0, after, plan,
                    metadata_json(meta), f"{customer.subject}:open")  # fmt: skip
    return [opening, *later]


def _rows_block(ctx: ProductContext, rows: list[Row], subjects: list[str]) -> Block:
    n = len(rows)
    scale = 10.0 ** MINOR_UNITS[ctx.product.currency]
    if n == 0:
        return empty()
    ts, code, value, before, after, plan, meta, source_id = zip(*rows, strict=True)
    return Block(
        ts=np.array(ts, dtype=np.int64) * 1_000_000,
        product=np.full(n, ctx.index, dtype=np.int16),
        type=np.array(code, dtype=np.int8),
        value=np.array(value, dtype=np.float64) / scale,
        mrr_before=np.array([np.nan if b is None else b for b in before]) / scale,
        mrr_after=np.array([np.nan if a is None else a for a in after]) / scale,
        subject=strings(subjects),
        source_id=strings(list(source_id)),
        plan=strings(list(plan)),
        channel=nulls(n),
        metadata=strings(list(meta)),
    )
