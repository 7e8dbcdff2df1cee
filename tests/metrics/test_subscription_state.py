"""The subscription and trial families' totals (``mrr_totals``, ``trial_totals``): the
frames they assemble equal the reference (``compute`` over the whole history) for any way
of splitting the customers, an update reads only the touched customers' events, a cold
engine equals a warm one, a chunked full run equals an unchunked one, and a ledger that
lost events below the totals' ``seq`` rebuilds them instead of serving stale numbers."""

from __future__ import annotations

import dataclasses
import math
from datetime import timedelta
from typing import Any

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from metric_cases import ev, sub
from test_properties import (
    SETTINGS,
    START,
    MemoryStore,
    build_renewals,
    build_subs,
    build_trials,
    renewal,
    sub_event,
    trial_event,
)

from growthwatch.events import GrowthEvent
from growthwatch.metrics import customer_events, family_state
from growthwatch.metrics import trials as trials_mod
from growthwatch.metrics.engine import MetricsEngine
from growthwatch.metrics.families.base import Scope
from growthwatch.metrics.families.subscriptions import Subscriptions
from growthwatch.metrics.families.trials import Trials
from growthwatch.metrics.mrr import MRR_TYPES, compute_mrr
from growthwatch.metrics.mrr_totals import MrrTotals, subscription_frames_from
from growthwatch.metrics.reads import LedgerView, read_events
from growthwatch.metrics.trial_totals import TrialTotals, trial_frames_from
from growthwatch.stores.ledger import Ledger

_KEYS = {"cohort_retention": ["product", "time", "age"]}


def assert_frames_equal(want: dict[str, pd.DataFrame], got: dict[str, pd.DataFrame]) -> None:
    """Same rows (by product, time and, for cohorts, age) and the same value in every
    column, NaN where NaN (an undefined field is one that is not written)."""
    assert sorted(k for k, f in want.items() if len(f)) == sorted(k for k, f in got.items() if len(f))
    for name, frame in want.items():
        if frame.empty:
            continue
        keys = _KEYS.get(name, ["product", "time"])
        a = frame.sort_values(keys).reset_index(drop=True)
        b = got[name].sort_values(keys).reset_index(drop=True)
        assert len(a) == len(b), name
        for col in a.columns:
            x, y = a[col], b[col]
            if x.dtype.kind in "fiub" and y.dtype.kind in "fiub":
                assert np.allclose(x.astype(float), y.astype(float), rtol=1e-12, atol=1e-9,
                                   equal_nan=True), (name, col)  # fmt: skip
            else:
                assert (x.astype(str).to_numpy() == y.astype(str).to_numpy()).all(), (name, col)


def _events(raw: list[GrowthEvent], types: tuple[str, ...]) -> pd.DataFrame:
    with Ledger() as ledger:
        ledger.append(raw)
        return read_events(ledger, types)


def _part(frame: pd.DataFrame, mask: np.ndarray) -> pd.DataFrame:
    out = frame[mask].reset_index(drop=True)
    out.attrs.update(frame.attrs)
    return out


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(sub_event, min_size=1, max_size=25),
    st.lists(renewal, max_size=6),
    st.lists(trial_event, max_size=6),
    st.sets(st.sampled_from(["c1", "c2", "c3"])),
    st.sampled_from(["UTC", "Europe/Berlin"]),
)
def test_totals_over_any_split_of_the_customers_give_the_reference_frames(
    subs: list[tuple[Any, ...]],
    renewals: list[tuple[Any, ...]],
    trials: list[tuple[Any, ...]],
    side: set[str],
    tz: str,
) -> None:
    """Totals of the customers in ``side`` plus those of the rest, and the whole minus
    ``side`` plus ``side`` again (what an update does), give exactly the frames that the
    reference computes from every event at once."""
    s = dataclasses.replace(SETTINGS, timezone=tz)
    raw = build_subs(subs) + build_renewals(renewals, subs) + build_trials(trials)
    if tz != "UTC":
        raw = [dataclasses.replace(e, timestamp=e.timestamp + timedelta(days=80)) for e in raw]
    until = max(e.timestamp for e in raw) + timedelta(days=1)
    horizon = pd.Timestamp(until)
    scope = Scope(s, horizon)

    events = _events(raw, MRR_TYPES)
    mine = events["subject"].astype(object).isin(side).to_numpy()
    whole = MrrTotals.of(compute_mrr(events, s, horizon), tz)
    a, b = (MrrTotals.of(compute_mrr(_part(events, m), s, horizon), tz) for m in (mine, ~mine))
    want = Subscriptions().compute(events, scope)
    assert_frames_equal(want, subscription_frames_from(MrrTotals.nothing().combined(
        [(1, a), (1, b)]), s, horizon))  # fmt: skip
    assert_frames_equal(want, subscription_frames_from(whole.combined([(-1, a), (1, a)]), s,
                                                       horizon))  # fmt: skip

    t_events = _events(raw, trials_mod.TYPES)
    t_mine = t_events["subject"].astype(object).isin(side).to_numpy()
    parts = [(1, TrialTotals.of(_part(t_events, m), s)) for m in (t_mine, ~t_mine)]
    t_want = Trials().compute(t_events, scope)
    assert_frames_equal(t_want, trial_frames_from(TrialTotals.nothing().combined(parts), s,
                                                  horizon))  # fmt: skip


_FREQ = {"mrr_daily": "D", "customers_daily": "D", "churn_monthly": "MS", "churn_yearly": "YS"}


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(sub_event, min_size=1, max_size=25),
    st.lists(renewal, max_size=6),
    st.integers(min_value=-45, max_value=20),
    st.integers(min_value=1, max_value=4),
    st.sampled_from(["UTC", "Europe/Berlin"]),
)
def test_frames_from_a_start_are_the_reference_rows_of_its_periods(
    subs: list[tuple[Any, ...]], renewals: list[tuple[Any, ...]], day: int, ltv: int, tz: str
) -> None:
    """An update's frames (``since``: only the periods it rewrites, over the days they
    need) are the rows of the reference over all history from ``since``'s day, month and
    year on: stocks at the period start, LTV over the months before, partial flags."""
    s = dataclasses.replace(SETTINGS, timezone=tz, ltv_months=ltv)
    raw = build_subs(subs) + build_renewals(renewals, subs)
    until = max(e.timestamp for e in raw) + timedelta(days=1)
    horizon = pd.Timestamp(until)
    events = _events(raw, MRR_TYPES)
    since = pd.Timestamp(START).tz_convert(tz).normalize().tz_convert("UTC") + pd.Timedelta(days=day)
    since = since.tz_convert(tz).floor("D").tz_convert("UTC")  # a local day's start
    want = Subscriptions().compute(events, Scope(s, horizon))
    for name, freq in _FREQ.items():
        frame = want[name]
        floor = pd.Timestamp(since).tz_convert(tz).tz_localize(None).to_period(
            {"D": "D", "MS": "M", "YS": "Y"}[freq]).start_time.tz_localize(tz).tz_convert("UTC")  # fmt: skip
        want[name] = frame[frame["time"] >= floor].reset_index(drop=True) if len(frame) else frame
    got = subscription_frames_from(MrrTotals.of(compute_mrr(events, s, horizon), tz), s, horizon,
                                   since)  # fmt: skip
    assert_frames_equal(want, got)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(trial_event, min_size=1, max_size=8),
    st.lists(sub_event, max_size=10),
    st.integers(min_value=-45, max_value=40),
    st.sampled_from(["UTC", "Europe/Berlin"]),
)
def test_trial_frames_from_a_start_are_the_reference_rows_from_it(
    trials: list[tuple[Any, ...]], subs: list[tuple[Any, ...]], day: int, tz: str
) -> None:
    """An update's trial frames (``since``) are the reference's rows from ``since``'s
    local day (daily) and month (monthly) on, even with ``since`` past the grid."""
    s = dataclasses.replace(SETTINGS, timezone=tz)
    raw = build_trials(trials) + build_subs(subs)
    horizon = pd.Timestamp(max(e.timestamp for e in raw) + timedelta(days=1))
    events = _events(raw, trials_mod.TYPES)
    since = (pd.Timestamp(START) + pd.Timedelta(days=day)).tz_convert(tz).floor("D").tz_convert("UTC")
    want = Trials().compute(events, Scope(s, horizon))
    for name, period in (("trials_daily", "D"), ("trials_monthly", "M")):
        floor = pd.Timestamp(since).tz_convert(tz).tz_localize(None).to_period(
            period).start_time.tz_localize(tz).tz_convert("UTC")  # fmt: skip
        frame = want[name]
        want[name] = frame[frame["time"] >= floor].reset_index(drop=True) if len(frame) else frame
    got = trial_frames_from(TrialTotals.of(events, s), s, horizon, since)
    assert_frames_equal(want, got)


def test_trial_totals_split_by_a_product_tag_are_each_versions_totals() -> None:
    """One ``TrialTotals.of`` over the old version (tagged products) and the new one,
    split, is each version's own totals (what an update takes out and puts in)."""
    s = SETTINGS
    before = build_trials([("p1", "c1", "s1", 30, 3), ("p2", "c2", "s2", 900, None)])
    after = before + build_trials([("p1", "c1", "t1", 4000, 1)])
    old, new = (_events(raw, trials_mod.TYPES) for raw in (before, after))
    tag = "\x00old\x00"
    both = pd.concat([old.assign(product=tag + old["product"].astype(str)), new],
                     ignore_index=True)  # fmt: skip
    a, b = TrialTotals.of(both, s).split(tag)
    for got, want in ((a, TrialTotals.of(old, s)), (b, TrialTotals.of(new, s))):
        pd.testing.assert_frame_equal(got.counts.sort_index(), want.counts.sort_index(),
                                      check_index_type=False)  # fmt: skip
        assert got.first.sort_index().to_dict() == want.first.sort_index().to_dict()


def _store_equal(a: MemoryStore, b: MemoryStore) -> None:
    assert a.points.keys() == b.points.keys()
    for key, fields in b.points.items():
        got = a.points[key]
        assert got.keys() == fields.keys(), key
        for name, value in fields.items():
            assert math.isclose(got[name], value, rel_tol=1e-12, abs_tol=1e-9), (key, name)


def _portfolio(n_customers: int = 12) -> list[GrowthEvent]:
    """Two products, a dozen customers each: subscriptions, renewals, trials, a churn."""
    out: list[GrowthEvent] = []
    for product in ("p1", "p2", "p3"):
        for i in range(n_customers):
            c, day = f"{product}-c{i}", START + timedelta(days=i % 9, hours=i)
            out.append(ev("trial_started", day, c, product=product, before=0, after=0,
                          sid=f"s{i}", source_id=f"{product}t{i}"))  # fmt: skip
            out.append(sub(day + timedelta(days=3), 0, 10 + i, c, product=product, sid=f"s{i}"))
            out.append(ev("payment", day + timedelta(days=4), c, product=product,
                          value=str(10 + i), sid=f"s{i}", source_id=f"{product}r{i}"))  # fmt: skip
            if i % 4 == 0:
                out.append(sub(day + timedelta(days=20), 10 + i, 0, c, product=product,
                               sid=f"s{i}"))  # fmt: skip
    return out


def test_a_live_cancellation_reads_only_its_customers_events(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """After the first run, an update for one customer's cancellation reads that
    customer's events (twice: as they were and as they are) and nobody else's: a
    regression to re-reading the history fails here."""
    events = _portfolio()
    cancel = sub(START + timedelta(days=25), 15, 0, "p2-c5", product="p2", sid="s5")
    reads: list[tuple[tuple[str, ...], int, set[Any]]] = []
    lookups: list[tuple[int, set[Any]]] = []
    real, real_lookup = LedgerView.events, customer_events.read

    def spy(self: LedgerView, types: Any, **kw: Any) -> pd.DataFrame:
        got = real(self, types, **kw)
        reads.append((tuple(types), len(got), set(got["subject"].dropna())))
        return got

    def lookup(view: LedgerView, *args: Any) -> pd.DataFrame:
        got = real_lookup(view, *args)
        lookups.append((len(got), set(got["subject"].dropna())))
        return got

    inc = MemoryStore()
    with Ledger() as ledger:
        ledger.append(events)
        engine = MetricsEngine(ledger, SETTINGS)
        engine.recompute([inc])
        monkeypatch.setattr(LedgerView, "events", spy)
        monkeypatch.setattr(customer_events, "read", lookup)
        ledger.append([cancel])
        engine.update([inc], live=True)
        monkeypatch.setattr(LedgerView, "events", real)
        engine.update([inc])  # the catch-up of what the live update put off (segments)
    # no read of the families' types from the ledger itself, one index lookup of p2-c5's
    # events (trial start, start, payment and the cancel) shared by the subscription and
    # the trial family (``touched._customers_events``), and in the catch-up the segment
    # family's own
    assert [n for types, n, _ in reads if types in (MRR_TYPES, trials_mod.TYPES)] == []
    assert lookups == [(4, {"p2-c5"}), (4, {"p2-c5"})], lookups
    full = MemoryStore()
    with Ledger() as ledger:
        ledger.append([*events, cancel])
        MetricsEngine(ledger, SETTINGS).recompute([full])
    _store_equal(inc, full)


def test_a_cold_engine_gives_what_the_warm_one_gives(
    tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A restart (a new engine over the same ledger and state file) continues from the
    totals persisted in the ledger file (older than the warm engine's: the customers
    touched since are taken out and put back) without rebuilding, and writes what the
    engine that kept them writes; other settings are not the persisted totals' and
    rebuild."""
    builds: list[str] = []
    real = Subscriptions._built

    def spy(self: Subscriptions, *args: Any) -> Any:
        builds.append("subscriptions")
        return real(self, *args)

    monkeypatch.setattr(Subscriptions, "_built", spy)
    events = _portfolio()
    later = [sub(START + timedelta(days=26), 11, 30, "p1-c1", sid="s1"),
             ev("trial_started", START + timedelta(days=27), "p3-new", product="p3", before=0,
                after=0, sid="sx", source_id="p3tx")]  # fmt: skip
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
        assert builds == ["subscriptions"]
    _store_equal(cold, warm)


def test_an_update_leaves_the_totals_copy_to_idle_time(
    tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A build writes its totals' copy to the ledger file at once; an update only keeps
    its totals in memory, and ``release`` (serve's idle time, the CLI before it exits)
    writes them once: a restart after it starts from the update's ``seq``, not the
    build's."""
    monkeypatch.setattr(family_state, "EVERY_SECONDS", 0.0)  # the throttle is not tested here
    events = _portfolio()
    later = [sub(START + timedelta(days=26), 11, 30, "p1-c1", sid="s1")]
    with Ledger(tmp_path / "ledger.duckdb") as ledger:
        ledger.append(events)
        engine = MetricsEngine(ledger, SETTINGS, state_path=tmp_path / "state.json")
        engine.recompute([MemoryStore()])
        view = engine._view()
        built = ledger.max_seq()
        copies = {n: family_state.load(view, n) for n in ("subscriptions", "trials", "segments")}
        assert {n: c.seq if c else None for n, c in copies.items()} == dict.fromkeys(copies, built)
        ledger.append(later)
        engine.update([MemoryStore()])
        assert ledger.max_seq() > built
        assert family_state.load(view, "subscriptions").seq == built  # type: ignore[union-attr]
        assert engine.release()
        for name in copies:
            assert family_state.load(view, name).seq == ledger.max_seq(), name  # type: ignore[union-attr]
        assert not engine.release()  # nothing left unsaved, no checkpoint due
    with Ledger(tmp_path / "ledger.duckdb") as ledger:  # the restart reads the newer copy
        restarted = MetricsEngine(ledger, SETTINGS, state_path=tmp_path / "state.json")
        kept = restarted.families[[f.name for f in restarted.families].index("subscriptions")].kept
        assert kept is not None
        saved = kept.current(restarted._view(), ledger.max_seq())
        assert saved is not None and saved.seq == ledger.max_seq()


def test_a_chunked_full_run_equals_the_unchunked_one() -> None:
    """``chunk_events`` 5 (every product its own group, each bigger than a chunk) gives
    the same stores as one group of everything."""
    events = _portfolio()
    stores = []
    for chunk in (5, 2_000_000):
        store = MemoryStore()
        with Ledger() as ledger:
            ledger.append(events)
            MetricsEngine(ledger, dataclasses.replace(SETTINGS, chunk_events=chunk)).recompute(
                [store])
        stores.append(store)
    _store_equal(stores[0], stores[1])


def test_events_lost_below_the_totals_rebuild_them() -> None:
    """A ledger that lost an event the totals cover (a trim, a repair) is not the one they
    were built over: the next update rebuilds instead of subtracting what is gone."""
    events = _portfolio(4)
    later = [sub(START + timedelta(days=30), 0, 50, "p1-c9", sid="s9")]
    inc = MemoryStore()
    with Ledger() as ledger:
        ledger.append(events)
        engine = MetricsEngine(ledger, SETTINGS)
        engine.recompute([inc])
        cursor = ledger.connection
        cursor.execute("DELETE FROM events WHERE source_id = 'p1r0'")  # p1-c0's payment
        cursor.close()
        ledger.append(later)
        engine.update([inc])
        fresh = MemoryStore()
        MetricsEngine(ledger, SETTINGS).recompute([fresh])
    mrr = [k for k in fresh.points if k[0] in ("mrr_daily", "trials_daily")]
    assert mrr
    for key in mrr:
        assert inc.points[key] == pytest.approx(fresh.points[key]), key
