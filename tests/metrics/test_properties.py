"""Property tests on random event streams (hypothesis).

1. The MRR identity holds to the cent for every product and day, FX impact is exactly 0
   without foreign currencies, and the stock and active-customer count agree with an
   independent, naive recomputation from each subscription's last state.
2. Incremental updates (events appended in chunks, out of order, with replays) leave the
   stores exactly as a full recompute over the whole ledger does.
"""

from __future__ import annotations

import math
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

import numpy as np
import pandas as pd
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from metric_cases import ev, frame, t

from growthwatch.events import GrowthEvent
from growthwatch.metrics.customers import churn_periods
from growthwatch.metrics.engine import MetricsEngine
from growthwatch.metrics.fx import FxTable
from growthwatch.metrics.mrr import compute_mrr
from growthwatch.metrics.settings import Funnel, MetricsSettings
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
    funnels=(Funnel("f", ("signup", "activation", "payment"), window_days=3),),
)
MRR_VALUES = ("0", "0", "10", "25.5", "99.99", "100", "333.333333")
START = t("2026-01-01")

sub_event = st.tuples(
    st.sampled_from(["p1", "p2"]),
    st.sampled_from(["c1", "c2", "c3"]),
    st.sampled_from(["s1", "s2"]),
    st.integers(0, 14 * 24 * 60),  # minute of the two weeks
    st.sampled_from(MRR_VALUES),
    st.sampled_from(MRR_VALUES),
    st.sampled_from(["USD", "USD", "EUR"]),
)


def build_subs(raw: list[tuple[Any, ...]]) -> list[GrowthEvent]:
    out = []
    for i, (product, customer, sid, minute, before, after, currency) in enumerate(raw):
        kind = "subscription_changed" if Decimal(before) and Decimal(after) else (
            "subscription_started" if Decimal(after) else "subscription_cancelled"
        )  # fmt: skip
        out.append(
            ev(kind, START + timedelta(minutes=minute), customer, product=product,
               before=before, after=after, currency=currency, sid=sid, source_id=f"s{i}")
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


def naive_stock(events: list[GrowthEvent], product: str, end: pd.Timestamp) -> float:
    """MRR at ``end`` the slow, obvious way: walk the events in ledger order, keep each
    subscription's state, currency and period rate (re-set when it starts, restarts,
    changes currency or renews), and value every state at its period rate."""
    subs: dict[tuple[str, str], tuple[Decimal, str, float]] = {}
    for e in sorted(events, key=lambda e: (e.timestamp, e.idempotency_key)):
        if e.product != product or e.timestamp >= end:
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
        raw = [(*r[:6], "USD") for r in raw]
    events = build_subs(raw) + build_renewals(renewals, raw)
    until = pd.Timestamp(START + timedelta(days=16))
    state = compute_mrr(frame(*events), SETTINGS, until)
    days = churn_periods(state, "D")
    flows = (
        days["new"] + days["expansion"] + days["reactivation"] - days["contraction"]
        - days["churn"]
    )  # fmt: skip
    assert np.allclose(days["mrr_start"] + flows + days["fx_impact"], days["mrr_end"], atol=0.005)
    if not foreign:
        assert (days["fx_impact"] == 0).all()
    else:  # FX impact only where a renewal re-set a period's rate
        renewal_days = {pd.Timestamp(e.timestamp.date(), tz="UTC") for e in events
                        if e.type == "payment"}  # fmt: skip
        assert (days.loc[~days["time"].isin(renewal_days), "fx_impact"] == 0).all()
    ordered = sorted(events, key=lambda e: (e.timestamp, e.idempotency_key))
    for row in days[days["product"] != "all"].itertuples():
        end = row.time + pd.Timedelta(days=1)
        expected = naive_stock(events, row.product, end)
        assert math.isclose(row.mrr_end, expected, abs_tol=0.00001 * (len(events) + 1))
        last: dict[tuple[str, str], GrowthEvent] = {}
        for e in ordered:
            if e.product == row.product and e.timestamp < end and e.type != "payment":
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


other_event = st.tuples(
    st.sampled_from(["payment", "refund", "signup", "activation", "active_use", "session", "kpi"]),
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
        if kind in ("payment", "refund"):
            e = ev(kind, when, user, product=product, value=value, currency=currency)
        elif kind == "session":
            e = ev(kind, when, None, product=product, value=value, channel=user)
        elif kind == "kpi":
            e = ev(kind, when, None, product=product, value=value, kpi=user)
        else:
            e = ev(kind, when, user, product=product)
        out.append(GrowthEvent(**{**_fields(e), "source_id": f"o{i}"}))
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
)
def test_incremental_equals_full_recompute(
    subs: list[tuple[Any, ...]],
    others: list[tuple[Any, ...]],
    rnd: Any,
    chunks: int,
    in_order: bool,
) -> None:
    events = build_subs(subs) + build_other(others)
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
        engine = MetricsEngine(ledger, SETTINGS)
        for part in parts:
            if part:
                ledger.append(part)
                engine.update([incremental])
    full = MemoryStore()
    with Ledger() as ledger:
        ledger.append(events)
        MetricsEngine(ledger, SETTINGS).recompute([full])
    assert incremental.points.keys() == full.points.keys()
    for key, fields in full.points.items():
        got = incremental.points[key]
        assert got.keys() == fields.keys(), key
        for name, value in fields.items():
            assert math.isclose(got[name], value, rel_tol=1e-12, abs_tol=1e-9), (key, name)
