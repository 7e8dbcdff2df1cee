"""Property tests on random event streams (hypothesis).

1. The MRR identity holds to the cent for every product and day, FX impact is exactly 0
   without foreign currencies, and the stock and active-customer count agree with an
   independent, naive recomputation from each subscription's last state.
2. Incremental updates (events appended in chunks, out of order, with replays) leave the
   stores exactly as a full recompute over the whole ledger does.
"""

from __future__ import annotations

import dataclasses
import math
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

import numpy as np
import pandas as pd
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from metric_cases import ev, frame, t

from growthwatch.events import GrowthEvent
from growthwatch.metrics.customers import churn_periods
from growthwatch.metrics.engine import MetricsEngine
from growthwatch.metrics.fx import FxTable
from growthwatch.metrics.mrr import compute_mrr
from growthwatch.metrics.settings import Funnel, MetricsSettings, SegmentSettings
from growthwatch.points import PointBatch
from growthwatch.stores.ledger import Ledger

FX = FxTable(
    "USD",
    {"EUR": ((date(2026, 1, 1), Decimal("1.1")), (date(2026, 1, 4), Decimal("1.234567")),
             (date(2026, 1, 9), Decimal("0.9")))},
)  # fmt: skip
SETTINGS = MetricsSettings(
    fx=FX,
    activation_window_days=2,
    trial_conversion_days=3,  # trial cohorts mature inside the two weeks
    funnels=(Funnel("f", ("signup", "activation", "payment"), window_days=3),),
)
MRR_VALUES = ("0", "0", "10", "25.5", "99.99", "100", "333.333333")
START = t("2026-01-01")

# Minutes of the two weeks: any minute, or one close to a midnight (netting across the
# day boundary) or on a few shared instants (same-second events of one subscription).
MINUTE = st.one_of(
    st.integers(0, 14 * 24 * 60),
    st.builds(lambda d, m: d * 24 * 60 + m, st.integers(1, 13), st.integers(-50, 50)),
    st.sampled_from([3 * 24 * 60 + 720, 5 * 24 * 60]),
)
sub_event = st.tuples(
    st.sampled_from(["p1", "p2"]),
    st.sampled_from(["c1", "c2", "c3"]),
    st.sampled_from(["s1", "s2"]),
    MINUTE,
    st.sampled_from(MRR_VALUES),
    st.sampled_from(MRR_VALUES),
    st.sampled_from(["USD", "USD", "EUR"]),
    st.sampled_from(["", "", "", "pause"]),  # a drop to 0 may be a pause, a rise a resume
    st.sampled_from(["basic", "basic", "pro", ""]),  # the plan (segments): changes move MRR
    st.sampled_from(["", "", "DE", "FR"]),  # a customer's country, first known value wins
)


def build_subs(raw: list[tuple[Any, ...]]) -> list[GrowthEvent]:
    out = []
    for i, (product, customer, sid, minute, before, after, currency, *rest) in enumerate(raw):
        seg: dict[str, Any] = {}
        if len(rest) > 2:
            seg = {k: v for k, v in (("plan", rest[1]), ("country", rest[2]),
                                     ("interval", "year" if rest[1] == "pro" else "month")) if v}
        kind = "subscription_changed" if Decimal(before) and Decimal(after) else (
            "subscription_started" if Decimal(after) else "subscription_cancelled"
        )  # fmt: skip
        if rest and rest[0] == "pause" and not Decimal(after):
            kind = "subscription_paused"
        elif rest and rest[0] == "pause" and not Decimal(before) and Decimal(after):
            kind = "subscription_resumed"
        out.append(
            ev(kind, START + timedelta(minutes=minute), customer, product=product,
               before=before, after=after, currency=currency, sid=sid, source_id=f"s{i}",
               **seg)
        )  # fmt: skip
    return out


# A renewal pays for one of the generated subscriptions: (which event's subscription, when).
renewal = st.tuples(st.integers(0, 1000), st.integers(0, 14 * 24 * 60))


def build_renewals(
    raw: list[tuple[Any, ...]], subs: list[tuple[Any, ...]]
) -> list[GrowthEvent]:
    out = []
    for i, (which, minute) in enumerate(raw):
        product, customer, sid = subs[which % len(subs)][:3]
        out.append(
            ev("payment", START + timedelta(minutes=minute), customer, product=product,
               value="1", currency="USD", subscription=sid, source_id=f"r{i}")
        )  # fmt: skip
    return out


def chain_sorted(events: list[GrowthEvent]) -> list[GrowthEvent]:
    """Events by time; same-instant events of one subscription along their MRR chain (the
    slow way: try every order of the tie and keep the first that chains from the state)."""
    import itertools

    ordered = sorted(events, key=lambda e: (e.timestamp, e.idempotency_key))
    state: dict[tuple[str, str, str], Decimal] = {}
    out: list[GrowthEvent] = []
    i = 0
    while i < len(ordered):
        j = i
        while j < len(ordered) and ordered[j].timestamp == ordered[i].timestamp:
            j += 1
        tie = ordered[i:j]
        groups: dict[tuple[str, str, str], list[GrowthEvent]] = {}
        for e in tie:
            key = (e.product, str(e.subject), str(e.metadata.get("subscription")))
            groups.setdefault(key if e.mrr_after is not None else ("", "", e.idempotency_key),
                              []).append(e)  # fmt: skip
        for key, group in groups.items():
            if len(group) > 1 and len(group) <= 6:
                # The rule: the longest chain continuing from the state (the first such
                # in key order), then the rest in key order; if nothing continues from
                # the state, the longest chain from any first event.
                start = state.get(key, Decimal(0))

                def prefix(perm: tuple[GrowthEvent, ...], cur: Decimal) -> int:
                    n = 0
                    for e in perm:
                        if e.mrr_before != cur:
                            break
                        n, cur = n + 1, e.mrr_after or Decimal(0)
                    return n

                perms = list(itertools.permutations(group))
                scores = [prefix(p, start) for p in perms]
                if max(scores) == 0:
                    scores = [1 + prefix(p[1:], p[0].mrr_after or Decimal(0)) for p in perms]
                group[:] = list(perms[scores.index(max(scores))])
            for e in group:
                if e.mrr_after is not None:
                    state[key] = e.mrr_after
        # keep the tie's subscriptions in ledger order, each along its chain
        for e in tie:
            key = (e.product, str(e.subject), str(e.metadata.get("subscription")))
            key = key if e.mrr_after is not None else ("", "", e.idempotency_key)
            if groups.get(key):
                out.extend(groups.pop(key))
        i = j
    return out


def netted_times(ordered: list[GrowthEvent]) -> dict[str, Any]:
    """Each subscription event's netting time, the slow way: per customer, a change within
    60 minutes of the previous one joins its group, dated at the group's first change."""
    out: dict[str, Any] = {}
    last: dict[tuple[str, str], tuple[Any, Any]] = {}  # customer -> (previous time, group)
    for e in ordered:
        if e.mrr_after is None:
            continue
        who = (e.product, str(e.subject))
        prev = last.get(who)
        group = prev[1] if prev and e.timestamp - prev[0] <= timedelta(minutes=60) else (
            e.timestamp)  # fmt: skip
        last[who] = (e.timestamp, group)
        out[e.idempotency_key] = group
    return out


def naive_stock(events: list[GrowthEvent], product: str, end: pd.Timestamp) -> float:
    """MRR at ``end`` the slow, obvious way: walk the events in ledger order, keep each
    subscription's state, currency and period rate (re-set when it starts, restarts,
    changes currency or renews), and value every state at its period rate."""
    subs: dict[tuple[str, str], tuple[Decimal, str, float]] = {}
    ordered = chain_sorted(events)
    when = netted_times(ordered)
    for e in ordered:
        if e.product != product or when.get(e.idempotency_key, e.timestamp) >= end:
            continue
        key = (str(e.subject), str(e.metadata.get("subscription")))
        day = e.timestamp.date()
        if e.type == "payment":
            if key in subs:
                state, cur, _ = subs[key]
                subs[key] = (state, cur, FX.rate_on(cur, day))
            continue
        state, cur = e.mrr_after or Decimal(0), str(e.currency)
        old = subs.get(key)
        if old is None or old[0] == 0 or old[1] != cur:
            subs[key] = (state, cur, FX.rate_on(cur, day))
        else:
            subs[key] = (state, cur, old[2])
    return sum(round(float(s) * 1_000_000 * r) / 1_000_000 for s, _, r in subs.values())


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(sub_event, min_size=1, max_size=25),
    st.lists(renewal, max_size=6),
    st.booleans(),
)
def test_mrr_identity_and_independent_stock(
    raw: list[tuple[Any, ...]], renewals: list[tuple[Any, ...]], foreign: bool
) -> None:
    if not foreign:
        raw = [(*r[:6], "USD", *r[7:]) for r in raw]
    events = build_subs(raw) + build_renewals(renewals, raw)
    until = pd.Timestamp(START + timedelta(days=16))
    state = compute_mrr(frame(*events), SETTINGS, until)
    days = churn_periods(state, "D")
    flows = (
        days["new"] + days["expansion"] + days["reactivation"] + days["resumed"]
        - days["contraction"] - days["churn"] - days["paused"]
    )  # fmt: skip
    assert np.allclose(days["mrr_start"] + flows + days["fx_impact"], days["mrr_end"], atol=0.005)
    if not foreign:
        assert (days["fx_impact"] == 0).all()
    else:  # FX impact only where a renewal re-set a period's rate
        renewal_days = {pd.Timestamp(e.timestamp.date(), tz="UTC") for e in events
                        if e.type == "payment"}  # fmt: skip
        assert (days.loc[~days["time"].isin(renewal_days), "fx_impact"] == 0).all()
    ordered = chain_sorted(events)
    for row in days[days["product"] != "all"].itertuples():
        end = row.time + pd.Timedelta(days=1)
        expected = naive_stock(events, row.product, end)
        assert math.isclose(row.mrr_end, expected, abs_tol=0.00001 * (len(events) + 1))
        last: dict[tuple[str, str], GrowthEvent] = {}
        when = netted_times(ordered)
        for e in ordered:
            if e.product == row.product and e.type != "payment" and when[e.idempotency_key] < end:
                last[(str(e.subject), str(e.metadata["subscription"]))] = e
        totals: dict[str, Decimal] = {}
        for (customer, _), e in last.items():
            totals[customer] = totals.get(customer, Decimal(0)) + (e.mrr_after or Decimal(0))
        assert row.customers_end == sum(1 for v in totals.values() if v > 0)
    assert (days["customers_end"] >= 0).all()


class MemoryStore:
    """Keyed-overwrite store for comparing runs quickly: a field is replaced by a new
    value and removed by an undefined one (NaN), the contract of both real stores."""

    def __init__(self) -> None:
        self.points: dict[tuple[Any, ...], dict[str, Any]] = {}

    def write(self, batches: list[PointBatch]) -> int:
        for b in batches:
            for row in b.frame.itertuples(index=False):
                values = row._asdict()
                key = (b.measurement, tuple(values[tag] for tag in b.tags), values["time"])
                fields = self.points.setdefault(key, {})
                for f in b.fields:
                    v = values[f]
                    if isinstance(v, float) and math.isnan(v):
                        fields.pop(f, None)
                    else:
                        fields[f] = v
        return sum(len(b) for b in batches)

    def delete(
        self,
        measurement: str,
        *,
        tags: dict[str, Any] | None = None,
        start: Any = None,
        end: Any = None,
    ) -> None:
        """The ``SeriesDeleter`` seam: tag values (one or several), [start, end)."""
        names = {"cohort_retention": ("product", "basis", "age")}
        from growthwatch.metrics.schema import BY_NAME

        order = BY_NAME[measurement].tags if measurement in BY_NAME else names.get(measurement, ())
        for key in list(self.points):
            if key[0] != measurement:
                continue
            values = dict(zip(order, key[1], strict=False))
            ok = all(values.get(k) in ([v] if isinstance(v, str) else list(v))
                     for k, v in (tags or {}).items())  # fmt: skip
            ok = ok and (start is None or key[2] >= start) and (end is None or key[2] < end)
            if ok:
                del self.points[key]


other_event = st.tuples(
    st.sampled_from(["payment", "refund", "signup", "activation", "active_use", "session", "kpi",
                     "payment_failed"]),  # a failure makes a later churn of c1 delinquent
    st.sampled_from(["p1", "p2"]),
    st.sampled_from(["u1", "u2", "c1"]),
    st.integers(0, 12 * 24 * 60),
    st.sampled_from(["1", "2.5", "19.99"]),
    st.sampled_from(["USD", "EUR"]),
)


def build_other(raw: list[tuple[Any, ...]]) -> list[GrowthEvent]:
    out = []
    for i, (kind, product, user, minute, value, currency) in enumerate(raw):
        when = START + timedelta(minutes=minute)
        if kind in ("payment", "refund", "payment_failed"):
            e = ev(kind, when, user, product=product, value=value, currency=currency)
        elif kind == "session":  # per-visitor (attributes that user's signups) or aggregate
            visitor = user if user != "c1" else None
            e = ev(kind, when, visitor, product=product, value=1 if visitor else value,
                   channel=f"ch{minute % 3}")  # fmt: skip
        elif kind == "kpi":
            e = ev(kind, when, None, product=product, value=value, kpi=user)
        else:
            e = ev(kind, when, user, product=product)
        out.append(GrowthEvent(**{**_fields(e), "source_id": f"o{i}"}))
    return out


# A trial of a generated customer and subscription: (product, customer, subscription,
# minute, days to its metadata trial_end or None: the conversion window then)
trial_event = st.tuples(
    st.sampled_from(["p1", "p2"]),
    st.sampled_from(["c1", "c2", "c3"]),
    st.sampled_from(["s1", "s2", "t1"]),
    st.integers(0, 12 * 24 * 60),
    st.sampled_from([None, None, 1, 5]),
)


def build_trials(raw: list[tuple[Any, ...]]) -> list[GrowthEvent]:
    out = []
    for i, (product, customer, sid, minute, days) in enumerate(raw):
        when = START + timedelta(minutes=minute)
        extra = {} if days is None else {"trial_end": (when + timedelta(days=days)).isoformat()}
        out.append(ev("trial_started", when, customer, product=product, before=0, after=0,
                      sid=sid, source_id=f"t{i}", **extra))  # fmt: skip
    return out


def _fields(e: GrowthEvent) -> dict[str, Any]:
    return {f: getattr(e, f) for f in ("product", "type", "timestamp", "value", "source",
                                       "currency", "subject", "metadata")}  # fmt: skip


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(sub_event, max_size=14),
    st.lists(other_event, min_size=1, max_size=30),
    st.randoms(use_true_random=False),
    st.integers(1, 3),
    st.booleans(),
    st.sampled_from(["UTC", "Europe/Berlin"]),
    st.lists(trial_event, max_size=5),
    st.sampled_from([1, 50]),
)
def test_incremental_equals_full_recompute(
    subs: list[tuple[Any, ...]],
    others: list[tuple[Any, ...]],
    rnd: Any,
    chunks: int,
    in_order: bool,
    tz: str,
    trials: list[tuple[Any, ...]],
    max_values: int,
) -> None:
    """Whole stores compared (every key and field, rows that stopped existing included),
    with late and out-of-order events, replays, same-second events, pauses and netting
    across midnight, in UTC and in a reporting timezone; segments by plan, interval,
    country and channel, with one value kept per dimension (the rest folded into other,
    which a late event can re-rank) or fifty."""
    settings = dataclasses.replace(SETTINGS, timezone=tz,
                                   segments=SegmentSettings(max_values=max_values))
    events = build_subs(subs) + build_other(others) + build_trials(trials)
    if tz != "UTC":  # Berlin runs over its spring DST change (2026-03-29, a 23-hour day)
        shift = t("2026-03-22") - START
        events = [dataclasses.replace(e, timestamp=e.timestamp + shift) for e in events]
    if in_order:  # mostly in time order, as live data arrives, with a few late ones
        events.sort(key=lambda e: e.timestamp)
        for _ in range(2):
            i, j = rnd.randrange(len(events)), rnd.randrange(len(events))
            events[i], events[j] = events[j], events[i]
    else:  # arrival order unrelated to time: later chunks hold older events
        rnd.shuffle(events)
    cuts = sorted(rnd.sample(range(1, len(events) + 1), min(chunks, len(events))))
    parts = [events[a:b] for a, b in zip([0, *cuts], [*cuts, len(events)], strict=False)]
    parts[-1] = parts[-1] + events[: len(events) // 3]  # replays of already stored events

    incremental = MemoryStore()
    with Ledger() as ledger:
        engine = MetricsEngine(ledger, settings)
        for part in parts:
            if part:
                ledger.append(part)
                # live updates (a webhook's) defer the costly families to the next one
                # that is not live, which must then rewrite all they put off
                engine.update([incremental], live=rnd.random() < 0.5)
        engine.update([incremental])  # the catch-up (a noop when nothing was put off)
        assert not engine.state.deferred
    full = MemoryStore()
    with Ledger() as ledger:
        ledger.append(events)
        MetricsEngine(ledger, settings).recompute([full])
    assert incremental.points.keys() == full.points.keys()
    for key, fields in full.points.items():
        got = incremental.points[key]
        assert got.keys() == fields.keys(), key
        for name, value in fields.items():
            assert math.isclose(got[name], value, rel_tol=1e-12, abs_tol=1e-9), (key, name)


# -- segments: the sums over one dimension's segments are the product series ----------------

# segment measurement -> (product measurement, the fields that add up as they are)
_SEGMENT_SUMS = {
    "mrr_segments_daily": ("mrr_daily", ("mrr_end", "new", "churn", "reactivation", "fx_impact",
                           "net_change", "paused", "resumed", "paused_mrr", "arr",
                           "churn_voluntary", "churn_delinquent")),
    "customers_segments_daily": ("customers_daily", ("customers_end", "customers_start",
                                 "new_customers", "reactivated_customers", "churned_customers",
                                 "churned", "cancellations", "customers_paused",
                                 "churned_delinquent")),
    "churn_segments_monthly": ("churn_monthly", ("customers_start", "customers_end", "churned",
                               "new_customers", "reactivated_customers", "churned_customers",
                               "customers_paused", "churned_delinquent", "mrr_start", "mrr_end",
                               "new", "churn", "reactivation", "fx_impact", "paused", "resumed",
                               "paused_mrr", "arr", "churn_voluntary", "churn_delinquent")),
    "revenue_segments_daily": ("revenue_daily", ("gross", "refunds", "net", "payments",
                               "refund_count", "failed_count", "gross_rc", "refunds_rc",
                               "net_rc")),
}  # fmt: skip


def _micro(frame: pd.DataFrame, col: str) -> pd.Series:
    return np.round(frame[col].astype("float64") * 1_000_000).astype("int64")


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(sub_event, min_size=1, max_size=25),
    st.lists(renewal, max_size=6),
    st.lists(other_event, max_size=12),
    st.booleans(),
    st.sampled_from([1, 2, 50]),
    st.sampled_from(["UTC", "Europe/Berlin"]),
)
def test_segment_series_sum_exactly_to_the_product_series(
    raw: list[tuple[Any, ...]],
    renewals: list[tuple[Any, ...]],
    others: list[tuple[Any, ...]],
    foreign: bool,
    max_values: int,
    tz: str,
) -> None:
    """For every dimension, product (and the portfolio) and bucket, in micro-units: every
    additive field summed over the segments equals the product measurement's field;
    expansion and contraction do after taking out the moves between segments, and what
    moved out of segments moved into others."""
    from growthwatch.metrics.engine import compute

    if not foreign:
        raw = [(*r[:6], "USD", *r[7:]) for r in raw]
    events = build_subs(raw) + build_renewals(renewals, raw) + build_other(others)
    settings_ = dataclasses.replace(SETTINGS, timezone=tz,
                                    segments=SegmentSettings(max_values=max_values))
    out = compute(frame(*events), settings_, pd.Timestamp(START + timedelta(days=16)))
    checked = 0
    for seg_name, (name, fields) in _SEGMENT_SUMS.items():
        product = out.get(name)
        if product is None or product.empty:
            assert seg_name not in out or out[seg_name].empty, seg_name
            continue
        seg = out[seg_name]
        keys = ["time", "product", *(["currency"] if "currency" in product else [])]
        for dim in ("plan", "interval", "country", "channel"):
            part = seg[seg["dimension"] == dim]
            assert not part.empty, (seg_name, dim)
            if max_values < 50:
                values = set(part["segment"]) - {"other", "unknown"}
                assert len(values) <= max_values, (seg_name, dim, values)
            sums = {f: _micro(part, f).groupby([part[k] for k in keys]).sum() for f in fields}
            if "moved_in" in part:
                for f, moved in (("expansion", "moved_in"), ("contraction", "moved_out")):
                    net = _micro(part, f) - _micro(part, moved)
                    sums[f] = net.groupby([part[k] for k in keys]).sum()
                moved_in = _micro(part, "moved_in").groupby([part[k] for k in keys]).sum()
                moved_out = _micro(part, "moved_out").groupby([part[k] for k in keys]).sum()
                assert (moved_in == moved_out).all(), (seg_name, dim)
            want = product.set_index(keys)
            for f, got in sums.items():
                expected = _micro(want, f)
                both = pd.concat([got.rename("got"), expected.rename("want")], axis=1).fillna(0)
                bad = both[both["got"] != both["want"]]
                assert bad.empty, (seg_name, dim, f, bad.head())
                checked += 1
    assert checked > 0


# -- bounded memory: a recompute streamed in time chunks equals the one-piece recompute -----


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(sub_event, max_size=10),
    st.lists(other_event, min_size=1, max_size=40),
    st.sampled_from(["UTC", "Europe/Berlin"]),
    st.sampled_from([1, 2, 5, 13]),
    st.booleans(),
)
# Berlin, a product (p1) first seen after the early chunks, which end at UTC midnights
# inside a Berlin day: those chunks' grids once held a p1 row no later chunk rewrote.
@example(
    subs=[("p1", "c1", "s1", 1057, "0", "0", "USD", "", "basic", ""),
          ("p1", "c1", "s1", 0, "0", "0", "USD", "", "basic", ""),
          ("p1", "c1", "s1", 588, "0", "0", "USD", "", "pro", ""),
          ("p1", "c1", "s1", 5040, "333.333333", "10", "USD", "pause", "basic", ""),
          ("p1", "c1", "s2", 2893, "99.99", "100", "USD", "pause", "", "FR")],
    others=[("active_use", "p2", "u1", 491, "1", "EUR"), ("session", "p1", "u2", 3912, "1", "EUR"),
            ("active_use", "p2", "c1", 1857, "19.99", "EUR"),
            ("activation", "p1", "u2", 7952, "1", "USD"),
            ("active_use", "p2", "u2", 211, "19.99", "USD"),
            ("activation", "p1", "u1", 11496, "19.99", "USD"),
            ("session", "p1", "u1", 1500, "2.5", "EUR"), ("activation", "p2", "u1", 2114, "2.5", "EUR"),
            ("kpi", "p2", "u2", 121, "1", "USD"), ("payment_failed", "p1", "u1", 17280, "2.5", "EUR"),
            ("payment", "p1", "u2", 1785, "19.99", "EUR"), ("session", "p2", "u2", 179, "1", "USD"),
            ("kpi", "p2", "c1", 529, "2.5", "USD"), ("signup", "p2", "u1", 322, "19.99", "EUR"),
            ("kpi", "p2", "c1", 14061, "1", "EUR"), ("session", "p1", "c1", 357, "19.99", "USD")],
    tz="Europe/Berlin",
    chunk_events=1,
    from_since=True,
)  # fmt: skip
def test_recompute_in_time_chunks_equals_one_piece(
    subs: list[tuple[Any, ...]],
    others: list[tuple[Any, ...]],
    tz: str,
    chunk_events: int,
    from_since: bool,
) -> None:
    """``chunk_events`` (what ``metrics.memory_limit_mb`` sets) as low as one event: the
    families that stream (product, lifecycle, traffic, revenue, KPIs) run as one chunk per
    few days, each seeing the ledger before its end; the whole store, rows that stopped
    existing included, must be what one piece writes. Also for a recompute of a range."""
    events = build_subs(subs) + build_other(others)
    if tz != "UTC":  # over Berlin's spring DST change (a 23-hour day)
        shift = t("2026-03-22") - START
        events = [dataclasses.replace(e, timestamp=e.timestamp + shift) for e in events]
    base = dataclasses.replace(SETTINGS, timezone=tz)
    since = min(e.timestamp for e in events) + timedelta(days=3) if from_since else None
    stores = []
    for chunk in (10**9, chunk_events):
        store = MemoryStore()
        with Ledger() as ledger:
            ledger.append(events)
            engine = MetricsEngine(ledger, dataclasses.replace(base, chunk_events=chunk))
            engine.chunk_days = 1  # chunks of a day: the most boundaries two weeks can have
            engine.recompute([store])
            if since is not None:  # a second recompute of a range over the full one
                engine.recompute([store], since=pd.Timestamp(since))
        stores.append(store)
    whole, chunked = stores
    assert chunked.points.keys() == whole.points.keys()
    for key, fields in whole.points.items():
        got = chunked.points[key]
        assert got.keys() == fields.keys(), key
        for name, value in fields.items():
            assert math.isclose(got[name], value, rel_tol=1e-12, abs_tol=1e-9), (key, name)
