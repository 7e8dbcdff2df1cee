"""The segment family's totals (``segment_totals``): the frames they assemble equal the
reference (``segments.segment_frames`` over every event at once) for any split of the
customers; an update after a few events reads only the touched customers' events and
rebuilds nothing; a cold engine continues from the persisted totals; a chunked full run
equals an unchunked one; a change of the kept values rebuilds and rewrites every product;
a late event with an earlier country moves that customer only; the SQL value counts are
the pandas ones."""

from __future__ import annotations

import dataclasses
import math
from datetime import timedelta
from typing import Any

import numpy as np
import pandas as pd
import pytest
import sqlglot
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from metric_cases import ev, sub
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

from growthwatch.events import GrowthEvent
from growthwatch.metrics import segment_events
from growthwatch.metrics.engine import MetricsEngine
from growthwatch.metrics.families.segments import Segments
from growthwatch.metrics.reads import LedgerView, read_events
from growthwatch.metrics.segment_totals import (
    SegmentTotals,
    kept_from,
    segment_frames_from,
    value_counts,
)
from growthwatch.metrics.segments import (
    TYPES,
    customer_attributes,
    kept_by_dimension,
    segment_frames,
)
from growthwatch.metrics.settings import SegmentSettings
from growthwatch.metrics.sql.segment_values import value_counts as value_counts_sql
from growthwatch.metrics.touched import Group
from growthwatch.stores.ledger import Ledger

_KEYS = ["product", "dimension", "segment", "time"]


def assert_frames_equal(want: dict[str, pd.DataFrame], got: dict[str, pd.DataFrame]) -> None:
    """Same measurements, same rows (by tags and time) and the same value in every column,
    NaN where NaN."""
    assert sorted(k for k, f in want.items() if len(f)) == sorted(
        k for k, f in got.items() if len(f)
    )
    for name, frame in want.items():
        if frame.empty:
            continue
        keys = [*_KEYS, *(["currency"] if "currency" in frame else [])]
        a = frame.sort_values(keys).reset_index(drop=True)
        b = got[name].sort_values(keys).reset_index(drop=True)
        assert len(a) == len(b), name
        assert sorted(a.columns) == sorted(b.columns), name
        for col in a.columns:
            x, y = a[col], b[col]
            if x.dtype.kind in "fiub" and y.dtype.kind in "fiub":
                assert np.allclose(x.astype(float), y.astype(float), rtol=1e-12, atol=1e-9,
                                   equal_nan=True), (name, col)  # fmt: skip
            else:
                assert (x.astype(str).to_numpy() == y.astype(str).to_numpy()).all(), (name, col)


def _events(raw: list[GrowthEvent]) -> pd.DataFrame:
    with Ledger() as ledger:
        ledger.append(raw)
        return read_events(ledger, TYPES)


def _part(frame: pd.DataFrame, mask: np.ndarray) -> pd.DataFrame:
    out = frame[mask].reset_index(drop=True)
    out.attrs.update(frame.attrs)
    return out


def _store_equal(a: MemoryStore, b: MemoryStore) -> None:
    assert a.points.keys() == b.points.keys()
    for key, fields in b.points.items():
        got = a.points[key]
        assert got.keys() == fields.keys(), key
        for name, value in fields.items():
            assert math.isclose(got[name], value, rel_tol=1e-12, abs_tol=1e-9), (key, name)


def _full(events: list[GrowthEvent], s: Any = SETTINGS) -> MemoryStore:
    store = MemoryStore()
    with Ledger() as ledger:
        ledger.append(events)
        MetricsEngine(ledger, s).recompute([store])
    return store


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(sub_event, min_size=1, max_size=25),
    st.lists(renewal, max_size=6),
    st.lists(other_event, max_size=12),
    st.sets(st.sampled_from(["c1", "c2", "c3", "u1"])),
    st.sampled_from(["UTC", "Europe/Berlin"]),
    st.sampled_from([1, 50]),
)
def test_totals_over_any_split_of_the_customers_give_the_reference_frames(
    subs: list[tuple[Any, ...]],
    renewals: list[tuple[Any, ...]],
    others: list[tuple[Any, ...]],
    side: set[str],
    tz: str,
    max_values: int,
) -> None:
    """Totals of the customers in ``side`` plus those of the rest, and the whole minus
    ``side`` plus ``side`` again (what an update does), give exactly the frames that the
    reference computes from every event at once; their counts give the reference's kept
    values (one per dimension: folding matters)."""
    s = dataclasses.replace(SETTINGS, timezone=tz, segments=SegmentSettings(max_values=max_values))
    raw = build_subs(subs) + build_renewals(renewals, subs) + build_other(others)
    if tz != "UTC":
        raw = [dataclasses.replace(e, timestamp=e.timestamp + timedelta(days=80)) for e in raw]
    horizon = pd.Timestamp(max(e.timestamp for e in raw) + timedelta(days=1))
    events = _events(raw)
    kept = kept_by_dimension(events, s)
    mine = events["subject"].astype(object).isin(side).to_numpy()
    a, b = (SegmentTotals.of(_part(events, m), s, kept) for m in (mine, ~mine))
    whole = SegmentTotals.of(events, s, kept)
    assert whole.kept(s) == kept
    want = segment_frames(events, s, horizon)
    assert_frames_equal(want, segment_frames_from(SegmentTotals.nothing().combined(
        [(1, a), (1, b)]), s, horizon))  # fmt: skip
    assert_frames_equal(want, segment_frames_from(whole.combined([(-1, a), (1, a)]), s, horizon))
    # both versions in one computation (an update's): each is its own ``of``
    x, y = SegmentTotals.of_both(_part(events, mine), events, s, kept)
    assert_frames_equal(want, segment_frames_from(b.combined([(1, x)]), s, horizon))
    assert_frames_equal(want, segment_frames_from(y, s, horizon))
    assert y.counts.equals(whole.counts)


def _portfolio(n_customers: int = 10) -> list[GrowthEvent]:
    """Three products, customers with plans, countries, renewals, refunds, a churn."""
    out: list[GrowthEvent] = []
    for product in ("p1", "p2", "p3"):
        for i in range(n_customers):
            c, day = f"{product}-c{i}", START + timedelta(days=i % 9, hours=i)
            country = ("DE", "FR", "US")[i % 3]
            out.append(ev("signup", day - timedelta(days=1), c, product=product, country=country,
                          source_id=f"{product}u{i}"))  # fmt: skip
            out.append(sub(day + timedelta(days=3), 0, 10 + i, c, product=product, sid=f"s{i}",
                           plan=("basic", "pro")[i % 2], interval="month"))  # fmt: skip
            out.append(ev("payment", day + timedelta(days=4), c, product=product,
                          value=str(10 + i), sid=f"s{i}", source_id=f"{product}r{i}"))  # fmt: skip
            if i % 4 == 0:
                out.append(ev("refund", day + timedelta(days=6), c, product=product, value="5",
                              source_id=f"{product}f{i}"))  # fmt: skip
                out.append(sub(day + timedelta(days=20), 10 + i, 0, c, product=product,
                               sid=f"s{i}"))  # fmt: skip
    return out


def test_an_update_reads_only_the_touched_customers_events(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """After the first run, an update for one customer's cancellation reads that
    customer's events from the indexed copies (as they were and as they are: one lookup)
    and nobody else's, builds nothing, and rewrites from the cancellation's day: a
    regression to re-reading the history fails here."""
    events = _portfolio()
    cancel = sub(START + timedelta(days=25), 15, 0, "p2-c5", product="p2", sid="s5")
    reads: list[tuple[tuple[str, ...], int]] = []
    lookups: list[tuple[int, set[Any]]] = []
    builds: list[int] = []
    real, real_lookup, real_build = LedgerView.events, segment_events.read, Segments._built

    def spy(self: LedgerView, types: Any, **kw: Any) -> pd.DataFrame:
        got = real(self, types, **kw)
        reads.append((tuple(types), len(got)))
        return got

    def lookup(view: LedgerView, *args: Any) -> pd.DataFrame:
        got = real_lookup(view, *args)
        lookups.append((len(got), set(got["subject"].dropna())))
        return got

    def build(self: Segments, *args: Any) -> Any:
        builds.append(1)
        return real_build(self, *args)

    inc = MemoryStore()
    with Ledger() as ledger:
        ledger.append(events)
        engine = MetricsEngine(ledger, SETTINGS)
        engine.recompute([inc])
        monkeypatch.setattr(LedgerView, "events", spy)
        monkeypatch.setattr(segment_events, "read", lookup)
        monkeypatch.setattr(Segments, "_built", build)
        ledger.append([cancel])
        result = engine.update([inc])
    assert result.deferred == [] and "segments" in result.timings
    assert result.families["segments"] == "2026-01-26T00:00:00+00:00"
    assert builds == []
    assert [n for types, n in reads if types == TYPES] == []  # no read of the ledger itself
    # p2-c5: signup, start, payment and the cancel
    assert lookups == [(4, {"p2-c5"})], lookups
    _store_equal(inc, _full([*events, cancel]))


def test_a_cold_engine_gives_what_the_warm_one_gives(
    tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A restart continues from the totals persisted in the ledger file (older than the
    warm engine's: the customers touched since are taken out and put back) without
    rebuilding; other settings are not the persisted totals' and rebuild."""
    builds: list[str] = []
    real = Segments._built

    def spy(self: Segments, *args: Any) -> Any:
        builds.append("segments")
        return real(self, *args)

    monkeypatch.setattr(Segments, "_built", spy)
    events = _portfolio()
    later = [sub(START + timedelta(days=26), 11, 30, "p1-c1", sid="s1", plan="pro"),
             ev("signup", START + timedelta(days=27), "p3-new", product="p3", country="FR",
                source_id="p3new")]  # fmt: skip
    warm, cold = MemoryStore(), MemoryStore()
    with Ledger() as ledger:
        ledger.append(events)
        engine = MetricsEngine(ledger, SETTINGS, state_path=tmp_path / "warm.json")
        engine.recompute([warm])
        MetricsEngine(ledger, SETTINGS, state_path=tmp_path / "cold.json").recompute([cold])
        ledger.append(later)
        engine.update([warm])
        builds.clear()
        restarted = MetricsEngine(ledger, SETTINGS, state_path=tmp_path / "cold.json")
        assert restarted.update([cold]).mode == "incremental"
        assert builds == []
        other = dataclasses.replace(SETTINGS, ltv_months=3)
        ledger.append([sub(START + timedelta(days=28), 0, 5, "p2-new", product="p2", sid="sy")])
        MetricsEngine(ledger, other, state_path=tmp_path / "cold.json").update([MemoryStore()])
        assert builds == ["segments"]
    _store_equal(cold, warm)


def test_a_chunked_full_run_equals_the_unchunked_one(monkeypatch: pytest.MonkeyPatch) -> None:
    """``chunk_events`` 20 (groups of 5 events with four dimensions: every product bigger
    than that, so each is built in parts of its customers) gives the same stores as one
    group of everything, and the groups are what it reads."""
    events = _portfolio()
    groups: list[list[Group]] = []
    real = Segments._groups

    def spy(self: Segments, view: Any, upto: int, chosen: list[Group], kept: Any) -> Any:
        groups.append(chosen)
        return real(self, view, upto, chosen, kept)

    monkeypatch.setattr(Segments, "_groups", spy)
    stores = [_full(events, dataclasses.replace(SETTINGS, chunk_events=c)) for c in (20, 8_000_000)]
    # each product: 10 signups, subscriptions and payments, 3 refunds and cancellations:
    # 36 events, in ceil(36 / 5) = 8 parts of its customers
    parts = [Group([p], (i, 8)) for p in ("p1", "p2", "p3") for i in range(8)]
    assert groups == [parts, [Group(["p1", "p2", "p3"])]]
    _store_equal(stores[0], stores[1])


def test_a_change_of_the_kept_values_rebuilds_and_rewrites_every_product(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """One value kept per dimension: new customers of p3 in FR make FR outrank DE, which
    folds DE into ``other`` in every product, also those without new events (p1): the
    update rebuilds once and leaves the stores as a full recompute."""
    s = dataclasses.replace(SETTINGS, segments=SegmentSettings(max_values=1))
    events = _portfolio(6)  # countries DE, FR, US twice each per product: DE first by name
    later = [ev("signup", START + timedelta(days=30), f"p3-n{i}", product="p3", country="FR",
                source_id=f"p3n{i}") for i in range(2)]  # fmt: skip
    builds: list[int] = []
    real = Segments._built

    def spy(self: Segments, *args: Any) -> Any:
        builds.append(1)
        return real(self, *args)

    inc = MemoryStore()
    with Ledger() as ledger:
        ledger.append(events)
        engine = MetricsEngine(ledger, s)
        engine.recompute([inc])
        assert ("mrr_segments_daily", ("p1", "country", "DE"), pd.Timestamp(START)
                + pd.Timedelta(days=3)) in inc.points  # fmt: skip
        monkeypatch.setattr(Segments, "_built", spy)
        ledger.append(later)
        result = engine.update([inc])
    assert builds == [1]
    assert result.families["segments"] == "all"
    full = _full([*events, *later], s)
    assert not [k for k in full.points if k[0] == "mrr_segments_daily" and k[1][2] == "DE"]
    assert [k for k in full.points if k[0] == "mrr_segments_daily" and k[1][:2] == ("p1", "country")
            and k[1][2] == "FR"]  # fmt: skip
    _store_equal(inc, full)


def test_a_late_event_with_an_earlier_country_moves_that_customer_only(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A signup dated before p1-c4's first event carries another country: its whole
    history moves from DE to FR without a rebuild, rewritten from its first day (not all
    history), and the stores are a full recompute's."""
    events = _portfolio()
    late = ev(
        "signup", START + timedelta(days=2), "p1-c4", product="p1", country="US", source_id="p1late"
    )  # p1-c4 signed up on day 3 (country FR) and started on day 7
    builds: list[int] = []
    real = Segments._built

    def spy(self: Segments, *args: Any) -> Any:
        builds.append(1)
        return real(self, *args)

    inc = MemoryStore()
    with Ledger() as ledger:
        ledger.append(events)
        engine = MetricsEngine(ledger, SETTINGS)
        engine.recompute([inc])
        monkeypatch.setattr(Segments, "_built", spy)
        ledger.append([late])
        result = engine.update([inc])
    assert builds == []
    # its subscription started on day 8 (the first day whose totals differ), after the
    # late signup's day; the rewrite starts at the engine's own start
    assert result.families["segments"] == "2026-01-03T00:00:00+00:00"
    full = _full([*events, late])
    key = ("mrr_segments_daily", ("p1", "country", "US"), pd.Timestamp("2026-01-10", tz="UTC"))
    assert full.points[key]["mrr"] == pytest.approx(12 + 15 + 14)  # c2, c5 and c4 (moved)
    _store_equal(inc, full)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(sub_event, min_size=1, max_size=20),
    st.lists(other_event, max_size=12),
    st.lists(st.sampled_from(["", "DE", "FR", 'x"y', "1.5"]), max_size=4),
)
def test_the_sql_value_counts_are_the_pandas_ones(
    subs: list[tuple[Any, ...]], others: list[tuple[Any, ...]], countries: list[str]
) -> None:
    """The SQL guess of the kept values counts what ``segments`` counts (first known
    per-customer values, distinct plan and interval triples), numbers in metadata too."""
    raw = build_subs(subs) + build_other(others)
    raw += [ev("signup", START + timedelta(minutes=i), ("c1", "u1", "c2", "u2")[i],
               product="p1", country=c, source_id=f"x{i}")
            for i, c in enumerate(countries) if c]  # fmt: skip
    with Ledger() as ledger:
        ledger.append(raw)
        events = read_events(ledger, TYPES)
        dims = SETTINGS.segments.dimensions
        want = value_counts(events, customer_attributes(events, dims), dims)
        cursor = ledger.connection
        rows = cursor.execute(value_counts_sql(dims, TYPES, 10**9, ())).fetchall()
        cursor.close()
    got = {(str(d), str(v)): int(n) for d, v, n in rows}
    assert got == {k: int(n) for k, n in want.items()}
    assert kept_from(want, SETTINGS) == kept_by_dimension(events, SETTINGS)


def test_the_value_count_sql_transpiles_to_bigquery() -> None:
    sql = value_counts_sql(("plan", "interval", "country", "channel"), TYPES, 5, ("px",))
    (out,) = sqlglot.transpile(sql, read="duckdb", write="bigquery",
                               unsupported_level=ErrorLevel.RAISE)  # fmt: skip
    assert "REGEXP_EXTRACT" in out.upper() and "QUALIFY" in out.upper()
