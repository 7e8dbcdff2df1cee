"""The segment family's faster paths against their references, on random input:

* ``mrr_totals.trailing_parts`` (one grid for every key) is a plain loop over the keys
  (``loop_over_keys`` below), for any batch size;
* ``SegmentTotals.plus`` (a small difference added in place) is ``combined``;
* an update's assembly from a carried row (``segment_frames_from(..., since=...)``) gives
  the rows from its start that the whole history's assembly gives, over streams long
  enough (about 18 months) that the carry bites, for several ``ltv_months``;
* the engine over such streams: a full run, then late events, gives the full run's stores;
* the full build's first guess of the kept values (``sql/segment_values.distinct_values``)
  is what the pandas counts give, and a value no customer carried first rebuilds nothing.
"""

from __future__ import annotations

import dataclasses
from datetime import timedelta
from typing import Any

import numpy as np
import pandas as pd
import pytest
import sqlglot
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from metric_cases import ev
from sqlglot import ErrorLevel
from test_properties import (
    SETTINGS,
    START,
    MemoryStore,
    build_other,
    build_renewals,
    build_subs,
    other_event,
    renewal,
    sub_event,
)
from test_segment_state import _events, _full, _portfolio, _store_equal, assert_frames_equal

from growthwatch.events import GrowthEvent
from growthwatch.metrics import segments as segments_mod
from growthwatch.metrics._frame import TIME_DTYPE, json_key, local_floor_at, local_month_numbers
from growthwatch.metrics.engine import MetricsEngine
from growthwatch.metrics.families.segments import Segments
from growthwatch.metrics.mrr_totals import trailing_parts
from growthwatch.metrics.reads import LedgerView, read_events
from growthwatch.metrics.segment_totals import (
    SegmentTotals,
    difference,
    segment_frames_from,
    value_counts,
)
from growthwatch.metrics.segments import (
    PER_SUBSCRIPTION,
    TYPES,
    customer_attributes,
    kept_by_dimension,
    segment_frames,
)
from growthwatch.metrics.sql.segment_values import distinct_values
from growthwatch.metrics.touched import max_seq
from growthwatch.stores.ledger import Ledger

STRETCH = 40  # two weeks of generated minutes -> about 18 months


def _stretched(raw: list[GrowthEvent]) -> list[GrowthEvent]:
    return [dataclasses.replace(e, timestamp=START + (e.timestamp - START) * STRETCH) for e in raw]


KEYS = ["a|x|1", "a|x|2", "b|y|1", "c"]
change = st.tuples(st.integers(0, 800), st.sampled_from(KEYS), st.integers(0, 4),
                   st.integers(-50, 80))  # fmt: skip
changes = st.lists(change, min_size=1, max_size=60)


def loop_over_keys(ch: pd.DataFrame, tz: str) -> pd.DataFrame:
    """The trailing-12-month sums' monthly changes key by key (the definition of
    ``customers._trailing_12m`` on one grid of customers x months per key)."""
    month = local_month_numbers(ch["time"], tz)
    out = []
    for key, part in ch.groupby("product", sort=True):
        pos = part.index.to_numpy()
        m0, n = int(month[pos].min()), int(month[pos].max() - month[pos].min()) + 1
        pair = pd.factorize(part["customer"])[0]
        grid = np.zeros((int(pair.max()) + 1, n), dtype="int64")
        np.add.at(grid, (pair, month[pos] - m0), part["delta"].to_numpy())
        stock = np.cumsum(grid, axis=1)
        now = stock[:, np.minimum(np.arange(n) + 12, n - 1)]
        paying = stock > 0
        sums = np.stack([np.where(paying, x, 0).sum(axis=0)
                         for x in (stock, now, np.minimum(now, stock))], axis=1)  # fmt: skip
        change = np.diff(sums, axis=0, prepend=0)
        frame = pd.DataFrame(change, columns=["den", "num", "cap"])
        frame.index = pd.MultiIndex.from_arrays(
            [np.full(n, key, dtype=object), np.arange(m0, m0 + n)], names=["product", "month"])
        out.append(frame[(change != 0).any(axis=1)])
    return pd.concat(out)


@settings(max_examples=60, deadline=None)
@given(changes, st.sampled_from(["UTC", "Europe/Berlin"]), st.sampled_from([1, 7, 4_000_000]))
def test_trailing_parts_is_the_loop_over_keys(
    rows: list[tuple[int, str, int, int]], tz: str, cells: int
) -> None:
    frame = pd.DataFrame({
        "time": pd.Series([pd.Timestamp(START) + pd.Timedelta(days=d) for d, *_ in rows])
        .astype(TIME_DTYPE),
        "product": pd.Series([k for _, k, _, _ in rows], dtype=object),
        "customer": [c for _, _, c, _ in rows],
        "delta": np.array([d for *_, d in rows], dtype="int64"),
    })  # fmt: skip
    want = loop_over_keys(frame, tz)
    got = trailing_parts(frame, tz, cells)
    assert list(got.index.names) == list(want.index.names)
    assert got.index.equals(want.index)
    assert (got.to_numpy() == want.to_numpy()).all()


def _stream() -> Any:
    return st.tuples(st.lists(sub_event, min_size=1, max_size=25), st.lists(renewal, max_size=6),
                     st.lists(other_event, max_size=12))  # fmt: skip


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    _stream(),
    st.sets(st.sampled_from(["c1", "c2", "c3", "u1"]), min_size=1),
    st.sampled_from(["UTC", "Europe/Berlin"]),
    st.sampled_from([1, 3, 6]),
    st.floats(0, 1),
)
def test_an_updates_assembly_from_a_carried_row_is_the_whole_historys(
    stream: tuple[list[Any], list[Any], list[Any]],
    side: set[str],
    tz: str,
    ltv_months: int,
    where: float,
) -> None:
    """``since`` anywhere in an 18-month history: every daily row from its day and every
    monthly row from its month equal the whole assembly's; ``plus`` of the difference of a
    customer split is ``combined``."""
    subs, renewals, others = stream
    s = dataclasses.replace(SETTINGS, timezone=tz, ltv_months=ltv_months)
    raw = _stretched(build_subs(subs) + build_renewals(renewals, subs) + build_other(others))
    first, last = min(e.timestamp for e in raw), max(e.timestamp for e in raw)
    horizon = pd.Timestamp(last + timedelta(days=1))
    events = _events(raw)
    kept = kept_by_dimension(events, s)
    mine = events["subject"].astype(object).isin(side).to_numpy()
    whole = SegmentTotals.of(events, s, kept)
    part = SegmentTotals.of(events[mine].reset_index(drop=True), s, kept)
    rest = SegmentTotals.of(events[~mine].reset_index(drop=True), s, kept)
    added = rest.plus(difference(SegmentTotals.nothing(), part))
    summed = rest.combined([(1, part)])
    for got, want in ((added.flows, summed.flows), (added.trailing, summed.trailing),
                      (added.revenue, summed.revenue), (added.counts, summed.counts),
                      *((added.churned[f], summed.churned[f]) for f in ("D", "MS"))):  # fmt: skip
        assert got.equals(want), "plus is not combined"
    assert added.first.equals(summed.first)
    assert_frames_equal(segment_frames_from(whole, s, horizon),
                        segment_frames_from(added, s, horizon))  # fmt: skip
    since = pd.Timestamp(first + (last - first) * where)
    full = segment_frames_from(whole, s, horizon)
    cut = segment_frames_from(whole, s, horizon, since=since)
    day, month = local_floor_at(since, "D", tz), local_floor_at(since, "MS", tz)
    want = {}
    for name, frame in full.items():
        if name == "revenue_segments_daily":  # not carried: cut by day as before
            if name in cut:
                want[name] = cut[name]
            continue
        floor = month if name == "churn_segments_monthly" else day
        want[name] = frame[(frame["time"] >= floor).to_numpy()].reset_index(drop=True)
    assert_frames_equal({k: f for k, f in want.items() if len(f)}, cut)


@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_stream(), st.sampled_from(["UTC", "Europe/Berlin"]), st.sampled_from([1, 6]))
def test_an_updates_assembly_grid_holds_months_before_its_start_month(
    stream: tuple[list[Any], list[Any], list[Any]], tz: str, ltv_months: int
) -> None:
    """The rows ``segments._daily`` builds for an update's assembly (a spy counts them):
    per key at most the carried day, one per month from the LTV window's start to the
    start's month, then the days from there to the horizon; not one per day of history.
    (What it gives is the reference's: the carried-row test above.)"""
    subs, renewals, others = stream
    s = dataclasses.replace(SETTINGS, timezone=tz, ltv_months=ltv_months)
    raw = _stretched(build_subs(subs) + build_renewals(renewals, subs) + build_other(others))
    last = max(e.timestamp for e in raw)
    horizon = pd.Timestamp(last + timedelta(days=1))
    events = _events(raw)
    whole = SegmentTotals.of(events, s, kept_by_dimension(events, s))
    built: list[pd.DataFrame] = []
    real = segments_mod._daily

    def spy(*args: Any, **kwargs: Any) -> pd.DataFrame:
        out = real(*args, **kwargs)
        built.append(out)
        return out

    since = pd.Timestamp(last) - pd.Timedelta(days=3)
    with pytest.MonkeyPatch.context() as patch:  # hypothesis: no function-scoped fixture
        patch.setattr(segments_mod, "_daily", spy)
        segment_frames_from(whole, s, horizon, since=since)
    if not built:  # nothing that moves MRR: no grid
        return
    grid = built[-1]
    month = local_floor_at(since, "MS", tz)
    dense = grid[(grid["time"] >= month).to_numpy()]
    days = (horizon - month).days + 2
    per_key = grid.groupby("product").size()
    assert (per_key <= 1 + ltv_months + days).all(), per_key.max()
    assert (dense.groupby("product").size() <= days).all()
    coarse = grid[(grid["time"] < month).to_numpy()]
    assert (coarse.groupby("product").size() <= 1 + ltv_months).all()


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_stream(), st.integers(1, 4), st.sampled_from(["UTC", "Europe/Berlin"]))
def test_updates_over_a_long_history_give_the_full_runs_stores(
    stream: tuple[list[Any], list[Any], list[Any]], late: int, tz: str
) -> None:
    """The last ``late`` events (by ledger order, any time) arrive one by one after a full
    run over the rest of an 18-month stream: the stores are a full run's over all."""
    subs, renewals, others = stream
    s = dataclasses.replace(SETTINGS, timezone=tz)
    raw = _stretched(build_subs(subs) + build_renewals(renewals, subs) + build_other(others))
    head, tail = raw[:-late] or raw[:1], raw[-late:] if len(raw) > 1 else []
    inc = MemoryStore()
    with Ledger() as ledger:
        ledger.append(head)
        engine = MetricsEngine(ledger, s)
        engine.recompute([inc])
        for event in tail:
            ledger.append([event])
            engine.update([inc])
    _store_equal(inc, _full([*head, *tail], s))


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(sub_event, min_size=1, max_size=20),
    st.lists(other_event, max_size=12),
    st.lists(st.sampled_from(["", "DE", "FR", 'x"y', "1.5"]), max_size=4),
)
def test_the_sql_distinct_values_are_those_with_customers(
    subs: list[tuple[Any, ...]], others: list[tuple[Any, ...]], countries: list[str]
) -> None:
    """Plan and interval: exactly the values some customer counts for; the per-customer
    dimensions: a superset of them (every value an event with a customer carries)."""
    raw = build_subs(subs) + build_other(others)
    raw += [ev("payment", START + timedelta(minutes=i), ("c1", "u1", "c2", "u2")[i],
               product="p1", value="1", country=c, source_id=f"x{i}")
            for i, c in enumerate(countries) if c]  # fmt: skip
    dims = SETTINGS.segments.dimensions
    with Ledger() as ledger:
        ledger.append(raw)
        events = read_events(ledger, TYPES)
        counts = value_counts(events, customer_attributes(events, dims), dims)
        cursor = ledger.connection
        rows = cursor.execute(distinct_values(dims, TYPES, 10**9, ())).fetchall()
        cursor.close()
    got = {dim: {str(v) for d, v in rows if d == dim and v is not None} for dim in dims}
    counted = {dim: {str(v) for (d, v), n in counts.items() if d == dim and n > 0}
               for dim in dims}  # fmt: skip
    for dim in dims:
        if dim in PER_SUBSCRIPTION:
            assert got[dim] == counted[dim], dim
        else:
            assert got[dim] >= counted[dim], dim
            with_customer = events[events["subject"].notna().to_numpy()]
            carried = json_key(with_customer["metadata"], dim) if dim == "country" else None
            if carried is not None:
                assert got[dim] == set(carried.dropna().astype(str)), dim


def test_the_distinct_value_sql_transpiles_to_bigquery() -> None:
    sql = distinct_values(("plan", "interval", "country", "channel"), TYPES, 5, ("px",))
    (out,) = sqlglot.transpile(sql, read="duckdb", write="bigquery",
                               unsupported_level=ErrorLevel.RAISE)  # fmt: skip
    assert "REGEXP_EXTRACT" in out.upper() and "DISTINCT" in out.upper()


def test_a_value_no_customer_carried_first_keeps_the_full_build_to_one_pass(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """IT is on a later payment of p1-c0 only (its first country is DE): the distinct
    values keep it, the pandas counts do not know it, and the build is not redone (the
    value is no one's segment); the frames are the reference's."""
    events = [*_portfolio(),
              ev("payment", START + timedelta(days=12), "p1-c0", product="p1", value="3",
                 country="IT", source_id="late-it")]  # fmt: skip
    passes: list[int] = []
    real = Segments._groups

    def spy(self: Segments, *args: Any) -> Any:
        passes.append(1)
        return real(self, *args)

    monkeypatch.setattr(Segments, "_groups", spy)
    horizon = pd.Timestamp(START + timedelta(days=40))
    with Ledger() as ledger:
        ledger.append(events)
        view = LedgerView(ledger, SETTINGS)
        family = Segments()
        assert "IT" in family._sql_kept(view, max_seq(view))["country"]
        got = family.run(view, None, None, horizon)
        want = segment_frames(read_events(ledger, TYPES), SETTINGS, horizon)
    assert passes == [1]
    assert_frames_equal(want, got.frames)
