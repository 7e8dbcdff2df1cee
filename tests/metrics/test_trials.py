"""Trials: hand-computed trial-to-paid conversion, maturing cohorts and active trials."""

from __future__ import annotations

import copy
import math
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from hypothesis import given
from hypothesis import settings as hyp_settings
from hypothesis import strategies as st
from metric_cases import ev, frame, sub, t

from growthwatch.metrics.settings import MetricsSettings
from growthwatch.metrics.trials import trial_table, trials_daily, trials_monthly

S = MetricsSettings(trial_conversion_days=10)
UNTIL = pd.Timestamp("2026-01-20", tz="UTC")


def trial(when: str, subject: str, sid: str, **kw: object) -> object:
    return ev("trial_started", when, subject, before=0, after=0, sid=sid, **kw)


def cases() -> pd.DataFrame:
    """Five trials of p1 (N = 10 days), worked out by hand in the tests below:

    * c1 starts Jan 1 10:00 (and again 11:00: a replay of the same subscription), pays
      Jan 8: converted after 7 days, active at the end of Jan 1..7.
    * c2 starts Jan 1 12:00, pays only Jan 15 (14 days > 10): not converted; a payment on
      Jan 3 is no paid period. Its trial ends at start + 10 days (Jan 11): active Jan 1..10.
    * c3 starts Jan 2 with trial_end Jan 5 in its metadata but is cancelled Jan 4:
      active Jan 2..3.
    * c4 starts Jan 2 with trial_end (epoch seconds) Jan 9 00:00: active Jan 2..8.
    * c5 starts Jan 3 08:00 and pays the same day at 20:00: converted, never active.
    """
    return frame(
        trial("2026-01-01 10:00", "c1", "s1"),
        trial("2026-01-01 11:00", "c1", "s1"),
        sub("2026-01-08 10:00", 0, 50, "c1", sid="s1"),
        trial("2026-01-01 12:00", "c2", "s2"),
        ev("payment", "2026-01-03 09:00", "c2", value="5"),
        sub("2026-01-15 12:00", 0, 20, "c2", sid="s2"),
        trial("2026-01-02 09:00", "c3", "s3", trial_end="2026-01-05T09:00:00Z"),
        sub("2026-01-04 09:00", 0, 0, "c3", sid="s3", type_="subscription_cancelled"),
        trial("2026-01-02 10:00", "c4", "s4", trial_end=int(t("2026-01-09").timestamp())),
        trial("2026-01-03 08:00", "c5", "s5"),
        sub("2026-01-03 20:00", 0, 30, "c5", sid="s5"),
    )


def _p1(out: pd.DataFrame, product: str = "p1") -> pd.DataFrame:
    mine = out[out["product"] == product]
    return mine.set_index(mine["time"].dt.strftime("%m-%d"))


def test_trial_table_finds_each_trials_conversion_and_end() -> None:
    table = trial_table(cases(), S).set_index("subject")
    assert list(table.index) == ["c1", "c2", "c3", "c4", "c5"]  # the replayed start is one trial
    assert table.loc["c1", "start"] == pd.Timestamp("2026-01-01 10:00", tz="UTC")
    assert table.loc["c1", "converted_at"] == pd.Timestamp("2026-01-08 10:00", tz="UTC")
    assert pd.isna(table.loc["c2", "converted_at"])
    assert table.loc["c2", "end"] == pd.Timestamp("2026-01-11 12:00", tz="UTC")
    assert table.loc["c3", "end"] == pd.Timestamp("2026-01-04 09:00", tz="UTC")  # cancelled
    assert table.loc["c4", "end"] == pd.Timestamp("2026-01-09", tz="UTC")  # metadata trial_end
    assert table.loc["c5", "end"] == table.loc["c5", "converted_at"]


def test_day_cohorts_conversion_and_active_trials() -> None:
    day = _p1(trials_daily(cases(), S, UNTIL))
    assert list(day.index) == [f"01-{d:02d}" for d in range(1, 21)]  # first trial .. until
    assert list(day["trials_started"].iloc[:4]) == [2, 2, 1, 0]
    assert list(day["trials_converted"].iloc[:4]) == [1, 0, 1, 0]
    assert day.loc["01-01", "trial_conversion"] == 0.5
    assert day.loc["01-02", "trial_conversion"] == 0.0
    assert day.loc["01-03", "trial_conversion"] == 1.0
    assert math.isnan(day.loc["01-04", "trial_conversion"])  # no trials: undefined
    # by hand: c1 1..7, c2 1..10, c3 2..3, c4 2..8, c5 never
    assert list(day["active_trials"].iloc[:12]) == [2, 4, 4, 3, 3, 3, 3, 2, 1, 1, 0, 0]
    assert day["active_trials"].iloc[12:].eq(0).all()


def test_cohorts_inside_their_window_are_maturing_and_have_no_rate() -> None:
    day = _p1(trials_daily(cases(), S, UNTIL))
    # day d closes at the start of d + N + 1: Jan 9 closes Jan 20 = until; Jan 10 later
    assert day.loc[:"01-09", "maturing"].eq(0).all()
    assert day.loc["01-10":, "maturing"].eq(1).all()
    late = trials_daily(frame(trial("2026-01-15 09:00", "c9", "s9")), S, UNTIL)
    row = _p1(late).loc["01-15"]
    assert (row["trials_started"], row["maturing"]) == (1, 1)
    assert math.isnan(row["trial_conversion"])  # not mature: undefined, not 0


def test_month_cohorts_mature_n_days_after_the_months_last_day() -> None:
    jan = _p1(trials_monthly(cases(), S, UNTIL)).loc["01-01"]
    assert (jan["trials_started"], jan["trials_converted"], jan["maturing"]) == (5, 2, 1)
    assert math.isnan(jan["trial_conversion"])
    # Jan 31 + 10 days ends Feb 10: mature on Feb 11, still maturing a minute before
    before = _p1(trials_monthly(cases(), S, pd.Timestamp("2026-02-10 23:59", tz="UTC")))
    assert before.loc["01-01", "maturing"] == 1
    assert list(before.index) == ["01-01", "02-01"]
    mature = _p1(trials_monthly(cases(), S, pd.Timestamp("2026-02-11", tz="UTC"))).loc["01-01"]
    assert (mature["maturing"], mature["trial_conversion"]) == (0, 0.4)


def test_portfolio_sums_products_and_recomputes_the_rate() -> None:
    events = pd.concat(
        [cases(), frame(trial("2026-01-01 09:00", "d1", "x1", product="p2"),
                        sub("2026-01-02 09:00", 0, 9, "d1", sid="x1", product="p2"))]
    )  # fmt: skip
    out = trials_daily(events, S, UNTIL)
    total = _p1(out, "all")
    row = total.loc["01-01"]
    assert (row["trials_started"], row["trials_converted"], row["active_trials"]) == (3, 2, 3)
    assert row["trial_conversion"] == 2 / 3


def test_cancellation_of_another_subscription_does_not_end_the_trial() -> None:
    events = frame(
        trial("2026-01-01 09:00", "c1", "trial-sub"),
        sub("2026-01-03 09:00", 0, 0, "c1", sid="old-sub", type_="subscription_cancelled"),
    )
    row = trial_table(events, S).iloc[0]
    assert row["end"] == pd.Timestamp("2026-01-11 09:00", tz="UTC")


def test_days_are_reporting_timezone_days() -> None:
    berlin = MetricsSettings(trial_conversion_days=10, timezone="Europe/Berlin")
    out = trials_daily(frame(trial("2026-01-01 23:30", "c1", "s1")), berlin, UNTIL)
    first = out[out["product"] == "p1"].iloc[0]
    assert first["time"] == pd.Timestamp("2026-01-01 23:00", tz="UTC")  # Berlin's Jan 2
    assert first["trials_started"] == 1


def test_no_trials_gives_empty_frames() -> None:
    only_paid = frame(sub("2026-01-03 20:00", 0, 30, "c5"))
    assert trials_daily(only_paid, S, UNTIL).empty
    assert trials_monthly(frame(), S, UNTIL).empty


def test_day_by_day_updates_equal_a_full_recompute_for_trials_and_lifecycle() -> None:
    """The engine's incremental path (touch/grid/read starts of both families): the cases
    appended one day at a time, a late conversion and a late early activity last."""
    from test_properties import MemoryStore

    from growthwatch.metrics.engine import MetricsEngine
    from growthwatch.stores.ledger import Ledger

    late = [
        sub("2026-01-09 09:00", 0, 40, "c4", sid="s4"),  # converts c4 inside N days
        ev("active_use", "2026-01-01 08:00", "c3"),
    ]  # before c3's known first activity
    activity = [ev("active_use", f"2026-01-{d:02d} 12:00", u) for d, u in
                ((2, "c3"), (3, "c1"), (5, "c3"), (9, "c1"), (16, "c1"), (24, "c3"),
                 (2, "u9"), (28, "u9"))]  # u9: back after weeks, its first long unread  # fmt: skip
    events = pd.concat([cases(), frame(*activity)]).sort_values("ts", kind="stable")
    days = events["ts"].dt.floor("D")

    def recomputed(frames: list[pd.DataFrame]) -> dict[Any, Any]:
        store = MemoryStore()
        with Ledger() as ledger:
            ledger.append(pd.concat(frames))
            MetricsEngine(ledger, S).recompute([store])
        return mine(store)

    def mine(store: MemoryStore) -> dict[Any, Any]:
        return {k: v for k, v in store.points.items() if k[0].startswith(("trials", "life"))}

    incremental = MemoryStore()
    with Ledger() as ledger:
        engine = MetricsEngine(ledger, S)
        for day in days.unique():
            ledger.append(events[days == day])
            engine.update([incremental])
        in_order = copy.deepcopy(mine(incremental))  # the store updates fields in place
        ledger.append(frame(*late))
        engine.update([incremental])
    assert len(in_order) > 50  # both families wrote their grids
    assert in_order == recomputed([events])
    assert mine(incremental) == recomputed([events, frame(*late)])


def test_trial_conversion_days_is_read_from_the_config_and_checked(tmp_path: Path) -> None:
    from growthwatch import ConfigError, load_config

    path = tmp_path / "growthwatch.yaml"
    path.write_text("products: [{id: p1}]\nmetrics: {trial_conversion_days: 14}\n")
    assert MetricsSettings.from_config(load_config(path)).trial_conversion_days == 14
    path.write_text("products: [{id: p1}]\n")
    assert MetricsSettings.from_config(load_config(path)).trial_conversion_days == 30
    path.write_text("products: [{id: p1}]\nmetrics: {trial_conversion_days: 0}\n")
    with pytest.raises(ConfigError, match="trial_conversion_days"):
        load_config(path)


_KEY = st.sampled_from(["a", "b", "c"])
_MINUTE = st.integers(0, 60)


@hyp_settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(_KEY, _KEY, _MINUTE), min_size=1, max_size=12),
       st.lists(st.tuples(_KEY, _KEY, _MINUTE), min_size=1, max_size=12))  # fmt: skip
def test_first_after_pairwise_is_the_merge_asof(
    left: list[tuple[str, str, int]], right: list[tuple[str, str, int]]
) -> None:
    """The few-rows path of ``_first_after`` (every pair compared, an update's touched
    customers) finds what the ``merge_asof`` finds: the earliest event of the same keys at
    or after each start, NaT when none (ties at the same minute included)."""
    import growthwatch.metrics.trials as trials_mod

    base = pd.Timestamp("2026-01-01", tz="UTC")
    lhs = pd.DataFrame({"product": [p for p, _s, _m in left], "subject": [s for _p, s, _m in left],
                        "start": [base + pd.Timedelta(minutes=m) for _p, _s, m in left]})  # fmt: skip
    rhs = pd.DataFrame({"product": [p for p, _s, _m in right], "subject": [s for _p, s, _m in right],
                        "ts": [base + pd.Timedelta(minutes=m) for _p, _s, m in right]})  # fmt: skip
    by = ["product", "subject"]
    saved = trials_mod._PAIRWISE
    try:
        trials_mod._PAIRWISE = 10**9
        fast = trials_mod._first_after(lhs, rhs, by, "_x")
        trials_mod._PAIRWISE = -1
        asof = trials_mod._first_after(lhs, rhs, by, "_x")
    finally:
        trials_mod._PAIRWISE = saved
    pd.testing.assert_series_equal(fast, asof)
    for i, (p, s, minute) in enumerate(left):  # and both are what the definition says
        hits = [base + pd.Timedelta(minutes=rm) for rp, rs, rm in right
                if (rp, rs) == (p, s) and rm >= minute]  # fmt: skip
        assert (pd.isna(fast.iloc[i]) if not hits else fast.iloc[i] == min(hits))
