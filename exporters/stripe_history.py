"""A subscription's past, rebuilt from its invoices: the snapshots webhooks would have shown.

The list endpoints hold each subscription's *current* state; its invoices hold what was
billed, period by period: every subscription line item has the ``period``, ``price``,
``quantity`` and discounts of one service period, and proration line items carry the
moment (their ``period.start``) and the new price/quantity of a mid-period change. This
module turns one subscription object plus its invoices into the chronological list of
subscription snapshots (plain dicts in the subscription's own shape) that Stripe's
``customer.subscription.*`` events would have carried, so the one mapping
(``stripe_mapping.subscription_transition``) turns them into the same lifecycle events,
with the same fact-derived ids, as the webhook path does.

What invoices cannot tell is rebuilt from the best evidence and recorded as an
``Assumption`` (a reason code and a sentence) on the subscription's ``Rebuild``:

- ``unprorated_change``: a period billed at a different MRR than the previous period plus
  its prorations explain (a change made without proration, a coupon added between
  invoices): dated at that period's start.
- ``pause``: voided cycle invoices (``pause_collection`` with ``behavior: void``) say a
  subscription was paused; it is dated paused from the first voided period's start and
  resumed at the next billed period's start (the real moments are not on any invoice).
- ``changed_after_last_invoice``: the current object differs from what the invoices
  rebuilt (a change with no proration and no invoice before it ended, pending
  prorations never invoiced): applied at its end, or at the backfill's time if alive.
- ``unpaid``: the subscription is ``unpaid`` now (payment retries exhausted); the moment
  it became so is on no invoice: MRR 0 from the backfill's time.
- ``invoice_gap``: billed periods that do not follow each other (a deleted invoice).
- ``discount_unresolved``: a line's discount id without its discount object.

``rebuilt`` is False when there is no invoice evidence at all (no subscription line): the
snapshots are then the current state only, as a plain list backfill would see it.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from exporters.stripe_mapping import MappingError, ident, subscription_mrr

BILLED = frozenset({"open", "paid", "uncollectible"})  # finalized and not voided


@dataclass(frozen=True)
class Assumption:
    """One thing the invoices could not prove, and what the rebuild did instead."""

    reason: str  # low-cardinality code (module docstring)
    detail: str  # one sentence naming the subscription, invoice and time


@dataclass
class Rebuild:
    """The snapshots of one subscription, oldest first, and what had to be assumed."""

    subscription: str
    snapshots: list[tuple[int, dict[str, Any]]] = field(default_factory=list)
    assumptions: list[Assumption] = field(default_factory=list)
    rebuilt: bool = True  # False: no invoice evidence, current state only

    @property
    def outcome(self) -> str:
        """``exact``, ``assumed`` (rebuilt with assumptions) or ``current_only``."""
        if not self.rebuilt:
            return "current_only"
        return "assumed" if self.assumptions else "exact"

    def assume(self, reason: str, detail: str) -> None:
        self.assumptions.append(Assumption(reason, detail))


# -- reading line items (both the pinned API version's shape and the legacy one) -----------


def _details(line: Mapping[str, Any]) -> Mapping[str, Any]:
    parent = line.get("parent")
    if isinstance(parent, Mapping):
        kind = parent.get("type")
        found = parent.get(kind) if isinstance(kind, str) else None
        if isinstance(found, Mapping):
            return found
    return {}


def line_subscription(line: Mapping[str, Any]) -> str | None:
    return ident(_details(line).get("subscription")) or ident(line.get("subscription"))


def line_item_id(line: Mapping[str, Any]) -> str | None:
    """The subscription item the line bills (``si_...``); None for one-off invoice items."""
    details = _details(line)
    if "subscription_item" in details:
        return ident(details.get("subscription_item"))
    if line.get("parent") is not None:
        return None
    return ident(line.get("subscription_item"))


def line_proration(line: Mapping[str, Any]) -> bool:
    details = _details(line)
    if "proration" in details:
        return bool(details["proration"])
    return bool(line.get("proration"))


def line_price(line: Mapping[str, Any]) -> Any:
    """The line's price: an id or the object (``pricing.price_details`` or legacy ``price``)."""
    pricing = line.get("pricing")
    if isinstance(pricing, Mapping) and isinstance(pricing.get("price_details"), Mapping):
        return pricing["price_details"].get("price")
    return line.get("price") or line.get("plan")


def line_is_credit(line: Mapping[str, Any]) -> bool:
    """A proration's credit for the old price/quantity ("Unused time on ...").

    Stripe links it to the line it credits (``proration_details.credited_items``); the
    amount is negative, or 0 for a change in the period's last seconds.
    """
    details = _details(line).get("proration_details")
    if isinstance(details, Mapping) and details.get("credited_items"):
        return True
    return int(line.get("amount") or 0) < 0


def is_subscription_line(line: Mapping[str, Any]) -> bool:
    """A line that bills a subscription item (a period or a proration of one)."""
    parent = line.get("parent")
    if isinstance(parent, Mapping):
        return parent.get("type") == "subscription_item_details" or (
            parent.get("type") == "invoice_item_details" and line_proration(line)
            and line_item_id(line) is not None
        )  # fmt: skip
    return line.get("type") == "subscription" or bool(line.get("proration"))


def pending_item_line(item: Mapping[str, Any]) -> dict[str, Any] | None:
    """A pending (not yet invoiced) proration invoice item, in a line item's shape.

    A change made with proration leaves its two proration items pending until the next
    invoice; if the subscription ended (or the backfill runs) before that invoice, these
    items are the only record of the change and of its moment (``period.start``).
    """
    if item.get("invoice") is not None or not item.get("proration"):
        return None
    parent = item.get("parent")
    details = parent.get("subscription_details") if isinstance(parent, Mapping) else None
    sub = ident(details.get("subscription")) if isinstance(details, Mapping) else None
    sub = sub or ident(item.get("subscription"))
    if not sub:
        return None
    si = (ident(details.get("subscription_item")) if isinstance(details, Mapping) else None) \
        or ident(item.get("subscription_item"))  # fmt: skip
    return {
        "id": item.get("id"),
        "object": "line_item",
        "amount": item.get("amount"),
        "currency": item.get("currency"),
        "period": item.get("period"),
        "quantity": item.get("quantity"),
        "discounts": item.get("discounts") or [],
        "discount_amounts": [],
        "pricing": item.get("pricing"),
        "price": item.get("price"),
        "parent": {"type": "subscription_item_details", "subscription_item_details": {
            "invoice_item": item.get("id"), "proration": True, "subscription": sub,
            "subscription_item": si, "proration_details": {"credited_items": None}}},
    }  # fmt: skip


def pending_invoice(sub_id: str, items: Iterable[Mapping[str, Any]]) -> dict[str, Any] | None:
    """The pending proration items of one subscription as one pseudo-invoice (or None)."""
    lines = [line for item in items if (line := pending_item_line(item)) is not None
             and line_subscription(line) == sub_id]  # fmt: skip
    if not lines:
        return None
    return {"id": f"pending:{sub_id}", "status": "open", "lines": {"data": lines},
            "discounts": [], "created": min(int((x["period"] or {}).get("start") or 0)
                                            for x in lines)}  # fmt: skip


# -- the rebuild ----------------------------------------------------------------------------

PriceLookup = Callable[[str], Mapping[str, Any]]


@dataclass
class _Group:
    """The subscription lines of one invoice that start at one moment."""

    at: int
    end: int
    proration: bool
    void: bool
    invoice: str
    lines: list[Mapping[str, Any]]
    discounts: list[Any]


@dataclass
class _State:
    items: dict[str, dict[str, Any]] = field(default_factory=dict)  # si_ -> item
    discounts: list[Any] = field(default_factory=list)
    paused: bool = False


def _groups(sub_id: str, invoices: Iterable[Mapping[str, Any]],
            discount_objects: Mapping[str, Any]) -> list[_Group]:  # fmt: skip
    out: dict[tuple[str, int, bool], _Group] = {}
    for invoice in invoices:
        status = invoice.get("status")
        if status not in BILLED and status != "void":
            continue  # drafts are not facts yet
        lines = (invoice.get("lines") or {}).get("data") or []
        for line in lines:
            if line_subscription(line) not in (sub_id, None) or not is_subscription_line(line):
                continue
            if line_subscription(line) is None and ident(invoice.get("subscription")) != sub_id:
                continue
            period = line.get("period") or {}
            start, end = int(period.get("start") or 0), int(period.get("end") or 0)
            prorated = line_proration(line)
            key = (str(invoice.get("id")), start, prorated)
            if key not in out:
                out[key] = _Group(start, end, prorated, status == "void", key[0], [], [])
            group = out[key]
            group.lines.append(line)
            for d in line.get("discounts") or []:
                obj = discount_objects.get(ident(d) or "", d)
                if all(ident(x) != ident(obj) for x in group.discounts):
                    group.discounts.append(obj)
    # prorations before the cycle that starts at the same second: the cycle is the truth
    return sorted(out.values(), key=lambda g: (g.at, not g.proration, g.invoice))


def _item(sub_id: str, si: str, price: Mapping[str, Any], quantity: int) -> dict[str, Any]:
    return {"object": "subscription_item", "id": si, "subscription": sub_id,
            "price": dict(price), "quantity": quantity, "discounts": []}  # fmt: skip


def _snapshot(sub: Mapping[str, Any], state: _State, at: int) -> dict[str, Any]:
    """The subscription as its webhook would have shown it at ``at``."""
    snap = dict(sub)  # shallow: snapshots are read, never written, by the mapping
    items = [dict(i) for _, i in sorted(state.items.items())]
    for item in items:
        mine = [d for d in state.discounts if isinstance(d, Mapping)
                and ident(d.get("subscription_item")) == item["id"]]  # fmt: skip
        item["discounts"] = mine
    snap["items"] = {"object": "list", "data": items, "has_more": False,
                     "url": f"/v1/subscription_items?subscription={sub.get('id')}"}  # fmt: skip
    snap["discounts"] = [d for d in state.discounts
                         if not (isinstance(d, Mapping) and d.get("subscription_item"))]
    snap.pop("discount", None)
    trial_start, trial_end = sub.get("trial_start"), sub.get("trial_end")
    trialing = (isinstance(trial_start, int) and isinstance(trial_end, int)
                and trial_start <= at < trial_end)  # fmt: skip
    snap["status"] = "trialing" if trialing else "active"
    snap["pause_collection"] = {"behavior": "void", "resumes_at": None} if state.paused else None
    snap["canceled_at"] = snap["ended_at"] = None
    snap["cancel_at_period_end"] = False
    return snap


def _differs(state: _State, credit: Mapping[str, Any], price: PriceLookup) -> bool:
    """Whether a proration credit bills other than what the rebuilt state holds."""
    key = line_item_id(credit) or (next(iter(state.items)) if len(state.items) == 1 else None)
    item = state.items.get(str(key))
    if item is None:
        return True
    raw = line_price(credit)
    price_id = ident(raw) if not isinstance(raw, Mapping) else raw.get("id")
    quantity = credit.get("quantity")
    return price_id != item["price"].get("id") or int(
        quantity if quantity is not None else 1
    ) != int(item["quantity"])


def _mrr(snapshot: Mapping[str, Any], at: int) -> Decimal:
    """What the snapshot is worth while paying (status ignored), at ``at``."""
    return subscription_mrr(snapshot, at=at).gross


def rebuild_subscription(
    sub: Mapping[str, Any],
    invoices: Iterable[Mapping[str, Any]],
    price: PriceLookup,
    *,
    discounts: Mapping[str, Any] | None = None,
    now: int,
) -> Rebuild:
    """The snapshots of ``sub`` from its invoices (each with its lines) and current state.

    ``price`` resolves a price id to the price object (the lines carry only the id);
    ``discounts`` resolves discount ids to discount objects (the invoices' expanded
    ``discounts``). ``now`` is when the current state was read.
    """
    sub_id = str(sub.get("id"))
    result = Rebuild(sub_id)
    invoices = list(invoices)
    catalogue = dict(discounts or {})
    for invoice in invoices:  # expanded (``expand[]=data.discounts``): id -> object
        for d in invoice.get("discounts") or []:
            if isinstance(d, Mapping) and d.get("id"):
                catalogue.setdefault(str(d["id"]), d)
    for d in sub.get("discounts") or []:
        if isinstance(d, Mapping) and d.get("id"):
            catalogue.setdefault(str(d["id"]), d)
    groups = _groups(sub_id, invoices, catalogue)
    status = str(sub.get("status") or "")
    if status in ("incomplete", "incomplete_expired"):
        return Rebuild(sub_id, [(int(sub.get("created") or now), dict(sub))], [], True)
    if not groups:
        observed = int(sub.get("created") or now)
        if status == "canceled" and isinstance(sub.get("ended_at"), int):
            observed = int(sub["ended_at"])
        result.snapshots.append((observed, dict(sub)))
        result.rebuilt = False
        return result

    state = _State()
    start = int(sub.get("start_date") or sub.get("created") or groups[0].at)
    created = int(sub.get("created") or start)
    last_end: int | None = None
    first = True
    unresolved_noted = False

    def item_key(line: Mapping[str, Any]) -> str:
        """The line's subscription item; a lone item when the line does not say which."""
        found = line_item_id(line)
        if found:
            return found
        return next(iter(state.items)) if len(state.items) == 1 else f"si_{sub_id}"

    def items_of(group: _Group) -> dict[str, dict[str, Any]]:
        out: dict[str, dict[str, Any]] = {}
        for line in group.lines:
            if line_proration(line) and line_is_credit(line):
                continue  # the credit for the old item: its replacement is the debit line
            si = item_key(line)
            raw = line_price(line)
            obj = raw if isinstance(raw, Mapping) else price(str(ident(raw)))
            quantity = line.get("quantity")
            out[si] = _item(sub_id, si, obj, int(quantity if quantity is not None else 1))
        return out

    def emit(at: int) -> None:
        snap = _snapshot(sub, state, at)
        if result.snapshots and result.snapshots[-1][0] == at:
            result.snapshots[-1] = (at, snap)  # the later evidence of the same second wins
        else:
            result.snapshots.append((at, snap))

    def discount_ends(until: int) -> None:
        """Snapshots at the end of repeating discounts: the MRR steps up then, exactly."""
        after = result.snapshots[-1][0] if result.snapshots else start
        ends = sorted({int(d["end"]) for d in state.discounts
                       if isinstance(d, Mapping) and isinstance(d.get("end"), int)
                       and after < int(d["end"]) < until})  # fmt: skip
        for end in ends:
            emit(end)

    for group in groups:
        discount_ends(group.at)
        if any(isinstance(d, str) for d in group.discounts) and not unresolved_noted:
            result.assume("discount_unresolved",
                          f"{sub_id}: invoice {group.invoice} names a discount that could not "
                          "be read; its MRR is counted without it")  # fmt: skip
            unresolved_noted = True
        if group.proration:
            new_items = items_of(group)
            credits = [x for x in group.lines if line_is_credit(x)]
            if not first and any(_differs(state, x, price) for x in credits):
                result.assume("unprorated_change",
                              f"{sub_id}: the proration at {group.at} (invoice "
                              f"{group.invoice}) credits a price or quantity the invoices "
                              "before do not show; the change before it is undated")  # fmt: skip
            credited = {item_key(x) for x in credits}
            for si in credited - set(new_items):
                state.items.pop(str(si), None)  # removed item: credited, not replaced
            state.items.update(new_items)
            emit(max(group.at, created))
            continue
        billed = items_of(group)
        at = max(group.at, created) if first else group.at
        if group.void:
            if not state.paused and not first:
                result.assume("pause", f"{sub_id}: invoice {group.invoice} was voided; taken "
                              f"as paused from its period start {group.at} (the moment the "
                              "pause was set is on no invoice)")  # fmt: skip
            state.items, state.discounts, state.paused = billed, list(group.discounts), True
            if not first:
                emit(at)
        else:
            if not first:
                before = _mrr(_snapshot(sub, state, at), at)
                next_state = _State(billed, list(group.discounts), False)
                after = _mrr(_snapshot(sub, next_state, at), at)
                if state.paused:
                    result.assume("pause", f"{sub_id}: billed again from {group.at} (invoice "
                                  f"{group.invoice}); taken as resumed then")  # fmt: skip
                elif before != after:
                    result.assume("unprorated_change",
                                  f"{sub_id}: invoice {group.invoice} bills {after} a month "
                                  f"from {group.at}, the invoices before explain {before}; "
                                  "dated at that period's start")  # fmt: skip
                if last_end is not None and group.at > last_end:
                    result.assume("invoice_gap", f"{sub_id}: nothing billed between "
                                  f"{last_end} and {group.at} (an invoice deleted?)")
            state.items, state.discounts, state.paused = billed, list(group.discounts), False
            emit(at)
        if first:
            first = False
            if not group.void and result.snapshots and result.snapshots[0][0] != start:
                result.snapshots[0] = (start, result.snapshots[0][1])
        last_end = max(last_end or group.end, group.end)

    _finish(sub, state, result, now, start)
    return result


def _finish(sub: Mapping[str, Any], state: _State, result: Rebuild, now: int, start: int) -> None:
    """Reconcile the rebuilt state with the current object; end it if it ended."""
    sub_id = result.subscription
    status = str(sub.get("status") or "")
    ended = sub.get("ended_at") or sub.get("canceled_at")
    end = int(ended) if status == "canceled" and isinstance(ended, int) else None
    at = end if end is not None else now
    last = result.snapshots[-1][0] if result.snapshots else start
    # discounts that ran out after the last invoice, before the end (or now)
    ends = sorted({int(d["end"]) for d in state.discounts
                   if isinstance(d, Mapping) and isinstance(d.get("end"), int)
                   and last < int(d["end"]) < at})  # fmt: skip
    for moment in ends:
        result.snapshots.append((moment, _snapshot(sub, state, moment)))
    current = dict(sub)
    try:
        current_mrr = _mrr(current, at)
    except MappingError:
        current_mrr = None
    rebuilt_mrr = _mrr(_snapshot(sub, state, at), at)
    now_paused = bool(sub.get("pause_collection")) or status == "paused"
    if current_mrr is not None and current_mrr != rebuilt_mrr and not state.paused:
        where = "at its end" if end is not None else "at the backfill's time"
        result.assume("changed_after_last_invoice",
                      f"{sub_id}: the subscription is worth {current_mrr} a month but its "
                      f"invoices end at {rebuilt_mrr}; the change is applied {where}")
        live = copy.deepcopy(current)
        live.update(status="active" if end is not None else status, canceled_at=None,
                    ended_at=None)  # fmt: skip
        if end is not None:
            live["pause_collection"] = None
        result.snapshots.append((at if end is None else max(at - 1, last), live))
    if end is not None:
        result.snapshots.append((end, current))
    elif status == "unpaid":  # dunning gave up: no MRR now, since an unknown moment
        result.assume("unpaid", f"{sub_id}: unpaid now; its MRR is taken as 0 from the "
                      "backfill's time")  # fmt: skip
        result.snapshots.append((now, current))
    elif now_paused and not state.paused:
        result.assume("pause", f"{sub_id}: paused now, after its last invoice; taken as "
                      "paused at the backfill's time")  # fmt: skip
        result.snapshots.append((now, current))
    elif state.paused and not now_paused:
        result.assume("pause", f"{sub_id}: its last invoice was voided but it is not paused "
                      "now; taken as resumed at the backfill's time")  # fmt: skip
        result.snapshots.append((now, current))
    result.snapshots.sort(key=lambda pair: pair[0])
