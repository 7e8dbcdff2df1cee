"""MRR, its movements, customers, churn and revenue per segment (plan, billing interval,
country, acquisition channel, custom customer attributes).

Why it is built this way:

* **The product's own movements, split.** Segments are not a second MRR engine: every
  number starts from the netting groups of ``growthwatch.metrics.mrr`` (same chain order,
  valuation, netting, pauses and delinquency). Each group's reporting-currency change is
  split over the segments its events touch, so per group the pieces add up to the
  product's change exactly (integer micro-units) and every sum over the segments of one
  dimension equals the product figure.
* **Where a customer's money is.** Plan and interval are per subscription (the value on
  its latest event); country, channel and custom attributes per customer (the first value
  any of its events carried, over its whole history). A subscription that changes plan
  takes its valued MRR out of the old plan and into the new one: contraction in one and
  expansion in the other, even when the customer's total does not move. The part of a
  segment's expansion (contraction) that is such a move is also in ``moved_in``
  (``moved_out``); ``expansion - moved_in`` and ``contraction - moved_out`` add up to the
  product's expansion and contraction, every other field adds up as it is.
* **Counts in one place.** A customer is counted (active, new, churned, paused...) in one
  segment per dimension at a time: the segment of their largest MRR increase so far (their
  first paid plan, then the plan they move to), so counts add up exactly too, and a rate
  (churn rate, ARPA, NRR) is recomputed from the segment's own numerator and denominator.
* **Bounded cardinality.** Each segment value is a series per product in InfluxDB; a
  dimension with more distinct values than ``max_values`` keeps the values with the most
  customers and folds the rest into ``other`` (see docs/metrics.md). ``unknown`` holds
  customers without a value.

The folding and the per-customer attributes depend on the whole history, yet with the kept
values fixed every number is a sum over customers: ``segment_totals`` keeps those sums and
updates them from the customers new events touch (``families/segments``); the functions
here over every event at once stay the reference.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from growthwatch.events import EventType
from growthwatch.metrics import revenue as revenue_mod
from growthwatch.metrics._frame import (
    PORTFOLIO,
    TIME_DTYPE,
    clean,
    json_key,
    local_day_range,
    local_floor,
    micros,
    naive_utc,
    units,
)
from growthwatch.metrics.customers import _partial, churn_periods
from growthwatch.metrics.mrr import (
    MONEY,
    MRR_TYPES,
    PAUSED,
    PAYING,
    MrrResult,
    _Groups,
    _netted_groups,
)
from growthwatch.metrics.settings import BUILTIN_SEGMENTS, MetricsSettings

BUILTIN_DIMENSIONS = BUILTIN_SEGMENTS
PER_SUBSCRIPTION = frozenset({"plan", "interval"})
DEFAULT_MAX_VALUES = 50
UNKNOWN, OTHER = "unknown", "other"
# what the segment functions read: the MRR inputs, refunds (revenue) and signups (a
# customer's first known country and channel is often on its signup)
TYPES = (*MRR_TYPES, EventType.REFUND.value, EventType.SIGNUP.value)
MOVED = ("moved_in", "moved_out")
_SEP = "\x1f"
_GAIN_KINDS = ("new", "reactivation", "resumed")
_LOSS_KINDS = ("churn", "paused")


# -- segment values --------------------------------------------------------------------------


def _raw_values(events: pd.DataFrame, dimension: str) -> pd.Series:
    """The value of ``dimension`` each event carries (NA when none)."""
    if dimension in ("plan", "channel"):
        col = events[dimension].astype("string")
        if dimension == "channel":
            col = col.fillna(json_key(events["metadata"], "channel"))
        return col.where(col != "", pd.NA)
    return json_key(events["metadata"], dimension)


def customer_attributes(events: pd.DataFrame, dimensions: Sequence[str]) -> pd.DataFrame:
    """Per (product, subject): the first value (by time, then ledger order) any event of the
    customer carried for each per-customer dimension; NA when none did."""
    ev = clean(events)
    ev = ev[ev["subject"].notna().to_numpy()]
    index = pd.MultiIndex.from_frame(ev[["product", "subject"]].drop_duplicates().astype(object))
    out = pd.DataFrame(index=index)
    for dim in dimensions:
        if dim in PER_SUBSCRIPTION:
            continue
        values = _raw_values(ev, dim)
        known = values.notna().to_numpy()
        first = (
            pd.DataFrame({"product": ev["product"].astype(object).to_numpy()[known],
                          "subject": ev["subject"].astype(object).to_numpy()[known],
                          "v": values.astype(object).to_numpy()[known]})
            .groupby(["product", "subject"], sort=False)["v"].first()
        )  # fmt: skip
        out[dim] = first.reindex(index).to_numpy(dtype=object)
    return out


def kept_values(counts: pd.Series, max_values: int) -> set[str]:
    """The ``max_values`` values with the most customers (ties: by name); the rest fold
    into ``other``."""
    ranked = sorted(counts.items(), key=lambda kv: (-int(kv[1]), str(kv[0])))
    return {str(v) for v, _n in ranked[:max_values]}


def fold(values: pd.Series, kept: set[str]) -> np.ndarray:
    """Values as segment labels: ``unknown`` for none, ``other`` outside ``kept``."""
    # decided once per distinct value, then taken per row (a full run's product group
    # folds hundreds of thousands of rows of a handful of values: 3x faster)
    codes, uniques = pd.factorize(values.astype(object).to_numpy())
    names = np.asarray(uniques, dtype=object)
    labels = np.where(np.isin(names.astype(str), sorted(kept)), names, OTHER) if len(names) else names
    return np.concatenate([labels.astype(object), np.array([UNKNOWN], dtype=object)])[codes]


# -- the MRR split ---------------------------------------------------------------------------


@dataclass(frozen=True)
class _Split:
    """One dimension's pieces of the netting groups (all micro-units, int64)."""

    pieces: pd.DataFrame  # gid, seg, kind, amount, moved, delinquent
    c_before: np.ndarray  # per group: the segment counting the customer before it
    c_after: np.ndarray  # per group: ... after it
    event_seg_before: np.ndarray  # per subscription event: its subscription's segment before
    event_seg_after: np.ndarray


def _event_segments(
    g: _Groups, dim: str, attrs: pd.DataFrame, kept: set[str],
    cache: dict[str, np.ndarray] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Per subscription event (chain order): its subscription's segment before and after.
    ``cache``: where the lookups that do not depend on ``dim`` are kept between the
    dimensions of one ``g`` (the subscriptions' groups, the customers' rows in ``attrs``)."""
    sub = g.sub
    cache = {} if cache is None else cache
    if dim in PER_SUBSCRIPTION:
        if "skey" not in cache:
            cache["skey"] = (sub[["product", "subject"]].astype(object)
                             .assign(sid=g.sid.fillna("").to_numpy(dtype=object))
                             .groupby(["product", "subject", "sid"], sort=False).ngroup()
                             .to_numpy())  # fmt: skip
        skey = cache["skey"]
        raw = _raw_values(sub, dim).astype(object)
        carried = pd.Series(raw.to_numpy()).groupby(skey, sort=False).ffill()
        after = fold(carried, kept)
        prev = pd.Series(after).groupby(skey, sort=False).shift(1)
        before = np.where(prev.isna().to_numpy(), after, prev.to_numpy(dtype=object))
        return before.astype(object), after
    # folded once per customer, then taken per event (no customer: unknown)
    if "pos" not in cache:
        cache["pos"] = attrs.index.get_indexer(pd.MultiIndex.from_arrays(
            [sub["product"].astype(object), sub["subject"].astype(object)]))  # fmt: skip
    pos = cache["pos"]
    folded = fold(pd.Series(attrs[dim].to_numpy(dtype=object)), kept)
    seg = np.where(pos >= 0, folded[np.maximum(pos, 0)] if len(folded) else UNKNOWN,
                   UNKNOWN).astype(object)  # fmt: skip
    return seg, seg


def _split(g: _Groups, seg_before: np.ndarray, seg_after: np.ndarray) -> _Split:
    """Split every netting group's change over segments and classify the pieces."""
    n = len(g.sub)
    gid_ev = np.empty(n, dtype="int64")
    gid_ev[g.by_customer] = g.gid_sorted
    move = g.move_rc.astype("int64")
    changed = seg_before != seg_after
    same = ~changed
    pieces = pd.DataFrame({
        "gid": np.concatenate([gid_ev[same], gid_ev[changed], gid_ev[changed]]),
        "seg": np.concatenate([seg_after[same], seg_before[changed], seg_after[changed]]),
        "d": np.concatenate([move[same], -g.before_rc[changed], g.before_rc[changed] + move[changed]]),
    })  # fmt: skip
    pieces = pieces.groupby(["gid", "seg"], as_index=False, sort=True)["d"].sum()
    pieces = pieces[pieces["d"] != 0].reset_index(drop=True)
    kind_g = np.asarray(g.kind, dtype=object)
    last_seg = seg_after[g.last_idx]
    # Groups whose pieces do not fit their kind (a new customer losing money in a segment:
    # only possible with sources that send no subscription ids) are kept whole in the
    # segment of their last event, so sums stay exact.
    gk = kind_g[pieces["gid"].to_numpy()]
    d = pieces["d"].to_numpy()
    misfit = (np.isin(gk, _GAIN_KINDS) & (d < 0)) | (np.isin(gk, _LOSS_KINDS) & (d > 0))
    misfit |= (gk == "") & (g.delta[pieces["gid"].to_numpy()] != 0)
    if misfit.any():
        bad = np.unique(pieces["gid"].to_numpy()[misfit])
        keep = pieces[~pieces["gid"].isin(bad)]
        whole = pd.DataFrame({"gid": bad, "seg": last_seg[bad], "d": g.delta[bad]})
        whole = whole[(whole["d"] != 0) & (kind_g[bad] != "")]
        pieces = pd.concat([keep, whole], ignore_index=True).sort_values(["gid", "seg"])
        pieces = pieces.reset_index(drop=True)
    gid = pieces["gid"].to_numpy()
    d = pieces["d"].to_numpy().astype("int64")
    gk = kind_g[gid]
    kind = np.where(np.isin(gk, _GAIN_KINDS) | np.isin(gk, _LOSS_KINDS), gk,
                    np.where(d > 0, "expansion", "contraction")).astype(object)  # fmt: skip
    amount = np.abs(d)
    # Moves between segments: in a group of expansions and contractions, the smaller of
    # gains and losses moved; it is allocated to the largest pieces first (exact integers).
    moving = (kind == "expansion") | (kind == "contraction")
    gains = np.bincount(gid, weights=np.where(moving & (d > 0), d, 0), minlength=len(kind_g))
    losses = np.bincount(gid, weights=np.where(moving & (d < 0), -d, 0), minlength=len(kind_g))
    moved_total = np.minimum(gains, losses).round().astype("int64")
    sign = np.sign(d)
    order = np.lexsort((pieces["seg"].astype(str).to_numpy(), -amount, sign, gid))
    o_gid, o_sign, o_amt = gid[order], sign[order], amount[order]
    run = pd.Series(o_amt).groupby([o_gid, o_sign], sort=False).cumsum().to_numpy() - o_amt
    alloc = np.clip(moved_total[o_gid] - run, 0, o_amt)
    moved = np.zeros(len(d), dtype="int64")
    moved[order] = np.where(moving[order], alloc, 0)
    pieces = pieces.assign(kind=kind, amount=amount, moved=moved,
                           delinquent=np.asarray(g.delinquent)[gid] & (kind == "churn"))  # fmt: skip
    # The counting segment: the largest increase of the group (ties by name), else the
    # previous one of the customer, else the segment of the group's last event.
    gaining = pieces[pieces["d"] > 0].sort_values(["gid", "d", "seg"], ascending=[True, False, True])
    top = gaining.drop_duplicates("gid")
    cand = pd.Series(pd.NA, index=np.arange(len(kind_g)), dtype=object)
    cand.iloc[top["gid"].to_numpy()] = top["seg"].to_numpy(dtype=object)
    g_customer = g.ckey[g.first_idx]
    c_after = cand.groupby(g_customer, sort=False).ffill()
    c_after = c_after.fillna(pd.Series(last_seg)).to_numpy(dtype=object)
    c_before = pd.Series(c_after).groupby(g_customer, sort=False).shift(1)
    c_before = c_before.fillna(pd.Series(seg_before[g.first_idx])).to_numpy(dtype=object)
    return _Split(pieces, c_before, c_after, seg_before, seg_after)


# -- daily flows per (product, dimension, segment) --------------------------------------------


def _key(
    product: np.ndarray, dim: str, seg: np.ndarray,
    coded: tuple[np.ndarray, np.ndarray] | None = None,
) -> np.ndarray:
    """The composite ``product|dimension|segment`` key of each row (strings built once per
    distinct pair: millions of rows, a few hundred keys). ``coded``: ``product``'s
    factorization (codes, names), when the caller has it (the same products keyed by
    several segment columns)."""
    if len(product) == 0:
        return np.array([], dtype=object)
    # two flat factorizations and one integer pair code: no MultiIndex (its categoricals
    # cost milliseconds per call, which an update for a few customers pays dozens of times)
    p_codes, p_names = (pd.factorize(np.asarray(product, dtype=object), use_na_sentinel=False)
                        if coded is None else coded)  # fmt: skip
    s_codes, s_names = pd.factorize(np.asarray(seg, dtype=object), use_na_sentinel=False)
    pairs, codes = np.unique(p_codes.astype("int64") * len(s_names) + s_codes, return_inverse=True)
    names = np.array([f"{p_names[i // len(s_names)]}{_SEP}{dim}{_SEP}{s_names[i % len(s_names)]}"
                      for i in pairs], dtype=object)  # fmt: skip
    return names[codes.reshape(-1)]


def _pair_codes(first: np.ndarray, second: np.ndarray) -> np.ndarray:
    """``MultiIndex.from_arrays([first, second]).factorize()[0]`` (codes of the distinct
    pairs in order of appearance) from two flat factorizations and one of integers."""
    a = pd.factorize(first)[0]
    b, b_names = pd.factorize(second)
    return pd.factorize(a.astype("int64") * (len(b_names) + 1) + (b + 1))[0]


def _per_unique(values: pd.Series | np.ndarray, fn: Callable[[str], object]) -> np.ndarray:
    """``fn`` of each value, computed once per distinct value."""
    codes, uniques = pd.factorize(np.asarray(values, dtype=object))
    return np.array([fn(str(u)) for u in uniques] + [None], dtype=object)[codes]


def _flows(
    g: _Groups, dim: str, split: _Split, attrs: pd.DataFrame, kept: set[str], tz: str
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Daily flow rows keyed by segment (micro-units), count rows for the churn-from-start
    numerator, and per-customer MRR changes (for trailing-12-month retention)."""
    sub = g.sub
    g_time = g.ts.iloc[g.first_idx].reset_index(drop=True)
    g_day = naive_utc(local_floor(g_time, "D", tz))
    g_product = sub["product"].astype(object).to_numpy()[g.first_idx]
    g_customer = sub["subject"].astype(object).to_numpy()[g.first_idx]
    kind_g = np.asarray(g.kind, dtype=object)
    p = split.pieces
    pg = p["gid"].to_numpy()
    g_coded = pd.factorize(g_product, use_na_sentinel=False)
    piece_key = _key(g_product[pg], dim, p["seg"].to_numpy(), (g_coded[0][pg], g_coded[1]))
    rows = [pd.DataFrame({
        "key": piece_key, "time": g_day[pg],
        **{k: np.where(p["kind"].to_numpy() == k, p["amount"].to_numpy(), 0)
           for k in ("new", "expansion", "contraction", "churn", "reactivation", "paused",
                     "resumed")},
        "churn_delinquent": np.where(p["delinquent"].to_numpy(), p["amount"].to_numpy(), 0),
        "moved_in": np.where(p["kind"].to_numpy() == "expansion", p["moved"].to_numpy(), 0),
        "moved_out": np.where(p["kind"].to_numpy() == "contraction", p["moved"].to_numpy(), 0),
    })]  # fmt: skip
    was, up = g.g_b == PAYING, g.g_a == PAYING
    pmd = np.asarray(g.paused_mrr_delta, dtype="int64")
    for seg, sign, state, paused_mrr in (
        (split.c_before, -1, g.g_b, np.minimum(pmd, 0)),
        (split.c_after, 1, g.g_a, np.maximum(pmd, 0)),
    ):
        rows.append(pd.DataFrame({
            "key": _key(g_product, dim, seg, g_coded), "time": g_day,
            "active_delta": sign * (state == PAYING).astype("int64"),
            "paused_delta": sign * (state == PAUSED).astype("int64"),
            "paused_mrr_delta": paused_mrr,
        }))  # fmt: skip
    counted = np.where(np.isin(kind_g, ("churn", "paused", "contraction")), split.c_before,
                       split.c_after)  # fmt: skip
    rows.append(pd.DataFrame({
        "key": _key(g_product, dim, counted, g_coded), "time": g_day,
        "new_customers": (kind_g == "new").astype("int64"),
        "reactivated_customers": (kind_g == "reactivation").astype("int64"),
        "churned_customers": (kind_g == "churn").astype("int64"),
        "churned_delinquent": ((kind_g == "churn") & np.asarray(g.delinquent)).astype("int64"),
    }))  # fmt: skip
    cancel = (sub["type"] == EventType.SUBSCRIPTION_CANCELLED.value).to_numpy()
    if cancel.any():
        rows.append(pd.DataFrame({
            "key": _key(sub["product"].astype(object).to_numpy()[cancel], dim,
                        split.event_seg_before[cancel]),
            "time": naive_utc(local_floor(sub["ts"][cancel], "D", tz)),
            "cancellations": np.ones(int(cancel.sum()), dtype="int64"),
        }))  # fmt: skip
    rv = g.revaluations
    rv_seg = _revaluation_segments(g, dim, split, attrs, kept)
    if len(rv):
        rows.append(pd.DataFrame({"key": _key(rv["product"].astype(object).to_numpy(), dim, rv_seg),
                                  "time": naive_utc(local_floor(rv["time"], "D", tz)),
                                  "fx_impact": rv["amount"].to_numpy().astype("int64")}))  # fmt: skip
    flows = pd.concat(rows, ignore_index=True).fillna(0)
    values = flows.drop(columns=["key", "time"]).to_numpy()
    flows = flows[(values != 0).any(axis=1)]  # rows of nothing make no series
    movements = pd.DataFrame({
        "time": g_time, "product": g_product, "customer": g_customer, "kind": kind_g,
        "paid_before": was, "paid_after": up, "seg_before": split.c_before,
    })  # fmt: skip
    movements = movements[movements["kind"] != ""].reset_index(drop=True)
    rv_product = rv["product"].astype(object).to_numpy()
    who = _pair_codes(np.concatenate([g_product[pg], rv_product]),
                      np.concatenate([g_customer[pg], rv["customer"].astype(object).to_numpy()]))
    # a customer is per product, also in the portfolio rows
    changes = pd.DataFrame({
        "time": np.concatenate([naive_utc(g_time)[pg], naive_utc(rv["time"])]),
        "key": np.concatenate([piece_key, _key(rv_product, dim, rv_seg)]),
        "customer": who,
        "delta": np.concatenate([p["d"].to_numpy(), rv["amount"].to_numpy()]).astype("int64"),
    })  # fmt: skip
    changes["time"] = pd.to_datetime(changes["time"], utc=True).astype(TIME_DTYPE)
    return flows, movements, changes


def _revaluation_segments(
    g: _Groups, dim: str, split: _Split, attrs: pd.DataFrame, kept: set[str]
) -> np.ndarray:
    """The segment of each FX revaluation: its subscription's segment at that time (plan,
    interval), or its customer's (the other dimensions)."""
    rv = g.revaluations
    if rv.empty:
        return np.array([], dtype=object)
    if dim not in PER_SUBSCRIPTION:
        keys = pd.MultiIndex.from_arrays([rv["product"].astype(object),
                                          rv["customer"].astype(object)])  # fmt: skip
        return fold(pd.Series(attrs[dim].reindex(keys).to_numpy(dtype=object)), kept)
    sub = g.sub
    left = pd.DataFrame({"t": rv["time"].astype(TIME_DTYPE).to_numpy(), "order": np.arange(len(rv)),
                         "product": rv["product"].astype(str).to_numpy(),
                         "customer": rv["customer"].astype(str).to_numpy(),
                         "sid": rv["subscription"].astype(str).to_numpy()})  # fmt: skip
    right = pd.DataFrame({"t": sub["ts"].astype(TIME_DTYPE).to_numpy(),
                          "product": sub["product"].astype(str).to_numpy(),
                          "customer": sub["subject"].astype(str).to_numpy(),
                          "sid": g.sid.fillna("").astype(str).to_numpy(),
                          "seg": split.event_seg_after})  # fmt: skip
    got = pd.merge_asof(left.sort_values("t", kind="stable"), right.sort_values("t", kind="stable"),
                        on="t", by=["product", "customer", "sid"])  # fmt: skip
    seg = got.sort_values("order")["seg"].to_numpy(dtype=object)
    return np.where(pd.isna(seg), UNKNOWN, seg).astype(object)


_FLOW_COLS = ("new", "expansion", "contraction", "churn", "reactivation", "paused", "resumed",
              "fx_impact", "churn_delinquent", "moved_in", "moved_out", "new_customers",
              "reactivated_customers", "churned_customers", "cancellations", "churned_delinquent",
              "active_delta", "paused_delta", "paused_mrr_delta")  # fmt: skip


def _daily(
    flows: pd.DataFrame, until: pd.Timestamp, tz: str, coarse: np.ndarray | None = None
) -> pd.DataFrame:
    """Per key and day from the key's first day with something to ``until``: flow sums and
    the stocks they add up to (MRR, active, paused), like ``mrr._daily`` per product.

    ``coarse`` (naive UTC local-midnight instants, sorted): the grid's times up to its last
    one, each row holding the flows up to the next (an update's carried history and whole
    months, ``segment_totals._carried``); every local day after the last one."""
    for col in _FLOW_COLS:
        if col not in flows:
            flows[col] = 0
    sums = flows.groupby(["key", "time"], sort=True)[list(_FLOW_COLS)].sum().astype("int64")
    keys = sums.index.get_level_values("key").unique()
    # A key's rows start on the first day it has something (before that it holds nothing;
    # an event can only make a key appear from its own day on, which an update rewrites).
    seen = sums.reset_index().groupby("key", sort=False)["time"].min().reindex(keys)
    starts = pd.Series(seen.to_numpy(), index=keys)
    end = max(until.tz_convert("UTC").tz_localize(None).to_datetime64(),
              sums.index.get_level_values("time").max().to_datetime64())
    begin = pd.Timestamp(starts.min(), tz="UTC")
    if coarse is not None and len(coarse):
        # the next local day (a local day lasts 23 to 25 hours)
        begin = max(begin, pd.Timestamp(coarse[-1], tz="UTC") + pd.Timedelta(hours=36))
    days = naive_utc(local_day_range(begin, pd.Timestamp(end, tz="UTC"), tz))
    if coarse is not None and len(coarse):
        days = np.concatenate([np.asarray(coarse, dtype="datetime64[us]"), days])
    grid = pd.MultiIndex.from_product([keys, days], names=["key", "time"])
    out = sums.reindex(grid, fill_value=0).reset_index()
    out = out[out["time"].to_numpy() >= starts.reindex(out["key"]).to_numpy()]
    out = out.reset_index(drop=True)
    out["time"] = pd.to_datetime(out["time"], utc=True).astype(TIME_DTYPE)
    net = (out["new"] + out["expansion"] + out["reactivation"] + out["resumed"]
           - out["contraction"] - out["churn"] - out["paused"] + out["fx_impact"])  # fmt: skip
    by_key = out["key"]
    out["mrr"] = net.groupby(by_key, sort=False).cumsum()
    out["active"] = out["active_delta"].groupby(by_key, sort=False).cumsum()
    out["paused_customers"] = out["paused_delta"].groupby(by_key, sort=False).cumsum()
    out["paused_mrr"] = out["paused_mrr_delta"].groupby(by_key, sort=False).cumsum()
    out["churn_voluntary"] = out["churn"] - out["churn_delinquent"]
    return out.rename(columns={"key": "product"})


# -- the frames --------------------------------------------------------------------------------

MRR_FIELDS = ("mrr_end", "new", "expansion", "contraction", "churn", "reactivation", "fx_impact",
              "net_change", "paused", "resumed", "paused_mrr", "arr", "churn_voluntary",
              "churn_delinquent", *MOVED)  # fmt: skip


def kept_by_dimension(events: pd.DataFrame, settings: MetricsSettings) -> dict[str, set[str]]:
    """Per configured dimension, the values that keep their own series (the rest: other)."""
    events = clean(events)
    spec = settings.segments
    attrs = customer_attributes(events, spec.dimensions)
    return {dim: kept_values(_value_counts(events, attrs, dim), spec.max_values)
            for dim in spec.dimensions}  # fmt: skip


def segment_frames(
    events: pd.DataFrame,
    settings: MetricsSettings,
    until: pd.Timestamp | None = None,
    kept: dict[str, set[str]] | None = None,
    netted: list[pd.DataFrame] | None = None,
) -> dict[str, pd.DataFrame]:
    """Every segment measurement (``mrr_segments_daily``, ``customers_segments_daily``,
    ``churn_segments_monthly``, ``revenue_segments_daily``) from an event frame (the whole
    history: folding and customer attributes depend on it), in units, with tag columns
    ``product``, ``dimension``, ``segment``. ``kept``: ``kept_by_dimension`` of the same
    events, when the caller has it; ``netted`` (a list) receives the netting groups of
    more than one event (start, end), which a late event can join."""
    spec = settings.segments
    events = clean(events)
    out: dict[str, pd.DataFrame] = {}
    if not spec.dimensions or events.empty:
        return out
    if until is None:
        until = events["ts"].max()
    attrs = customer_attributes(events, spec.dimensions)
    if kept is None:
        kept = {dim: kept_values(_value_counts(events, attrs, dim), spec.max_values)
                for dim in spec.dimensions}  # fmt: skip
    g = _netted_groups(events, settings)
    if g is not None:
        out.update(_subscription_segments(g, settings, attrs, kept, until))
    rev = _revenue_segments(events, settings, attrs, kept)
    if not rev.empty:
        out["revenue_segments_daily"] = rev
    if g is not None and netted is not None:
        multi = np.bincount(g.gid_sorted) > 1
        ts = naive_utc(g.ts)
        netted.append(pd.DataFrame({
            "start": pd.Series(ts[g.first_idx[multi]]).dt.tz_localize("UTC"),
            "end": pd.Series(ts[g.last_idx[multi]]).dt.tz_localize("UTC"),
        }))  # fmt: skip
    return out


def _value_counts(events: pd.DataFrame, attrs: pd.DataFrame, dim: str) -> pd.Series:
    """Distinct customers per value of ``dim`` (what folding ranks by)."""
    if dim in PER_SUBSCRIPTION:
        values = _raw_values(events, dim)
        known = values.notna().to_numpy() & events["subject"].notna().to_numpy()
        pairs = pd.DataFrame({"p": events["product"].astype(object).to_numpy()[known],
                              "s": events["subject"].astype(object).to_numpy()[known],
                              "v": values.astype(object).to_numpy()[known]}).drop_duplicates()  # fmt: skip
        return pairs.groupby("v").size()
    return attrs[dim].dropna().value_counts()


def _subscription_parts(
    g: _Groups, settings: MetricsSettings, attrs: pd.DataFrame, kept: dict[str, set[str]],
    portfolio: bool = True,
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame, pd.Series]:
    """What the subscription measurements are assembled from, each a sum over customers
    (``growthwatch.metrics.segment_totals`` keeps their totals): the flow rows per segment
    key and day (the portfolio's included), the movements (churn from the start
    population), the per-customer MRR changes (trailing 12 months, the portfolio's
    included unless not ``portfolio``) and each product's first day. The flow frame is
    empty when nothing moves MRR or customers (a trial alone)."""
    tz = settings.timezone
    first_day = local_floor(g.sub["ts"], "D", tz).groupby(g.sub["product"].astype(object)).min()
    flows, moves, changes = [], [], []
    cache: dict[str, np.ndarray] = {}
    for dim in settings.segments.dimensions:
        before, after = _event_segments(g, dim, attrs, kept[dim], cache)
        split = _split(g, before, after)
        f, m, c = _flows(g, dim, split, attrs, kept[dim], tz)
        m = m.assign(key=_key(m["product"].to_numpy(), dim, m["seg_before"].to_numpy()),
                     dim=dim)  # fmt: skip
        flows.append(f)
        moves.append(m)
        changes.append(c)
    flow = pd.concat(flows, ignore_index=True)
    move = pd.concat(moves, ignore_index=True)
    change = pd.concat(changes, ignore_index=True)
    if flow.empty or not portfolio:
        return flow, move, change, first_day
    # the portfolio: the same rows under product ``all`` (customers stay per product)
    flow = pd.concat([flow, flow.assign(key=_to_portfolio(flow["key"]))], ignore_index=True)
    change = pd.concat([change, change.assign(key=_to_portfolio(change["key"]))],
                       ignore_index=True)  # fmt: skip
    return flow, move, change, first_day


def _subscription_segments(
    g: _Groups,
    settings: MetricsSettings,
    attrs: pd.DataFrame,
    kept: dict[str, set[str]],
    until: pd.Timestamp,
) -> dict[str, pd.DataFrame]:
    flow, move, change, first_day = _subscription_parts(g, settings, attrs, kept)
    if flow.empty:  # events, but none that moves MRR or customers (a trial alone)
        return {}
    changes = change.rename(columns={"key": "product"})[["time", "product", "customer", "delta"]]

    def churned(freq: str, tz_: str) -> pd.Series:
        return _churned_from_start(move, freq, tz_)

    return assembled(flow, churned, None, changes, first_day, settings, until)


Churned = Callable[[str, str], pd.Series]
Trailing = Callable[[pd.DataFrame, str, pd.DataFrame], tuple[np.ndarray, np.ndarray]]


def assembled(
    flow: pd.DataFrame,
    churned: Churned,
    trailing: Trailing | None,
    changes: pd.DataFrame | None,
    first_day: pd.Series,
    settings: MetricsSettings,
    until: pd.Timestamp,
    coarse: np.ndarray | None = None,
) -> dict[str, pd.DataFrame]:
    """The subscription measurements from flow rows (one per piece, or their sums per key
    and day), the churned-from-start counts, the trailing-12-month sums (``trailing``, or
    ``churn_periods``' own from ``changes``) and each product's first day. ``coarse``:
    ``_daily``'s (the rows before its days are not the reference's, the caller drops
    them)."""
    tz = settings.timezone
    first_day = first_day.copy()
    first_day[PORTFOLIO] = first_day.min()
    daily = _daily(flow, until, tz, coarse)
    state = MrrResult(
        movements=pd.DataFrame(columns=["time", "product", "customer", "kind", "paid_before"]),
        daily=daily[["time", "product", *MONEY, "active", "new_customers", "reactivated_customers",
                     "churned_customers", "cancellations", "paused_customers",
                     "churned_delinquent"]],
        changes=(pd.DataFrame(columns=["time", "product", "customer", "delta"])
                 if changes is None else changes),
    )  # fmt: skip
    day = churn_periods(state, "D", tz=tz, until=until, churned_from_start=churned)
    month = churn_periods(state, "MS", settings.ltv_months, tz=tz, until=until,
                          churned_from_start=churned, trailing=trailing)  # fmt: skip
    moved_d = daily.set_index(["product", "time"])[list(MOVED)]
    moved_m = (daily.assign(time=local_floor(daily["time"], "MS", tz))
               .groupby(["product", "time"])[list(MOVED)].sum())  # fmt: skip
    # a segment's month is partial when its product's is (not because the segment began
    # mid-month): the product's first day decides
    first_of_key = pd.Series(first_day.reindex(_per_unique(month["product"], _product_of))
                             .to_numpy(), index=month["product"].to_numpy())  # fmt: skip
    first_of_key = first_of_key[~first_of_key.index.duplicated()]
    month["partial"] = _partial(month, "MS", tz, first_of_key, until)
    result = {}
    for name, frame, moved in (("day", day, moved_d), ("month", month, moved_m)):
        frame = frame[frame["product"] != PORTFOLIO].reset_index(drop=True)
        got = moved.reindex(pd.MultiIndex.from_frame(frame[["product", "time"]])).fillna(0)
        for col in MOVED:
            frame[col] = units(got[col].to_numpy().astype("int64"))
        result[name] = _untangle(frame)
    daily_units = result["day"]
    daily_units["net_change"] = np.round(daily_units["mrr_end"] - daily_units["mrr_start"], 6)
    return {
        "mrr_segments_daily": daily_units,
        "customers_segments_daily": daily_units,
        "churn_segments_monthly": result["month"],
    }


def _to_portfolio(keys: pd.Series) -> np.ndarray:
    return _per_unique(keys, lambda k: PORTFOLIO + _SEP + k.split(_SEP, 1)[1])


def _untangle(frame: pd.DataFrame) -> pd.DataFrame:
    """The composite key column back into the ``product``, ``dimension``, ``segment`` tags."""
    key = frame["product"]
    out = frame.drop(columns=["product"])
    for i, tag in enumerate(("product", "dimension", "segment")):
        out.insert(1 + i, tag, _per_unique(key, functools.partial(_part, i=i)))
    return out


def _part(key: str, i: int) -> str:
    return key.split(_SEP, 2)[i]


def _product_of(key: str) -> str:
    return key.split(_SEP, 1)[0]


def _churned_from_start(
    move: pd.DataFrame, freq: str, tz: str, portfolio: bool = True
) -> pd.Series:
    """Per (segment key, period): customers paying at the period start (of the product, over
    all their movements) with a churn in it, counted in the segment their first churn of
    the period left; the portfolio keys (unless not ``portfolio``) sum the products'."""
    if move.empty:
        return pd.Series(dtype="int64")
    m = move.assign(period=local_floor(move["time"], freq, tz))
    per = ["product", "period", "customer", "dim"]
    first = m.groupby(per, sort=False)["paid_before"].first()
    churns = m[m["kind"] == "churn"].groupby(per, sort=False)["key"].first()
    hit = churns[first.reindex(churns.index).to_numpy(dtype=bool)]
    frame = pd.DataFrame({"key": hit.to_numpy(), "period": hit.index.get_level_values("period")})
    if portfolio:
        frame = pd.concat([frame, frame.assign(key=_to_portfolio(frame["key"]))],
                          ignore_index=True)  # fmt: skip
    return frame.groupby(["key", "period"]).size().astype("int64")


# -- revenue ---------------------------------------------------------------------------------


def _money_segments(
    money: pd.DataFrame, settings: MetricsSettings, attrs: pd.DataFrame,
    kept: dict[str, set[str]],
) -> list[tuple[str, np.ndarray]]:
    """Per dimension, the segment of each money event: its own plan or interval, else its
    customer's first known value (folded)."""
    # folded once per distinct value (or customer), then taken per event
    keys = pd.MultiIndex.from_arrays([money["product"].astype(object), money["subject"].astype(object)])
    pos = None
    out = []
    for dim in settings.segments.dimensions:
        if dim in PER_SUBSCRIPTION:
            codes, uniques = pd.factorize(_raw_values(money, dim).astype(object).to_numpy())
            folded = fold(pd.Series(np.asarray(uniques, dtype=object)), kept[dim])
        else:
            if pos is None:
                pos = attrs.index.get_indexer(keys)
            codes = pos
            folded = fold(pd.Series(attrs[dim].to_numpy(dtype=object)), kept[dim])
        seg = np.where(codes >= 0, folded[np.maximum(codes, 0)] if len(folded) else UNKNOWN,
                       UNKNOWN).astype(object)  # fmt: skip
        out.append((dim, seg))
    return out


def _revenue_segments(
    events: pd.DataFrame, settings: MetricsSettings, attrs: pd.DataFrame, kept: dict[str, set[str]]
) -> pd.DataFrame:
    """Revenue per (day, product, currency, dimension, segment), native amounts exact; the
    reporting-currency amounts are the product row's, shared out so that they add up to it
    exactly (the rounding remainder goes to the segment with the most gross)."""
    money = clean(events, revenue_mod.MONEY_TYPES)
    if money.empty:
        return pd.DataFrame()
    tz = settings.timezone
    product_rows = revenue_mod.revenue(money, settings.fx, "D", tz)
    product_rows = product_rows[product_rows["product"] != PORTFOLIO]
    parts = []
    for dim, seg in _money_segments(money, settings, attrs, kept):
        keyed = money.assign(product=_key(money["product"].astype(object).to_numpy(), dim, seg))
        rows = revenue_mod.revenue(keyed, settings.fx, "D", tz)
        parts.append(rows[rows["product"] != PORTFOLIO])
    return _revenue_finished(_untangle(pd.concat(parts, ignore_index=True)), product_rows,
                             settings)  # fmt: skip


REVENUE_SUMS = ("gross", "refunds", "failed", "payments", "refund_count", "failed_count")


def revenue_sums(
    events: pd.DataFrame, settings: MetricsSettings, attrs: pd.DataFrame, kept: dict[str, set[str]]
) -> pd.DataFrame:
    """What ``revenue_segments_daily`` is assembled from, sums over events (so over
    customers): per (day, key, currency) the native micro-unit sums and counts of
    ``revenue.revenue`` and ``rows`` (events: a row exists when it is positive), for the
    product (key = product) and each segment key.

    The sums are taken over integer codes of (day, key, currency), each assigned in the
    values' sorted order, so one sort of the codes gives the groups in ``groupby``'s
    order: no frame of every money event per dimension (a full run's product group has
    hundreds of thousands), and segments are folded once per distinct value."""
    money = clean(events, revenue_mod.MONEY_TYPES)
    if money.empty:
        return _no_revenue_sums()
    tz = settings.timezone
    amount = micros(money["value"])
    kind = money["type"].to_numpy()
    is_pay = kind == EventType.PAYMENT.value
    is_ref = kind == EventType.REFUND.value
    is_fail = kind == EventType.PAYMENT_FAILED.value
    p_codes, p_names = pd.factorize(money["product"])
    values = np.stack([np.where(is_pay, amount, 0), np.where(is_ref, amount, 0),
                       np.where(is_fail, amount, 0), is_pay.astype("int64"),
                       is_ref.astype("int64"), is_fail.astype("int64"),
                       np.ones(len(money), dtype="int64")], axis=1)  # fmt: skip
    t_codes, t_names = pd.factorize(local_floor(money["ts"], "D", tz), sort=True)
    c_codes, c_names = pd.factorize(money["currency"].astype(object).to_numpy(), sort=True)
    # key codes: the product's, then per dimension one per distinct (product, segment)
    # pair, renumbered in the keys' sorted order
    products = np.asarray(p_names, dtype=object)
    names, codes = [products], [p_codes.astype("int64")]
    for dim, seg in _money_segments(money, settings, attrs, kept):
        s_codes, s_names = pd.factorize(seg)
        pairs, inverse = np.unique(p_codes.astype("int64") * len(s_names) + s_codes,
                                   return_inverse=True)  # fmt: skip
        names.append(np.array([f"{products[i // len(s_names)]}{_SEP}{dim}{_SEP}"
                               f"{s_names[i % len(s_names)]}" for i in pairs], dtype=object))  # fmt: skip
        codes.append(inverse.reshape(-1) + sum(len(n) for n in names[:-1]))
    every = np.concatenate(names)
    rank = np.empty(len(every), dtype="int64")
    rank[np.argsort(every.astype(str), kind="stable")] = np.arange(len(every))
    k_codes, k_names = rank[np.concatenate(codes)], every[np.argsort(rank)]
    n_k, n_c = len(k_names), len(c_names)
    code = ((np.tile(t_codes.astype("int64"), len(codes)) * n_k + k_codes) * n_c
            + np.tile(c_codes.astype("int64"), len(codes)))  # fmt: skip
    order = np.argsort(code, kind="stable")
    code = code[order]
    starts = np.flatnonzero(np.r_[True, code[1:] != code[:-1]])
    sums = np.add.reduceat(np.tile(values, (len(codes), 1))[order], starts, axis=0)
    group = code[starts]
    index = pd.MultiIndex.from_arrays(
        [t_names[group // (n_k * n_c)], np.asarray(k_names, dtype=object)[group // n_c % n_k],
         np.asarray(c_names, dtype=object)[group % n_c]],
        names=["time", "key", "currency"],
    )  # fmt: skip
    return pd.DataFrame(sums.astype("int64"), index=index, columns=[*REVENUE_SUMS, "rows"])


def _no_revenue_sums() -> pd.DataFrame:
    out = pd.DataFrame({c: pd.Series(dtype="int64") for c in (*REVENUE_SUMS, "rows")})
    out.index = pd.MultiIndex.from_arrays(
        [pd.Series([], dtype=TIME_DTYPE), pd.Series([], dtype=object), pd.Series([], dtype=object)],
        names=["time", "key", "currency"])  # fmt: skip
    return out


def revenue_from_sums(sums: pd.DataFrame, settings: MetricsSettings) -> pd.DataFrame:
    """``revenue_segments_daily`` from ``revenue_sums`` (of any number of customers,
    added up): what ``_revenue_segments`` computes from the events."""
    rows = sums[sums["rows"].to_numpy() > 0].reset_index()
    if rows.empty:
        return pd.DataFrame()
    is_segment = np.asarray(rows["key"].astype(str).str.contains(_SEP, regex=False))
    valued = _valued(rows.rename(columns={"key": "product"}), settings)
    return _revenue_finished(_untangle(valued[is_segment].reset_index(drop=True)),
                             valued[~is_segment].reset_index(drop=True), settings)  # fmt: skip


def _valued(out: pd.DataFrame, settings: MetricsSettings) -> pd.DataFrame:
    """Native sums per (day, product, currency) in units and in the reporting currency at
    the day's rate, as ``revenue.revenue`` values its rows (without the portfolio)."""
    out = out.copy()
    revenue_mod.valued(out, settings.fx, settings.timezone)
    return out


def _revenue_finished(
    seg_rows: pd.DataFrame, product_rows: pd.DataFrame, settings: MetricsSettings
) -> pd.DataFrame:
    """The segment rows with their reporting-currency amounts shared out of the product
    rows', plus the portfolio's."""
    base = ["time", "product", "currency"]
    for col in ("gross_rc", "refunds_rc"):
        seg_rows[col] = _shared_out(seg_rows, product_rows, base, col)
    seg_rows["net_rc"] = np.round(seg_rows["gross_rc"] - seg_rows["refunds_rc"], 6)
    total = (seg_rows.groupby(["time", "dimension", "segment"], as_index=False, sort=True)
             [["gross_rc", "refunds_rc", "payments", "refund_count", "failed_count"]].sum())  # fmt: skip
    total["gross_rc"] = np.round(total["gross_rc"], 6)
    total["refunds_rc"] = np.round(total["refunds_rc"], 6)
    total["net_rc"] = np.round(total["gross_rc"] - total["refunds_rc"], 6)
    total.insert(1, "product", PORTFOLIO)
    total["currency"] = settings.fx.reporting
    for native in ("gross", "refunds", "net"):
        total[native] = total[f"{native}_rc"]
    cols = ["time", "product", "currency", "dimension", "segment", "gross", "refunds", "net",
            "payments", "refund_count", "failed_count", "gross_rc", "refunds_rc",
            "net_rc"]  # fmt: skip
    out = pd.concat([seg_rows[cols], total[cols]], ignore_index=True)
    out["time"] = out["time"].astype(TIME_DTYPE)
    return out.sort_values(["product", "dimension", "segment", "currency", "time"],
                           kind="stable").reset_index(drop=True)  # fmt: skip


def _shared_out(
    seg_rows: pd.DataFrame, product_rows: pd.DataFrame, base: list[str], col: str
) -> np.ndarray:
    """``col`` of each segment row corrected so that, per product row and dimension, the
    segments add up to the product row's value in micro-units."""
    micro = np.round(seg_rows[col].to_numpy() * 1_000_000).astype("int64")
    want = product_rows.set_index(base)[col]
    idx = pd.MultiIndex.from_frame(seg_rows[base])
    target = np.round(want.reindex(idx).to_numpy() * 1_000_000).astype("int64")
    group = [*base, "dimension"]
    have = pd.Series(micro).groupby([seg_rows[c] for c in group], sort=False).transform("sum")
    gap = target - have.to_numpy()
    # the remainder goes to the largest-gross segment of each group (ties: name)
    rank = seg_rows.assign(_g=-seg_rows["gross"], _pos=np.arange(len(seg_rows)))
    rank = rank.sort_values([*group, "_g", "segment"], kind="stable")
    first = rank.drop_duplicates(group)["_pos"].to_numpy()
    fix = np.zeros(len(seg_rows), dtype="int64")
    fix[first] = gap[first]
    return units(micro + fix)
