"""MRR from subscription state, and its movements (new, expansion, contraction, churn,
reactivation, FX impact).

Why it is built this way:

* **State, not sums of deltas.** Each subscription's MRR is the ``mrr_after`` of its latest
  event (subscription id from ``metadata.subscription``). A lost or duplicated delta
  therefore cannot drift the total: the next event of the subscription restates it.
  Events without a subscription id fall back to their own ``mrr_after - mrr_before``.
  Sources have already normalised intervals, quantities and recurring discounts into ``mrr_after`` (``monthly_mrr`` below is that rule, for sources and tests),
  and trials carry 0, so a trial counts only once it converts to a paid period.
* **Per customer, netted.** Movements are classified on the customer's total MRR across
  all their subscriptions (METRICS.md), after netting changes that follow each other within
  ``movement_netting_minutes`` (a plan switch done as cancel + new subscription is one
  expansion, a churn undone within the window is nothing). Netting crosses bucket
  boundaries; a netted movement belongs to the bucket of its first change, and the stock of
  that bucket reflects the netted state, so the identity holds per day.
* **Chain order.** Same-instant events of one subscription are ordered along their MRR
  chain (``mrr_before`` = the previous ``mrr_after``), never by their hashed keys.
* **Pauses** are ``paused``/``resumed`` movements, neither churn nor reactivation; paused
  customers are counted apart from active ones.
* **Exact.** Everything is int64 micro-units. The reporting-currency stock is valued at each
  day's rate; movements are valued at the rate of the day they happen, and the difference
  that only exchange rates explain is the ``fx_impact`` column, so
  ``mrr(d) = mrr(d-1) + new + expansion + reactivation + resumed - contraction - churn
  - paused + fx_impact``
  holds exactly, per product and day (``fx_impact`` is 0 for reporting-currency products).
* **When churn lands.** At the event's timestamp: the source emits a cancel-at-period-end
  as a ``subscription_cancelled`` at the period end, so MRR stays until then.
"""

from __future__ import annotations

import logging
from collections.abc import Collection
from dataclasses import dataclass, field
from decimal import Decimal

import numpy as np
import pandas as pd

from growthwatch.events import SUBSCRIPTION_TYPES, EventType
from growthwatch.metrics._frame import (
    TIME_DTYPE,
    clean,
    empty,
    json_key,
    local_day_range,
    local_floor,
    micros,
    naive_utc,
    units,
)
from growthwatch.metrics.settings import MetricsSettings

SUB_TYPES = tuple(t.value for t in SUBSCRIPTION_TYPES)
# What the MRR functions read: subscription events, payments (a renewal starts a new
# service period, which re-sets the exchange rate a foreign-currency MRR is valued at) and
# failed payments (a churn after a failure that no payment followed is delinquent churn).
MRR_TYPES = (*SUB_TYPES, EventType.PAYMENT.value, EventType.PAYMENT_FAILED.value)
MOVEMENT_KINDS = ("new", "expansion", "contraction", "churn", "reactivation", "paused", "resumed")
# amount columns of the daily frame (int micro-units internally); paused_mrr is a stock
MONEY = ("mrr", "new", "expansion", "contraction", "churn", "reactivation", "paused", "resumed",
         "fx_impact", "paused_mrr", "churn_voluntary", "churn_delinquent")  # fmt: skip
COUNTS = ("active", "new_customers", "reactivated_customers", "churned_customers", "cancellations",
          "paused_customers", "churned_delinquent")  # fmt: skip
# Metadata that says a subscription ended for want of payment, whatever the ledger holds
# about the failures: Stripe's status ``unpaid`` (MRR 0 after the dunning retries) and its
# ``cancellation_details.reason`` ``payment_failed`` (kept as ``cancel_reason``).
_UNPAID_STATUS = "unpaid"
_DELINQUENT_REASON = "payment_failed"
# A customer's state at an instant: paying (MRR > 0), paused (MRR 0, a subscription paused)
# or none.
NONE, PAUSED, PAYING = 0, 1, 2
_PAUSE_ENDS = (EventType.SUBSCRIPTION_CANCELLED.value, EventType.SUBSCRIPTION_STARTED.value,
               EventType.TRIAL_STARTED.value)  # fmt: skip
log = logging.getLogger(__name__)

_MONTHS_PER = {"day": Decimal(12) / Decimal(365), "week": Decimal(12) / Decimal(52)}


def monthly_mrr(
    amount: Decimal,
    interval: str,
    interval_count: int = 1,
    quantity: int = 1,
    percent_off: Decimal = Decimal(0),
    amount_off: Decimal = Decimal(0),
) -> Decimal:
    """MRR of one subscription item under the METRICS.md rule (for sources and tests).

    price x quantity, less recurring discounts, normalised to a month: yearly / 12,
    quarterly (month x 3) / 3, every N months / N, weekly x 52 / 12, daily x 365 / 12.
    Rounded to 6 decimals, the ledger's precision.
    """
    total = amount * quantity
    total = total * (Decimal(100) - percent_off) / Decimal(100) - amount_off
    total = max(total, Decimal(0))
    if interval == "month":
        monthly = total / interval_count
    elif interval == "year":
        monthly = total / (12 * interval_count)
    elif interval in _MONTHS_PER:
        monthly = total / (_MONTHS_PER[interval] * interval_count)
    else:
        raise ValueError(f"unknown billing interval {interval!r}")
    return monthly.quantize(Decimal("0.000001"))


@dataclass(frozen=True)
class MrrResult:
    """Everything the subscription-based metrics need, computed once.

    ``movements``: one row per netted customer movement (time of the first change, day,
    product, customer, kind, amount in reporting-currency micro-units, whether the customer
    paid before and after). ``daily``: per product and day, the stock and movement sums
    (micro-units) and customer counts, for every day from the product's first subscription
    event to ``until``. ``changes``: per subscription event, the native MRR change per
    currency (for revenue cohorts).
    """

    movements: pd.DataFrame
    daily: pd.DataFrame
    changes: pd.DataFrame
    # netting groups of more than one event (product, start, end): an event that arrives
    # late can join one, which moves that movement to the group's start.
    netted: pd.DataFrame = field(default_factory=lambda: _empty_netted())
    chain_breaks: int = 0  # events whose mrr_before is not their subscription's last state
    # the same per product (only products with some), for totals kept per product
    breaks_by_product: dict[str, int] = field(default_factory=dict)

    def with_products_from(self, other: MrrResult, products: Collection[str]) -> MrrResult:
        """This result with the rows of ``products`` taken from ``other`` instead.

        Every row of every frame belongs to one product, and ``compute_mrr`` treats
        products independently (customers, subscriptions and netting are per product), so
        ``compute_mrr`` over all events equals this merge of ``compute_mrr`` over the
        events of ``products`` into the result for the rest. That is what lets a live
        update recompute one product's subscription history instead of the portfolio's.
        Within a product the rows keep their order, which is all the period and cohort
        aggregations depend on; products stay sorted in ``daily`` as ``_daily`` makes it.
        """
        chosen = list(products)

        def merged(mine: pd.DataFrame, theirs: pd.DataFrame) -> pd.DataFrame:
            kept = mine[~mine["product"].isin(chosen)]
            if theirs.empty:
                return kept.reset_index(drop=True)
            return pd.concat([kept, theirs], ignore_index=True)

        daily = merged(self.daily, other.daily).sort_values("product", kind="stable")
        return MrrResult(
            merged(self.movements, other.movements),
            daily.reset_index(drop=True),
            merged(self.changes, other.changes),
            merged(self.netted, other.netted),
            self.chain_breaks + other.chain_breaks,
        )


def _sub_events(events: pd.DataFrame) -> pd.DataFrame:
    return clean(events, SUB_TYPES)


def compute_mrr(
    events: pd.DataFrame, settings: MetricsSettings, until: pd.Timestamp | None = None
) -> MrrResult:
    """MRR state, netted movements and daily series from an event frame."""
    g = _netted_groups(events, settings)
    if g is None:
        return MrrResult(_empty_movements(), _empty_daily(), _empty_changes())
    sub, ts, tz = g.sub, g.ts, settings.timezone
    first_idx, last_idx, kind, amount = g.first_idx, g.last_idx, g.kind, g.amount
    was, up, g_b, g_a = g.g_b == PAYING, g.g_a == PAYING, g.g_b, g.g_a
    g_time = ts.iloc[first_idx].reset_index(drop=True)
    movements = pd.DataFrame(
        {
            "time": g_time,
            "day": local_floor(g_time, "D", tz),
            "product": sub["product"].iloc[first_idx].to_numpy(),
            "customer": sub["subject"].iloc[first_idx].to_numpy(),
            "kind": kind,
            "amount": amount,
            "paid_before": was,
            "paid_after": up,
            "active_delta": up.astype("int64") - was.astype("int64"),
            "paused_delta": (g_a == PAUSED).astype("int64") - (g_b == PAUSED).astype("int64"),
            "paused_mrr_delta": g.paused_mrr_delta.astype("int64"),
            "delinquent": g.delinquent,
        }
    )
    movements = movements[movements["kind"] != ""].sort_values(
        ["time", "product", "customer"], kind="stable"
    )
    movements = movements.reset_index(drop=True)
    # Every change of a netted group is dated at the group's first change, so cohorts and
    # trailing-12-month retention agree with mrr_daily.
    n = len(sub)
    sorted_ts = naive_utc(ts)
    group_time = np.empty(n, dtype="datetime64[us]")
    group_time[g.by_customer] = sorted_ts[first_idx][g.gid_sorted]
    changes = _changes(sub, g.move_rc, g.revaluations, group_time)
    multi = np.bincount(g.gid_sorted) > 1
    netted = pd.DataFrame(
        {
            "product": sub["product"].to_numpy()[first_idx[multi]],
            "start": pd.Series(sorted_ts[first_idx[multi]]).dt.tz_localize("UTC"),
            "end": pd.Series(sorted_ts[last_idx[multi]]).dt.tz_localize("UTC"),
        }
    )
    cancels = sub[sub["type"] == EventType.SUBSCRIPTION_CANCELLED.value]
    first_day = local_floor(sub["ts"], "D", tz).groupby(sub["product"]).min()
    daily = _daily(movements, g.revaluations, cancels, first_day, until, tz)
    return MrrResult(movements, daily, changes, netted, g.breaks, g.breaks_by_product)


@dataclass(frozen=True)
class _Groups:
    """The netting groups of a frame's subscription events, before any aggregation.

    ``sub`` is the subscription events in chain order; per event: its subscription id,
    customer code, native state change and the customer's native state after it, its
    reporting-currency change; per group (one customer's consecutive events within the
    netting window, in customer then ledger order): first and last event, state before
    and after, signed reporting-currency change and movement kind ("" for none). Both
    ``compute_mrr`` and ``customer_movements`` are built on it, so the drill-down lists
    exactly the movements the series add up.
    """

    sub: pd.DataFrame
    ts: pd.Series
    sid: pd.Series
    ckey: np.ndarray
    state_delta: np.ndarray
    state_after: np.ndarray
    move_rc: np.ndarray
    revaluations: pd.DataFrame
    by_customer: np.ndarray  # event positions in (customer, ledger) order
    starts: np.ndarray  # in that order: True where a group starts
    gid_sorted: np.ndarray  # in that order: the group number
    first_idx: np.ndarray
    last_idx: np.ndarray
    g_b: np.ndarray
    g_a: np.ndarray
    delta: np.ndarray
    kind: np.ndarray
    amount: np.ndarray
    paused_mrr_delta: np.ndarray
    delinquent: np.ndarray  # per group: a churn caused by failed payments
    breaks: int
    # per event: the reporting-currency value of its subscription just before it (what a
    # segment change of that subscription moves from one segment to another)
    before_rc: np.ndarray
    breaks_by_product: dict[str, int] = field(default_factory=dict)


def _netted_groups(events: pd.DataFrame, settings: MetricsSettings) -> _Groups | None:
    """Chain order, valuation, pause states and netting groups (None: no subscription
    events)."""
    sub = _sub_events(events)
    if sub.empty:
        return None
    sid = json_key(sub["metadata"], "subscription")
    skey = _group_codes(sub[["product", "subject"]].assign(sid=sid.fillna("").to_numpy()))
    # Ledger order is (time, key); the key is a hash, so same-second events of one
    # subscription are re-ordered along their MRR chain (keys stay with the positions, so
    # every later sort by (time, key) keeps the chain order).
    keys = sub["idempotency_key"].astype(object).to_numpy()
    perm, broken = _chain_order(sub, skey)
    if perm is not None:
        sub = sub.iloc[perm].reset_index(drop=True)
        sid = sid.iloc[perm].reset_index(drop=True)
        skey = skey[perm]
    breaks = int(broken.sum())
    by_product: dict[str, int] = {}
    if breaks:
        log.warning("%d subscription event(s) whose mrr_before is not the previous mrr_after: "
                    "the latest observation's mrr_after is taken as the state", breaks)  # fmt: skip
        counted = pd.Series(broken).groupby(sub["product"].astype(object).to_numpy()).sum()
        by_product = {str(k): int(v) for k, v in counted.items() if v}
    n = len(sub)
    has_sid = sid.notna().to_numpy()
    ckey = _group_codes(sub[["product", "subject"]])
    after = micros(sub["mrr_after"])
    order = np.arange(n)
    # With a subscription id: the change is from that subscription's previous state. Without
    # one (a source that cannot tell a customer's subscriptions apart), the event's own
    # mrr_before is all we know, so its change is taken as given.
    prev = pd.Series(after).groupby(skey, sort=False).shift(1)
    prev_micro = prev.fillna(0).to_numpy().astype("int64")
    prev_micro = np.where(has_sid, prev_micro, micros(sub["mrr_before"]))
    ts = sub["ts"]
    move_rc, revaluations, before_rc = _valued(sub, sid, after, prev_micro, events, settings,
                                               keys)
    # Paying = the sum of the customer's subscription states (each >= 0) is above zero; the
    # sum telescopes, so currencies need no conversion for this test.
    state_delta = after - prev_micro
    state_after = pd.Series(state_delta).groupby(ckey, sort=False).cumsum().to_numpy()
    # Paused: a subscription whose last pause is not yet followed by MRR, a (re)start or a
    # cancellation. A customer with MRR 0 and a paused subscription is paused, not churned.
    etype = sub["type"].to_numpy()
    is_pause = etype == EventType.SUBSCRIPTION_PAUSED.value
    ends_pause = ~is_pause & ((after > 0) | np.isin(etype, _PAUSE_ENDS))
    status = pd.Series(np.where(is_pause, 1.0, np.where(ends_pause, 0.0, np.nan)))
    flag = status.groupby(skey, sort=False).ffill().fillna(0).to_numpy().astype("int64")
    flag_delta = flag - pd.Series(flag).groupby(skey, sort=False).shift(1, fill_value=0).to_numpy()
    paused_after = pd.Series(flag_delta).groupby(ckey, sort=False).cumsum().to_numpy()
    s_after = np.where(state_after > 0, PAYING, np.where(paused_after > 0, PAUSED, NONE))
    s_before = np.where(state_after - state_delta > 0, PAYING,
                        np.where(paused_after - flag_delta > 0, PAUSED, NONE))  # fmt: skip

    # Netting groups: per customer, consecutive events within the window, across bucket
    # boundaries (a group belongs to the bucket of its first change).
    by_customer = np.lexsort((order, ckey))
    c_sorted = ckey[by_customer]
    t_sorted = ts.dt.tz_localize(None).to_numpy()[by_customer]
    window = np.timedelta64(int(settings.movement_netting_minutes) * 60_000_000, "us")
    starts = np.ones(n, dtype=bool)
    if n > 1:
        same_c = c_sorted[1:] == c_sorted[:-1]
        close = (t_sorted[1:] - t_sorted[:-1]) <= window
        starts[1:] = ~(same_c & close)
    gid_sorted = np.cumsum(starts) - 1
    first_idx = by_customer[starts]
    last_mask = np.ones(n, dtype=bool)
    last_mask[:-1] = starts[1:]
    last_idx = by_customer[last_mask]
    delta = np.bincount(gid_sorted, weights=move_rc[by_customer]).round().astype("int64")
    g_b = s_before[first_idx]
    g_a = s_after[last_idx]
    g_customer = ckey[first_idx]
    ever = pd.Series(g_a == PAYING).groupby(g_customer, sort=False).cummax()
    ever_before = ever.groupby(g_customer).shift(1).fillna(False).to_numpy(dtype=bool)
    kind = np.full(len(first_idx), "", dtype=object)
    up, was = g_a == PAYING, g_b == PAYING
    kind[(g_b == NONE) & up & ~ever_before] = "new"
    kind[(g_b == NONE) & up & ever_before] = "reactivation"
    kind[(g_b == PAUSED) & up] = "resumed"
    kind[(g_b != NONE) & (g_a == NONE)] = "churn"  # a paused customer who cancels: churn 0
    kind[(g_b != PAUSED) & (g_a == PAUSED)] = "paused"
    kind[was & up & (delta > 0)] = "expansion"
    kind[was & up & (delta < 0)] = "contraction"
    amount = np.abs(delta)
    # Paused MRR outstanding: a pause adds what the customer paid; leaving the paused state
    # (resume, cancellation) removes what that pause added.
    is_paused_kind = kind == "paused"
    held = pd.Series(np.where(is_paused_kind, amount, np.nan)).groupby(g_customer, sort=False)
    outstanding = held.ffill().fillna(0).to_numpy().astype("int64")
    leaving = (g_b == PAUSED) & (g_a != PAUSED)
    paused_mrr_delta = np.where(is_paused_kind, amount, np.where(leaving, -outstanding, 0))
    delinquent = (kind == "churn") & _delinquent(sub, events, by_customer, gid_sorted, last_idx)
    return _Groups(sub, ts, sid, ckey, state_delta, state_after, move_rc, revaluations,
                   by_customer, starts, gid_sorted, first_idx, last_idx, g_b, g_a, delta,
                   kind, amount, paused_mrr_delta, delinquent, breaks, before_rc,
                   by_product)  # fmt: skip


def _delinquent(
    sub: pd.DataFrame,
    events: pd.DataFrame,
    by_customer: np.ndarray,
    gid_sorted: np.ndarray,
    last_idx: np.ndarray,
) -> np.ndarray:
    """Per netting group: was its end caused by failed payments (delinquent churn)?

    Yes when the customer has a ``payment_failed`` at or before the group's last change
    and no ``payment`` between that failure and the change (the dunning ran out), or when
    an event of the group itself says so (status ``unpaid``, cancel reason
    ``payment_failed``): then the ledger need not hold the failures. Everything else is
    voluntary. Only events up to the churn decide, so a late failure or payment changes
    the churn's own day and later, which the incremental update rewrites anyway.
    """
    n_groups = len(last_idx)
    meta = sub["metadata"]
    said = (json_key(meta, "status") == _UNPAID_STATUS).fillna(False).to_numpy(dtype=bool)
    said |= (json_key(meta, "cancel_reason") == _DELINQUENT_REASON).fillna(False).to_numpy(
        dtype=bool
    )
    flagged = np.zeros(n_groups, dtype=bool)
    if said.any():
        np.logical_or.at(flagged, gid_sorted, said[by_customer])
    money = clean(events, (EventType.PAYMENT_FAILED.value, EventType.PAYMENT.value))
    failed = money[money["type"] == EventType.PAYMENT_FAILED.value]
    if failed.empty:
        return flagged
    ends = pd.DataFrame({
        "t": naive_utc(sub["ts"].iloc[last_idx]),
        "product": sub["product"].astype(object).to_numpy()[last_idx],
        "subject": sub["subject"].astype(object).to_numpy()[last_idx], "g": np.arange(n_groups),
    }).sort_values("t", kind="stable").astype({"product": "str", "subject": "str"})  # fmt: skip

    def last_before(kind: str) -> np.ndarray:
        part = money[money["type"] == kind]
        right = pd.DataFrame({"t": naive_utc(part["ts"]),
                              "product": part["product"].astype(object).to_numpy(),
                              "subject": part["subject"].astype(object).to_numpy()})  # fmt: skip
        right = right[right["subject"].notna().to_numpy()].astype({"product": "str",
                                                                     "subject": "str"})
        right["at"] = right["t"]
        right = right.sort_values("t", kind="stable")
        got = pd.merge_asof(ends, right, on="t", by=["product", "subject"])
        return got.sort_values("g")["at"].to_numpy()

    fail_at = last_before(EventType.PAYMENT_FAILED.value)
    paid_at = last_before(EventType.PAYMENT.value)
    unpaid = ~pd.isna(fail_at) & (pd.isna(paid_at) | (paid_at < fail_at))
    return flagged | unpaid


# What ``customer_movements`` returns, in order (amounts in micro-units).
DETAIL_COLUMNS = ("time", "day", "product", "customer", "kind", "amount", "mrr_before_rc",
                  "mrr_after_rc", "currency", "mrr_before", "mrr_after", "plan_before", "plan",
                  "interval", "cause", "subscriptions", "source_ids", "events")  # fmt: skip


def customer_movements(events: pd.DataFrame, settings: MetricsSettings) -> pd.DataFrame:
    """The netted customer movements of ``compute_mrr``, one row each, with who and why.

    Same chain order, valuation, netting and pause rules (the same ``_netted_groups``), so
    the rows of a day and kind are exactly the movements ``mrr_daily``/``customers_daily``
    count and sum. Per row (see ``DETAIL_COLUMNS``): the movement's time, day, product,
    customer, kind and amount (reporting currency); the customer's MRR before and after,
    in the reporting currency (the running sum of their valued changes and FX
    revaluations, so it adds up to ``mrr_daily``) and native (the sum of their
    subscriptions' states, in ``currency``); the plan before and after and the billing
    interval (last known value); for a churn its ``cause`` (``delinquent``: failed
    payments, see ``_delinquent``; else ``voluntary``); the subscription ids and the ``source_id`` of every
    event of the netting group (the ids the source itself uses), and how many there were.
    """
    g = _netted_groups(events, settings)
    if g is None:
        return pd.DataFrame({c: pd.Series(dtype="object") for c in DETAIL_COLUMNS})
    sub, by = g.sub, g.by_customer
    tz = settings.timezone
    n = len(sub)
    c_sorted = g.ckey[by]
    first_pos = np.flatnonzero(g.starts)  # positions in customer order
    last_pos = np.append(first_pos[1:] - 1, n - 1)
    # reporting-currency stock: running sum of the customer's valued changes, plus the FX
    # revaluations dated strictly before the group
    moved = pd.Series(g.move_rc[by]).groupby(c_sorted, sort=False).cumsum().to_numpy()
    before_rc = moved[first_pos] - g.move_rc[by][first_pos]
    g_time = g.ts.iloc[g.first_idx].reset_index(drop=True)
    rows = pd.DataFrame({
        "time": g_time, "product": sub["product"].to_numpy()[g.first_idx],
        "customer": sub["subject"].to_numpy()[g.first_idx], "kind": g.kind,
        "amount": g.amount, "delta": g.delta, "before_rc": before_rc,
        "order": np.arange(len(g.first_idx)),
    })  # fmt: skip
    rv = g.revaluations
    if not rv.empty:
        rv = rv.sort_values("time", kind="stable")
        rv = rv.assign(fx_before=rv.groupby(["product", "customer"])["amount"].cumsum())
        joined = pd.merge_asof(
            rows.sort_values("time", kind="stable"), rv[["time", "product", "customer", "fx_before"]],
            on="time", by=["product", "customer"], allow_exact_matches=False,
        ).sort_values("order")  # fmt: skip
        fx_before = joined["fx_before"].fillna(0).to_numpy().astype("int64")
    else:
        fx_before = np.zeros(len(rows), dtype="int64")
    rows["mrr_before_rc"] = rows["before_rc"].to_numpy() + fx_before
    rows["mrr_after_rc"] = rows["mrr_before_rc"] + rows["delta"]
    rows["mrr_before"] = g.state_after[g.first_idx] - g.state_delta[g.first_idx]
    rows["mrr_after"] = g.state_after[g.last_idx]
    rows["currency"] = sub["currency"].astype(object).to_numpy()[g.last_idx]

    def carried(values: pd.Series) -> np.ndarray:
        """Last known value per customer up to each position (customer order)."""
        ordered = pd.Series(values.astype(object).to_numpy()[by])
        return ordered.groupby(c_sorted, sort=False).ffill().to_numpy(dtype=object)

    plan = carried(sub["plan"])
    inner = first_pos[first_pos > 0]
    same = np.zeros(len(first_pos), dtype=bool)
    same[first_pos > 0] = c_sorted[inner - 1] == c_sorted[inner]
    plan_before = plan[np.maximum(first_pos - 1, 0)].copy()
    plan_before[~same] = None
    rows["plan_before"] = plan_before
    rows["plan"] = plan[last_pos]
    rows["interval"] = carried(json_key(sub["metadata"], "interval"))[last_pos]
    gid = g.gid_sorted
    source = sub["source_id"].astype(object).to_numpy()[by]
    sids = g.sid.astype(object).to_numpy()[by]
    per_group: list[list[str]] = [[] for _ in range(len(first_pos))]
    per_sub: list[list[str]] = [[] for _ in range(len(first_pos))]
    for k, s_id, sub_id in zip(gid.tolist(), source.tolist(), sids.tolist(), strict=True):
        if isinstance(s_id, str):
            per_group[k].append(s_id)
        if isinstance(sub_id, str) and sub_id not in per_sub[k]:
            per_sub[k].append(sub_id)
    rows["source_ids"] = per_group
    rows["subscriptions"] = per_sub
    rows["events"] = np.bincount(gid)
    rows["cause"] = np.where(g.kind != "churn", "",
                             np.where(g.delinquent, "delinquent", "voluntary"))  # fmt: skip
    rows["day"] = local_floor(rows["time"], "D", tz)
    out = rows[rows["kind"] != ""].sort_values(["time", "product", "customer"], kind="stable")
    return out[list(DETAIL_COLUMNS)].reset_index(drop=True)


def _chain_order(sub: pd.DataFrame, skey: np.ndarray) -> tuple[np.ndarray | None, np.ndarray]:
    """Positions that put each subscription's same-instant events in MRR-chain order
    (``mrr_before`` of one = ``mrr_after`` of the one before), and the number of chain
    breaks (an event whose ``mrr_before`` is not its subscription's previous state).

    Only the events of a tie (same subscription, same instant) move, among their own
    positions. A tie whose events admit no complete chain keeps the longest chain that
    continues from the previous state first and the rest in key order: the last
    observation's ``mrr_after`` wins, as for any broken chain.
    """
    n = len(sub)
    t = naive_utc(sub["ts"]).astype("int64")
    before = micros(sub["mrr_before"])
    after = micros(sub["mrr_after"])
    tie = pd.DataFrame({"s": skey, "t": t}).groupby(["s", "t"], sort=False)["t"].transform("size")
    perm: np.ndarray | None = None
    if (tie.to_numpy() > 1).any():
        perm = np.arange(n)
        by_sub = np.lexsort((np.arange(n), t, skey))  # subscription, time, ledger order
        s_sorted, t_sorted = skey[by_sub], t[by_sub]
        last_after = after[by_sub].copy()  # state after each sorted position, once resolved
        new_run = np.ones(n, dtype=bool)
        new_run[1:] = (s_sorted[1:] != s_sorted[:-1]) | (t_sorted[1:] != t_sorted[:-1])
        run_starts = np.flatnonzero(new_run)
        run_ends = np.append(run_starts[1:], n)
        for i, j in zip(run_starts[run_ends - run_starts > 1].tolist(),
                        run_ends[run_ends - run_starts > 1].tolist(), strict=True):  # fmt: skip
            # ties are rare: a Python loop over them only
            prev = last_after[i - 1] if i > 0 and s_sorted[i - 1] == s_sorted[i] else 0
            members = by_sub[i:j]  # ledger positions, ascending
            chain = _chain(int(prev), [(int(before[m]), int(after[m])) for m in members])
            ordered = members[chain]
            perm[np.sort(members)] = ordered
            last_after[j - 1] = after[ordered[-1]]
    s2 = skey if perm is None else skey[perm]
    b2 = before if perm is None else before[perm]
    a2 = after if perm is None else after[perm]
    prev_after = pd.Series(a2).groupby(s2, sort=False).shift(1)
    has_prev = prev_after.notna().to_numpy()
    broken = has_prev & (b2 != prev_after.fillna(0).to_numpy().astype("int64"))
    return perm, broken


def _chain(prev: int, steps: list[tuple[int, int]]) -> list[int]:
    """Order of ``steps`` ((before, after) pairs of one instant) that continues from ``prev``
    along before == previous after: the longest such chain, then the rest in given order."""
    best: list[int] = []

    def walk(cur: int, path: list[int]) -> bool:
        nonlocal best
        if len(path) > len(best):
            best = list(path)
        if len(path) == len(steps):
            return True
        for k, (b, a) in enumerate(steps):
            if k not in path and b == cur:
                path.append(k)
                if walk(a, path):
                    return True
                path.pop()
        return False

    if len(steps) <= 8 and not walk(prev, []) and not best:
        for k, (_b, a) in enumerate(steps):  # nothing continues from prev: any start
            if walk(a, [k]):
                break
    rest = [k for k in range(len(steps)) if k not in best]
    return best + rest


def _group_codes(frame: pd.DataFrame) -> np.ndarray:
    return frame.groupby(list(frame.columns), sort=False, dropna=False).ngroup().to_numpy()


def _valued(
    sub: pd.DataFrame,
    sid: pd.Series,
    after: np.ndarray,
    prev: np.ndarray,
    events: pd.DataFrame,
    settings: MetricsSettings,
    keys: np.ndarray,
) -> tuple[np.ndarray, pd.DataFrame, np.ndarray]:
    """Reporting-currency change of every subscription event, FX revaluations, and each
    event's valued subscription state before it.

    A subscription's MRR is valued at the rate of its service period's start (METRICS.md):
    the rate of the day it started, restarted or changed currency, re-set at each renewal
    (a ``payment`` carrying the subscription id starts a new period). A change inside the
    period (seats, plan) is valued at the period's rate, so it is a pure movement; the
    revaluation at a renewal is the FX impact. Returns the per-event change (micro-units)
    and the revaluations (time, product, customer, subscription, amount), which sum exactly
    to the stock, and per event the valued state before it (micro-units).
    """
    n = len(sub)
    has_sid = sid.notna().to_numpy()
    currency = sub["currency"].astype(object).to_numpy()
    t = naive_utc(sub["ts"])
    rate_now = settings.fx.convert_factor(pd.Series(currency), pd.Series(t))
    # Without a subscription id there is no period to follow: value at the event's day.
    before_rc = np.round(prev * rate_now).astype("int64")
    move = np.round(after * rate_now).astype("int64") - before_rc
    fx_empty = pd.DataFrame({"time": pd.Series(dtype=TIME_DTYPE), "product": [], "customer": [],
                             "subscription": [], "amount": pd.Series(dtype="int64")})  # fmt: skip
    if not has_sid.any():
        return move, fx_empty, before_rc
    pay = clean(events, (EventType.PAYMENT.value,))
    pay_sid = json_key(pay["metadata"], "subscription") if len(pay) else pd.Series(dtype="string")
    pay = pay[pay_sid.notna().to_numpy()]
    pay_sid = pay_sid[pay_sid.notna()]
    timeline = pd.concat(
        [
            pd.DataFrame({"pos": np.arange(n)[has_sid], "product": sub["product"].to_numpy()[has_sid],
                          "customer": sub["subject"].to_numpy()[has_sid],
                          "sid": sid.to_numpy()[has_sid], "t": t[has_sid],
                          "key": keys[has_sid],
                          "state": after[has_sid].astype("float64"),
                          "cur": currency[has_sid]}),
            pd.DataFrame({"pos": -1, "product": pay["product"].to_numpy(),
                          "customer": pay["subject"].to_numpy(), "sid": pay_sid.to_numpy(),
                          "t": naive_utc(pay["ts"]), "key": pay["idempotency_key"].to_numpy(),
                          "state": np.nan, "cur": None}),
        ],
        ignore_index=True,
    )  # fmt: skip
    timeline = timeline.sort_values(["t", "key"], kind="stable").reset_index(drop=True)
    g = _group_codes(timeline[["product", "customer", "sid"]])
    is_sub = (timeline["pos"] >= 0).to_numpy()
    state = timeline["state"].groupby(g, sort=False).ffill().fillna(0).to_numpy()
    cur = timeline["cur"].groupby(g, sort=False).ffill()
    known = cur.notna().to_numpy()  # a renewal before the subscription's first event: ignore
    timeline, state, g, is_sub = timeline[known], state[known], g[known], is_sub[known]
    cur = cur[known].astype(object)
    rate = settings.fx.convert_factor(
        cur.reset_index(drop=True), pd.Series(timeline["t"].to_numpy())
    )
    prev_state = pd.Series(state).groupby(g, sort=False).shift(1).fillna(0).to_numpy()
    prev_cur = pd.Series(cur.to_numpy()).groupby(g, sort=False).shift(1).to_numpy(dtype=object)
    reset = ~is_sub | (prev_state == 0) | (cur.to_numpy() != prev_cur)
    period_rate = pd.Series(np.where(reset, rate, np.nan)).groupby(g, sort=False).ffill()
    value = np.round(state * period_rate.to_numpy()).astype("int64")
    prev_value = pd.Series(value).groupby(g, sort=False).shift(1).fillna(0).to_numpy()
    delta = value - prev_value.astype("int64")
    move[timeline["pos"].to_numpy()[is_sub]] = delta[is_sub]
    before_rc[timeline["pos"].to_numpy()[is_sub]] = prev_value.astype("int64")[is_sub]
    reval = ~is_sub & (delta != 0)
    fx = pd.DataFrame(
        {
            "time": pd.to_datetime(timeline["t"].to_numpy()[reval]).tz_localize("UTC"),
            "product": timeline["product"].to_numpy()[reval],
            "customer": timeline["customer"].to_numpy()[reval],
            "subscription": timeline["sid"].to_numpy()[reval],
            "amount": delta[reval],
        }
    )
    fx["time"] = fx["time"].astype(TIME_DTYPE)
    return move, fx, before_rc


def _changes(
    sub: pd.DataFrame, move: np.ndarray, fx: pd.DataFrame, group_time: np.ndarray
) -> pd.DataFrame:
    """Per customer, every reporting-currency change of their MRR (movements and FX), a
    movement's at the time of its netting group's first change."""
    out = pd.concat(
        [
            pd.DataFrame({"time": pd.Series(group_time).dt.tz_localize("UTC"),
                          "product": sub["product"].to_numpy(),
                          "customer": sub["subject"].to_numpy(), "delta": move}),
            fx[["time", "product", "customer", "amount"]].rename(columns={"amount": "delta"}),
        ],
        ignore_index=True,
    )  # fmt: skip
    out = out[out["delta"] != 0]
    out["time"] = pd.to_datetime(out["time"], utc=True).astype(TIME_DTYPE)
    return out.reset_index(drop=True)


def _daily(
    movements: pd.DataFrame,
    revaluations: pd.DataFrame,
    cancels: pd.DataFrame,
    first_day: pd.Series,
    until: pd.Timestamp | None,
    tz: str = "UTC",
) -> pd.DataFrame:
    """Per product and day: movement sums, FX impact, the stock they add up to, counts.

    The stock is the running sum of movements and revaluations, so the identity holds
    exactly by construction (and the property tests check the stock against an
    independent valuation). Days (of the reporting timezone) run from each product's first
    subscription event (a trial counts: its zero-MRR days are real days of the product) to
    ``until``. Built on a dense (product, day) int64 grid by position (no index
    alignment): a webhook's update computes this for one customer, so its fixed cost
    matters as much as its cost per row.
    """
    last = max(x for x in (movements["time"].max(), revaluations["time"].max(),
                           cancels["ts"].max(), first_day.max()) if not pd.isna(x))  # fmt: skip
    end = last if until is None else max(until, last)
    days = naive_utc(local_day_range(first_day.min(), end, tz))
    products = sorted(first_day.index)
    n_days = len(days)
    size = len(products) * n_days
    index = pd.Index(products)

    def cells(product: pd.Series, day: pd.Series) -> np.ndarray:
        p = index.get_indexer(product.astype(object))
        return p * n_days + np.searchsorted(days, naive_utc(day))

    def summed(at: np.ndarray, values: np.ndarray | int) -> np.ndarray:
        out = np.zeros(size, dtype="int64")
        np.add.at(out, at, values)
        return out

    mv = cells(movements["product"], movements["day"])
    kind = movements["kind"].astype(object).to_numpy()
    amount = movements["amount"].to_numpy().astype("int64")
    cols: dict[str, np.ndarray] = {}
    for k in MOVEMENT_KINDS:
        cols[k] = summed(mv[kind == k], amount[kind == k])
    rv_day = local_floor(revaluations["time"], "D", tz)
    cols["fx_impact"] = summed(cells(revaluations["product"], rv_day),
                               revaluations["amount"].to_numpy().astype("int64"))  # fmt: skip
    net = (cols["new"] + cols["expansion"] + cols["reactivation"] + cols["resumed"]
           - cols["contraction"] - cols["churn"] - cols["paused"] + cols["fx_impact"])  # fmt: skip

    def running(flow: np.ndarray) -> np.ndarray:
        return np.cumsum(flow.reshape(len(products), n_days), axis=1).reshape(-1)

    cols["mrr"] = running(net)
    bad = movements["delinquent"].astype(bool).to_numpy() & (kind == "churn")
    cols["churn_delinquent"] = summed(mv[bad], amount[bad])
    cols["churn_voluntary"] = cols["churn"] - cols["churn_delinquent"]
    cols["churned_delinquent"] = summed(mv[bad], 1)
    names = {"new": "new_customers", "reactivation": "reactivated_customers",
             "churn": "churned_customers"}  # fmt: skip
    for k, name in names.items():
        cols[name] = summed(mv[kind == k], 1)
    for col, name in (("active_delta", "active"), ("paused_delta", "paused_customers"),
                      ("paused_mrr_delta", "paused_mrr")):  # fmt: skip
        cols[name] = running(summed(mv, movements[col].to_numpy().astype("int64")))
    cancel_day = local_floor(cancels["ts"], "D", tz)
    cols["cancellations"] = summed(cells(cancels["product"], cancel_day), 1)
    product_col = np.repeat(np.asarray(products, dtype=object), n_days)
    day_col = np.tile(days, len(products))
    firsts = naive_utc(pd.Series(first_day.reindex(products).to_numpy()).astype(TIME_DTYPE))
    keep = day_col >= np.repeat(firsts, n_days)
    out = pd.DataFrame({"time": pd.to_datetime(day_col[keep]).tz_localize("UTC"),
                        "product": product_col[keep]})  # fmt: skip
    for col in (*MONEY, *COUNTS):
        out[col] = cols[col][keep]
    out["time"] = out["time"].astype(TIME_DTYPE)
    return out


def daily_with_portfolio(daily: pd.DataFrame) -> pd.DataFrame:
    """Append ``product = all`` rows (sums of reporting-currency micro-units and counts)."""
    from growthwatch.metrics._frame import with_portfolio

    return with_portfolio(daily, ["time"], [*MONEY, *COUNTS])


def to_units(daily: pd.DataFrame) -> pd.DataFrame:
    """Micro-units to amounts and derived daily fields (net change, ARPA)."""
    out = daily.copy()
    for col in MONEY:
        out[col] = units(out[col].to_numpy())
    out["net_change"] = np.round(
        out["new"] + out["expansion"] + out["reactivation"] + out["resumed"] - out["contraction"]
        - out["churn"] - out["paused"] + out["fx_impact"],
        6,
    )  # fmt: skip
    return out


def _empty_daily() -> pd.DataFrame:
    cols = {"time": TIME_DTYPE, "product": "str"}
    cols.update({c: "int64" for c in (*MONEY, *COUNTS)})
    return empty(cols)


def _empty_movements() -> pd.DataFrame:
    return empty(
        {"time": TIME_DTYPE, "day": TIME_DTYPE, "product": "str", "customer": "str",
         "kind": "str", "amount": "int64", "paid_before": "bool", "paid_after": "bool",
         "active_delta": "int64", "paused_delta": "int64", "paused_mrr_delta": "int64",
         "delinquent": "bool"}
    )  # fmt: skip


def _empty_netted() -> pd.DataFrame:
    return empty({"product": "str", "start": TIME_DTYPE, "end": TIME_DTYPE})


def _empty_changes() -> pd.DataFrame:
    return empty({"time": TIME_DTYPE, "product": "str", "customer": "str", "delta": "int64"})
