"""The active-user rollup (``growthwatch.metrics.sql.activity``): folded by ``seq`` it equals
a rebuild and an independent pandas computation of the same user-days; a cold engine
continues from the persisted rollup (no rebuild) exactly as a warm one; retention
(``Ledger.delete_before``) and a time zone change rebuild it; an update reads only the
recent days and the new events, whatever the history."""

from __future__ import annotations

import random
from datetime import timedelta
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from metric_cases import ev, t

from growthwatch.events import GrowthEvent
from growthwatch.metrics._frame import TIME_DTYPE, local_day_numbers
from growthwatch.metrics.engine import MetricsEngine
from growthwatch.metrics.reads import LedgerView, read_events
from growthwatch.metrics.settings import MetricsSettings
from growthwatch.metrics.sql import activity
from growthwatch.stores.ledger import Ledger
from growthwatch.stores.series import SeriesStore

BEGIN = t("2026-03-01")  # Berlin's and New York's spring DST changes fall inside
ZONES = ["UTC", "Europe/Berlin", "America/New_York"]

event = st.tuples(
    st.sampled_from(["p1", "p2"]),
    st.sampled_from(["u1", "u2", "u3", "u4"]),
    st.integers(0, 40 * 24 * 60),  # minutes over 40 days
    st.sampled_from(["active_use", "active_use", "active_use", "signup", "activation"]),
)


def build(raw: list[tuple[Any, ...]], tag: str) -> list[GrowthEvent]:
    return [ev(kind, BEGIN + timedelta(minutes=minute), user, product=product,
               source_id=f"{tag}{i}") for i, (product, user, minute, kind) in enumerate(raw)]  # fmt: skip


def snapshot(ledger: Ledger) -> dict[str, pd.DataFrame]:
    """The rollup's contents by product and subject (ids are internal)."""
    con = ledger.connection
    try:
        days = con.execute(
            "SELECT u.product, u.subject, d.day, d.prev FROM state_activity_days AS d JOIN "
            "state_activity_users AS u ON u.uid = d.uid AND u.pid = d.pid "
            "ORDER BY 1, 2, 3").df()  # fmt: skip
        users = con.execute("SELECT product, subject, epoch_us(first) AS first, day, last FROM "
                            "state_activity_users ORDER BY 1, 2").df()  # fmt: skip
        products = con.execute("SELECT product, epoch_us(first) AS first, epoch_us(grid) AS grid "
                               "FROM state_activity_products ORDER BY 1").df()  # fmt: skip
    finally:
        con.close()
    return {"days": days.astype({"prev": "float64"}), "users": users, "products": products}


def expected_days(ledger: Ledger, tz: str) -> pd.DataFrame:
    """The user-days and each one's previous active day, from the events in pandas."""
    frame = read_events(ledger, ["active_use"])
    frame = frame[frame["subject"].notna()]
    out = pd.DataFrame({"product": frame["product"].astype(object),
                        "subject": frame["subject"].astype(object),
                        "day": local_day_numbers(frame["ts"].astype(TIME_DTYPE), tz)})  # fmt: skip
    out = out.drop_duplicates().sort_values(["product", "subject", "day"], ignore_index=True)
    out["prev"] = out.groupby(["product", "subject"])["day"].shift(1).astype("float64")
    return out


def active(ledger: Ledger) -> int:
    frame = read_events(ledger, ["active_use"])
    return int(frame["subject"].notna().sum())


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.lists(event, min_size=1, max_size=15), min_size=1, max_size=5),
       st.sampled_from(ZONES))  # fmt: skip
def test_folded_rollup_equals_a_rebuild_and_the_pandas_user_days(
    batches: list[list[tuple[Any, ...]]], tz: str
) -> None:
    """Batches in any time order (late events, earlier first activities, replays)."""
    view_settings = MetricsSettings(timezone=tz)
    with Ledger() as ledger:
        view = LedgerView(ledger, view_settings)
        first = activity.sync(view)
        assert first.built
        for n, raw in enumerate(batches):
            before = active(ledger)
            ledger.append(build(raw, f"b{n}-"))
            if n:
                ledger.append(build(batches[n - 1][:3], f"b{n - 1}-"))  # a replay: no change
            done = activity.sync(view)
            assert not done.built
            assert done.folded == active(ledger) - before  # the new events only
        folded = snapshot(ledger)
        rebuilt = activity.sync(view, rebuild=True)
        assert rebuilt.built
        again = snapshot(ledger)
        want = expected_days(ledger, tz)
    for name in folded:
        pd.testing.assert_frame_equal(folded[name], again[name], obj=name)
    got = folded["days"].reset_index(drop=True)
    pd.testing.assert_frame_equal(got, want, check_dtype=False)


def test_a_fold_reads_only_the_new_events() -> None:
    with Ledger() as ledger:
        ledger.append(build([("p1", f"u{i % 5}", i * 60, "active_use") for i in range(300)], "a"))
        view = LedgerView(ledger, MetricsSettings())
        activity.sync(view)
        ledger.append(build([("p1", "u1", 300 * 60, "active_use"),
                             ("p2", "u9", 301 * 60, "active_use"),
                             ("p2", "u9", 302 * 60, "signup")], "b"))  # fmt: skip
        assert activity.sync(view).folded == 2  # the two new active_use events, no more
        assert activity.sync(view).folded == 0


# -- the engine over the rollup ------------------------------------------------------------


def history(days: int, users: int, seed: int = 7) -> list[GrowthEvent]:
    """Two products' daily activity with gaps, signups and activations."""
    rng = random.Random(seed)
    out = []
    for d in range(days):
        for product in ("p1", "p2"):
            for u in range(users):
                if rng.random() < 0.5:
                    minute = rng.randrange(24 * 60)
                    out.append(ev("active_use", BEGIN + timedelta(days=d, minutes=minute),
                                  f"u{u}", product=product, source_id=f"h{d}-{product}-{u}"))  # fmt: skip
        if d % 5 == 0:
            out.append(ev("signup", BEGIN + timedelta(days=d, hours=3), f"s{d}", product="p1",
                          source_id=f"s{d}"))  # fmt: skip
    return out


def later(days: int) -> list[GrowthEvent]:
    """A few events after the history, one of them late (a day back) and a new user."""
    at = BEGIN + timedelta(days=days)
    return [ev("active_use", at + timedelta(hours=2), "u1", product="p1", source_id="n1"),
            ev("active_use", at + timedelta(hours=3), "new", product="p2", source_id="n2"),
            ev("active_use", at - timedelta(days=3), "u2", product="p2", source_id="n3"),
            ev("activation", at + timedelta(hours=4), "s5", product="p1", source_id="n4")]  # fmt: skip


def stores_of(tmp: Path, name: str) -> SeriesStore:
    return SeriesStore(tmp / f"{name}.duckdb")


def rows(store: SeriesStore) -> dict[str, pd.DataFrame]:
    out = {}
    for m in ("product_daily", "lifecycle_daily", "lifecycle_weekly"):
        frame = store.read(m)
        out[m] = frame.sort_values(list(frame.columns), ignore_index=True)
    return out


def only(engine: MetricsEngine) -> MetricsEngine:
    engine.families = tuple(f for f in engine.families if f.name in ("product", "lifecycle"))
    return engine


@pytest.mark.parametrize("tz", ["UTC", "Europe/Berlin"])
def test_cold_engine_continues_from_the_persisted_rollup(
    tmp_path: Path, tz: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A restart (a new engine and ledger object on the same files) folds the new events
    into the rollup on disk instead of rebuilding it, and leaves the stores as a full
    recompute of the whole ledger does."""
    s = MetricsSettings(timezone=tz)
    path = tmp_path / "ledger.duckdb"
    with Ledger(path) as ledger:
        ledger.append(history(60, 6))
        store = stores_of(tmp_path, "inc")
        only(MetricsEngine(ledger, s, state_path=tmp_path / "state.json")).recompute([store])
        store.close()
    built: list[int] = []
    real_build = activity._build
    monkeypatch.setattr(activity, "_build", lambda *a: (built.append(1), real_build(*a)))
    with Ledger(path) as ledger:  # cold: new objects, the rollup only on disk
        ledger.append(later(60))
        store = stores_of(tmp_path, "inc")
        result = only(MetricsEngine(ledger, s, state_path=tmp_path / "state.json")).update([store])
        assert result.mode == "incremental"
        assert not built, "the cold update rebuilt the rollup instead of folding"
        got = rows(store)
        store.close()
        full = stores_of(tmp_path, "full")
        only(MetricsEngine(ledger, s)).recompute([full])
        want = rows(full)
        full.close()
    for name in want:
        pd.testing.assert_frame_equal(got[name], want[name], obj=name)


def test_retention_and_a_time_zone_change_rebuild_the_rollup() -> None:
    with Ledger() as ledger:
        ledger.append(history(40, 4))
        view = LedgerView(ledger, MetricsSettings(timezone="Europe/Berlin"))
        activity.sync(view)
        ledger.delete_before(BEGIN + timedelta(days=20), keep_first_of=["active_use"])
        done = activity.sync(view)
        assert done.built  # the count below the covered seq changed
        pd.testing.assert_frame_equal(snapshot(ledger)["days"].reset_index(drop=True),
                                      expected_days(ledger, "Europe/Berlin"), check_dtype=False)
        other = LedgerView(ledger, MetricsSettings(timezone="America/New_York"))
        assert activity.sync(other).built
        pd.testing.assert_frame_equal(snapshot(ledger)["days"].reset_index(drop=True),
                                      expected_days(ledger, "America/New_York"),
                                      check_dtype=False)  # fmt: skip


# -- reads only what it must ---------------------------------------------------------------


def _update_reads(days: int, monkeypatch: pytest.MonkeyPatch, users: int = 5) -> dict[str, Any]:
    """What an update after ``days`` of history (``users`` a product) takes: each rollup
    read's day rows (``rows``) and the per-(product, day, previous day) counts it reads in
    their place (``counted``), the event rows the families got, the folds' event counts,
    and the rollup's size."""
    wheres: list[str] = []
    events: list[int] = []
    folds: list[int] = []
    real_where, real_events, real_fold = activity._where, LedgerView.events, activity._fold

    def where(*args: Any) -> str:
        wheres.append(real_where(*args))
        return wheres[-1]

    def read(self: LedgerView, *args: Any, **kwargs: Any) -> pd.DataFrame:
        frame = real_events(self, *args, **kwargs)
        events.append(len(frame))
        return frame

    def fold(*args: Any, **kwargs: Any) -> int:
        folds.append(real_fold(*args, **kwargs))
        return folds[-1]

    with Ledger() as ledger:
        ledger.append(history(days, users))
        engine = only(MetricsEngine(ledger, MetricsSettings()))
        engine.recompute([])
        ledger.append(later(days))
        monkeypatch.setattr(activity, "_where", where)
        monkeypatch.setattr(LedgerView, "events", read)
        monkeypatch.setattr(activity, "_fold", fold)
        engine.update([])
        monkeypatch.undo()
        con = ledger.connection
        try:
            total = int(con.execute(f"SELECT count(*) FROM {activity.DAYS}").fetchone()[0])  # type: ignore[index]
            rows = [int(con.execute(f"SELECT count(*) FROM {activity.DAYS} WHERE {w}")
                        .fetchone()[0]) for w in wheres]  # type: ignore[index]  # fmt: skip
            counted = [int(con.execute(f"SELECT count(*) FROM {activity._COUNTED} WHERE {w}")
                           .fetchone()[0]) for w in wheres]  # type: ignore[index]  # fmt: skip
        finally:
            con.close()
    return {"rows": rows, "counted": counted, "events": events, "folds": folds, "total": total}


def test_an_update_reads_the_recent_days_not_the_history(monkeypatch: pytest.MonkeyPatch) -> None:
    """After months of history, an update of a few events takes from the rollup only the
    day rows from one window before its rewrite (each read's ``WHERE`` counted against the
    table), from the ledger only the new events (the fold) and the product family's
    signups and activations of that window: the same whether the history is 120 or 360
    days. A read without its day range, or a fold of more than the new events, fails."""
    taken = {days: _update_reads(days, monkeypatch) for days in (120, 360)}
    for got in taken.values():
        assert len(got["rows"]) == 3  # the edges, the daily and the weekly lifecycle counts
        assert got["folds"] == [3]  # the three new active_use events, once
        # two products' 5 users, about half of them a day: one window and the rewrite
        assert max(got["rows"]) <= 2 * 5 * 45, got
        assert sum(got["events"]) <= 30, got  # the signups and activations of that window
    assert taken[360]["total"] > 2.5 * taken[120]["total"]
    assert sum(taken[360]["rows"]) <= sum(taken[120]["rows"]) * 1.2, taken
    assert sum(taken[360]["events"]) <= sum(taken[120]["events"]) + 2, taken


def test_an_update_reads_counts_that_do_not_grow_with_the_users(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """With ten times the users a day (same days, same new events), the window's day rows
    grow tenfold, but the reads take the rollup's counts per (product, day, previous day)
    instead: one per distinct gap between a user's active days, which with every user
    active about every other day are a few days whatever the users (they grow by a day or
    two, the longest gap among more users, not tenfold)."""
    few, many = (_update_reads(60, monkeypatch, users) for users in (30, 300))
    assert len(many["counted"]) == 3 and many["folds"] == [3]
    assert sum(many["rows"]) > 7 * sum(few["rows"]), (few, many)
    assert sum(many["counted"]) < 2 * sum(few["counted"]), (few, many)
    assert sum(many["counted"]) * 10 < sum(many["rows"]), many
