"""Issue #10: the metric defects an independent check found, each with hand-computed
numbers (the arithmetic is in the comments; nothing is read off the engine)."""

from __future__ import annotations

from typing import ClassVar

import numpy as np
import pandas as pd
import pytest
from metric_cases import ev, frame, sub, t

from growthwatch.metrics._frame import local_day_range
from growthwatch.metrics.customers import churn_periods
from growthwatch.metrics.engagement import product_daily
from growthwatch.metrics.engine import MetricsEngine, compute
from growthwatch.metrics.mrr import compute_mrr
from growthwatch.metrics.revenue import revenue
from growthwatch.metrics.settings import Funnel, MetricsSettings
from growthwatch.stores.influx import InfluxStore
from growthwatch.stores.ledger import Ledger
from growthwatch.stores.series import SeriesStore

USD = MetricsSettings()
BERLIN = MetricsSettings(timezone="Europe/Berlin")


def by_day(events: list, settings: MetricsSettings = USD, until: str | None = None) -> pd.DataFrame:
    state = compute_mrr(frame(*events), settings, None if until is None else pd.Timestamp(t(until)))
    out = churn_periods(state, "D", tz=settings.timezone)
    out["day"] = out["time"].dt.tz_convert(settings.timezone).dt.strftime("%Y-%m-%d")
    return out[out["product"] == "p1"].set_index("day")


# -- 1. same-second change and cancel: the MRR chain decides the order ----------------------


@pytest.mark.parametrize("ids", [("c1", "x1"), ("c0", "x0"), ("x1", "c1"), ("zz", "aa")])
def test_same_second_change_then_cancel_follows_the_mrr_chain(ids: tuple[str, str]) -> None:
    change_id, cancel_id = ids
    events = [
        sub("2026-01-01 09:00", 0, 100, "b1", sid="s", source_id="start"),
        sub("2026-01-10 12:00", 100, 150, "b1", sid="s", source_id=change_id),
        sub("2026-01-10 12:00", 150, 0, "b1", sid="s", source_id=cancel_id),
    ]
    state = compute_mrr(frame(*events), USD)
    d = by_day(events)
    # chain 0 -> 100 -> 150 -> 0: MRR 0 from Jan 10; the change and the cancel are netted
    # (same instant): 100 -> 0 is churn of 100, no expansion; the customer is inactive.
    assert d.loc["2026-01-10", "mrr_end"] == 0
    assert d.loc["2026-01-10", "churn"] == 100
    assert d.loc["2026-01-10", "expansion"] == 0
    assert d.loc["2026-01-10", "customers_end"] == 0
    assert state.chain_breaks == 0


def test_a_broken_chain_is_counted_and_the_latest_observation_wins() -> None:
    events = [
        sub("2026-01-01", 0, 100, sid="s"),
        sub("2026-01-05", 80, 120, sid="s"),  # says 80 before, but the state was 100: a break
    ]
    state = compute_mrr(frame(*events), USD)
    assert state.chain_breaks == 1
    # state = the latest mrr_after: 120 (expansion 120 - 100 = 20)
    assert by_day(events).loc["2026-01-05", ["mrr_end", "expansion"]].tolist() == [120, 20]
    with Ledger() as ledger:  # the engine's run reports the count too
        ledger.append(events)
        assert MetricsEngine(ledger, USD).recompute([]).chain_breaks == 1


# -- 3. a pause is not churn ----------------------------------------------------------------


def _paused_events() -> list:
    return [
        sub("2026-01-05", 0, 100, "a", sid="sa"),
        sub("2026-01-06", 0, 80, "b", sid="sb"),
        sub("2026-02-10", 100, 0, "a", sid="sa", type_="subscription_paused"),
    ]


def test_a_pause_is_reported_apart_from_churn() -> None:
    events = _paused_events()
    d = by_day(events, until="2026-02-28")
    feb10 = d.loc["2026-02-10"]
    # a pauses: MRR 180 -> 80 by a "paused" movement of 100, no churn
    assert feb10[["churn", "paused", "mrr_end", "paused_mrr"]].tolist() == [0, 100, 80, 100]
    # customers: 1 active (b), 1 paused (a), 0 churned
    assert feb10[["customers_end", "customers_paused", "churned"]].tolist() == [1, 1, 0]
    state = compute_mrr(frame(*events), USD, pd.Timestamp(t("2026-03-01")))
    feb = churn_periods(state, "MS").set_index(["product", "time"]).loc[("p1", t("2026-02-01"))]
    # February: customers at start 2, churned 0 -> churn rate 0 / 2 = 0; gross MRR churn 0
    assert feb["customer_churn_rate"] == 0
    assert feb["gross_mrr_churn_rate"] == 0
    # identity: 180 + 0 - 100 (paused) = 80
    assert feb["mrr_start"] + feb["resumed"] - feb["paused"] == feb["mrr_end"] == 80


def test_a_resume_is_neither_new_nor_reactivation_and_keeps_the_identity() -> None:
    events = [
        *_paused_events(),
        sub("2026-03-02", 0, 110, "a", sid="sa", type_="subscription_resumed"),
    ]
    d = by_day(events)
    mar2 = d.loc["2026-03-02"]
    # back at 110: resumed 110, paused MRR back to 0, 2 active, 0 paused
    assert mar2[["resumed", "reactivation", "new", "mrr_end"]].tolist() == [110, 0, 0, 190]
    assert mar2[["paused_mrr", "customers_end", "customers_paused"]].tolist() == [0, 2, 0]
    flows = (d["new"] + d["expansion"] + d["reactivation"] + d["resumed"] - d["contraction"]
             - d["churn"] - d["paused"] + d["fx_impact"])  # fmt: skip
    assert np.allclose(d["mrr_start"] + flows, d["mrr_end"])


# -- 4. netting across midnight ---------------------------------------------------------------


def test_netting_crosses_midnight_and_belongs_to_the_first_changes_day() -> None:
    events = [
        sub("2026-01-01 10:00", 0, 100, sid="old"),
        sub("2026-01-31 23:40", 100, 0, sid="old"),  # cancel ...
        sub("2026-02-01 00:20", 0, 150, sid="new"),  # ... and a new plan 40 minutes later
    ]
    d = by_day(events, until="2026-02-02")
    # one movement: 100 -> 150 = expansion of 50, dated Jan 31 (its first change)
    assert d.loc["2026-01-31", ["expansion", "churn", "mrr_end"]].tolist() == [50, 0, 150]
    assert d.loc["2026-02-01", ["reactivation", "mrr_end"]].tolist() == [0, 150]
    state = compute_mrr(frame(*events), USD, pd.Timestamp(t("2026-02-02")))
    jan = churn_periods(state, "MS").set_index(["product", "time"]).loc[("p1", t("2026-01-01"))]
    assert jan["customer_churn_rate"] != jan["customer_churn_rate"]  # nobody at Jan 1: NaN
    feb = churn_periods(state, "MS").set_index(["product", "time"]).loc[("p1", t("2026-02-01"))]
    assert feb["customers_start"] == 1 and feb["churned"] == 0  # 0 / 1 = 0 % in February
    assert d.loc["2026-01-31", "customers_end"] == 1


# -- 5. trailing-12-month NRR/GRR and partial periods -----------------------------------------


def test_trailing_12_month_nrr_grr_are_cohort_based() -> None:
    events = [
        sub("2025-01-01", 0, 100, "a", sid="a"),
        sub("2025-01-01", 0, 100, "b", sid="b"),
        sub("2025-03-01", 0, 500, "n", sid="n"),  # joins later: not in the Jan cohort
        sub("2025-06-01", 100, 0, "b", sid="b"),  # b churns
        sub("2025-09-01", 100, 160, "a", sid="a"),  # a expands
        sub("2026-02-01", 500, 0, "n", sid="n"),  # n churns after the cohort month
    ]
    state = compute_mrr(frame(*events), USD, pd.Timestamp(t("2026-02-15")))
    monthly = churn_periods(state, "MS", until=pd.Timestamp(t("2026-02-15")))
    m = monthly[monthly["product"] == "p1"].set_index("time")
    # Jan 2026: cohort = paying at end of Jan 2025 = {a: 100, b: 100} -> then 200
    # now: a 160, b 0 -> NRR = 160 / 200 = 0.8; GRR = min(160,100) + 0 = 100 / 200 = 0.5
    jan26 = m.loc[t("2026-01-01")]
    assert jan26["nrr_t12m"] == pytest.approx(0.8)
    assert jan26["grr_t12m"] == pytest.approx(0.5)
    # Feb 2026: cohort = paying at end of Feb 2025 = {a, b} again (n joined in March)
    assert m.loc[t("2026-02-01"), "nrr_t12m"] == pytest.approx(0.8)
    # Dec 2025: cohort of Dec 2024 is empty -> undefined
    assert np.isnan(m.loc[t("2025-12-01"), "nrr_t12m"])
    # partial: Feb 2026 ends after the horizon (Feb 15); Jan 2026 is complete
    assert m.loc[t("2026-02-01"), "partial"] == 1
    assert m.loc[t("2026-01-01"), "partial"] == 0
    yearly = churn_periods(state, "YS", until=pd.Timestamp(t("2026-02-15")))
    y = yearly[yearly["product"] == "p1"].set_index("time")
    assert y.loc[t("2026-01-01"), "partial"] == 1  # year to date
    assert y.loc[t("2025-01-01"), "partial"] == 0  # data begins Jan 1: complete
    # 2025's figure is Dec 2025's: cohort Dec 2024 empty -> NaN
    assert np.isnan(y.loc[t("2025-01-01"), "nrr_t12m"])


def test_a_first_year_that_starts_mid_year_is_partial() -> None:
    events = [sub("2025-07-10", 0, 100)]
    state = compute_mrr(frame(*events), USD, pd.Timestamp(t("2026-03-01")))
    y = churn_periods(state, "YS", until=pd.Timestamp(t("2026-03-01")))
    y = y[y["product"] == "p1"].set_index("time")
    assert y.loc[t("2025-01-01"), "partial"] == 1  # begins Jul 10
    m = churn_periods(state, "MS", until=pd.Timestamp(t("2026-03-01")))
    m = m[m["product"] == "p1"].set_index("time")
    assert m.loc[t("2025-07-01"), "partial"] == 1  # first month begins on the 10th
    assert m.loc[t("2025-08-01"), "partial"] == 0
    assert m.loc[t("2026-02-01"), "partial"] == 0  # ends Mar 1 = horizon: complete


# -- 6. smaller things ------------------------------------------------------------------------


def test_hourly_revenue_has_zero_rows_between_first_and_last_payment() -> None:
    events = [
        ev("payment", "2026-01-01 10:15", value="10"),
        ev("payment", "2026-01-01 13:05", value="5"),
    ]
    both = revenue(frame(*events), USD.fx, "h")
    out = both[both["product"] != "all"]
    # hours 10, 11, 12, 13: 10 and 13 carry money, 11 and 12 are zeros
    assert out["time"].dt.hour.tolist() == [10, 11, 12, 13]
    assert both[both["product"] == "all"]["gross"].tolist() == [10, 0, 0, 5]  # and the portfolio
    assert out["gross"].tolist() == [10, 0, 0, 5]
    assert out["payments"].tolist() == [1, 0, 0, 1]


def test_activation_cohorts_inside_their_window_are_marked_maturing() -> None:
    settings = MetricsSettings(activation_window_days=3)
    events = [ev("signup", f"2026-01-0{d}", f"u{d}") for d in range(1, 6)]
    until = pd.Timestamp(t("2026-01-05 12:00"))
    out = product_daily(frame(*events), settings, until)
    mine = out[out["product"] == "p1"]
    p1 = mine.set_index(mine["time"].dt.day)["maturing"]
    # day d is final once d + 3 has ended, i.e. at the start of d + 4 <= Jan 5 12:00:
    # Jan 1 (final at Jan 5 00:00) -> 0; Jan 2..5 -> 1
    assert p1.to_dict() == {1: 0, 2: 1, 3: 1, 4: 1, 5: 1}


# -- timezone: days, months and years in the reporting timezone --------------------------------


def test_berlin_days_on_the_spring_dst_change_have_23_hours() -> None:
    events = [
        sub("2026-03-28 22:30", 0, 100, "a", sid="a"),  # Mar 28 23:30 Berlin (CET, +1)
        sub("2026-03-28 23:30", 0, 50, "b", sid="b"),  # Mar 29 00:30 Berlin
        sub("2026-03-29 21:30", 0, 20, "c", sid="c"),  # Mar 29 23:30 Berlin (CEST, +2)
        sub("2026-03-29 22:30", 0, 10, "d", sid="d"),  # Mar 30 00:30 Berlin
    ]
    d = by_day(events, BERLIN)
    # Berlin Mar 28: a (100); Mar 29: b + c (70); Mar 30: d (10)
    assert d["new"].to_dict() == {"2026-03-28": 100, "2026-03-29": 70, "2026-03-30": 10}
    times = d["time"].dt.tz_convert("UTC").dt.strftime("%m-%d %H:%M").tolist()
    # stored at the UTC instants of Berlin midnights: CET -1h, then CEST -2h
    assert times == ["03-27 23:00", "03-28 23:00", "03-29 22:00"]
    # Mar 29 runs 23:00Z -> 22:00Z next day: 23 hours
    assert (d["time"].iloc[2] - d["time"].iloc[1]) == pd.Timedelta(hours=23)


def test_berlin_autumn_day_has_25_hours_and_months_follow_berlin() -> None:
    events = [
        ev("payment", "2026-10-24 22:30", value="1"),  # Oct 25 00:30 Berlin (CEST)
        ev("payment", "2026-10-25 22:30", value="2"),  # Oct 25 23:30 Berlin (CET)
        ev("payment", "2026-10-31 23:30", value="4"),  # Nov 1 00:30 Berlin -> November
    ]
    settings = BERLIN
    out = revenue(frame(*events), settings.fx, "D", settings.timezone)
    got = dict(zip(out["time"].dt.strftime("%m-%d %H:%M"), out["gross"], strict=True))
    # both of the first two fall in Berlin's Oct 25 (starts 22:00Z Oct 24, 25 hours long)
    assert got == {"10-24 22:00": 3.0, "10-31 23:00": 4.0}
    hourly = revenue(frame(*events), settings.fx, "h", settings.timezone)
    assert hourly["time"].iloc[0] == pd.Timestamp("2026-10-24 22:00", tz="UTC")  # UTC hours
    frames = compute(frame(sub("2026-10-31 23:30", 0, 40)), settings)
    monthly = frames["churn_monthly"]
    row = monthly[monthly["product"] == "p1"].iloc[0]
    # 23:30Z Oct 31 is Nov 1 00:30 in Berlin: November's new MRR, stored at 23:00Z Oct 31
    assert row["time"] == pd.Timestamp("2026-10-31 23:00", tz="UTC") and row["new"] == 40


def test_settings_read_the_reporting_timezone() -> None:
    class Cfg:
        reporting_currency = "USD"
        fx_rates: ClassVar[dict[str, object]] = {}
        timezone = "Europe/Berlin"

        def section(self, name: str) -> dict[str, object]:
            return {}

    assert MetricsSettings.from_config(Cfg()).timezone == "Europe/Berlin"
    assert MetricsSettings().timezone == "UTC"


# -- 2. late data: the stores end as a recompute into empty stores ------------------------------


def _store_rows(store: SeriesStore, name: str) -> list[tuple]:
    frame = store.read(name)
    if frame.empty:
        return []
    frame = frame.drop(columns=[c for c in frame.columns if frame[c].isna().all()])
    return sorted(map(tuple, frame.astype(str).to_numpy().tolist()))


def test_a_late_signup_removes_the_cohort_it_left(tmp_path) -> None:
    early = [
        ev("signup", "2026-03-05", "z"), ev("active_use", "2026-03-06", "z"),
        ev("signup", "2026-02-10", "y"), ev("active_use", "2026-02-11", "y"),
    ]  # fmt: skip
    late = [ev("signup", "2026-02-20", "z")]
    store = SeriesStore(tmp_path / "s.duckdb")
    with Ledger() as ledger:
        engine = MetricsEngine(ledger, USD)
        ledger.append(early)
        engine.recompute([store])
        ledger.append(late)
        engine.update([store])
    rows = store.read("cohort_retention", tags={"product": "p1", "basis": "logo"})
    sizes = dict(zip(rows["time"].dt.strftime("%m"), rows["cohort_size"], strict=False))
    # y and z both in February now (size 2); the March cohort (z alone) no longer exists
    assert sizes == {"02": 2}
    fresh = SeriesStore(tmp_path / "fresh.duckdb")
    with Ledger() as ledger:
        ledger.append(early + late)
        MetricsEngine(ledger, USD).recompute([fresh])
    for name in ("cohort_retention", "product_daily", "traffic_daily"):
        assert _store_rows(store, name) == _store_rows(fresh, name), name
    store.close()
    fresh.close()


def test_influx_delete_removes_rows_that_stopped_existing(influx_server, influx_db) -> None:  # type: ignore[no-untyped-def]
    influx_store = InfluxStore(influx_server.url, influx_db)
    influx_store.ensure_database()
    early = [ev("signup", "2026-03-05", "z"), ev("active_use", "2026-03-06", "z")]
    late = [ev("signup", "2026-02-20", "z")]
    with Ledger() as ledger:
        engine = MetricsEngine(ledger, USD)
        ledger.append(early)
        engine.recompute([influx_store])
        before = influx_store.read("cohort_retention", tags={"basis": "logo", "product": "p1"})
        assert sorted(before["time"].dt.month.unique()) == [3]
        ledger.append(late)
        engine.update([influx_store])
    after = influx_store.read("cohort_retention", tags={"basis": "logo", "product": "p1"})
    # z now belongs to February (cells Feb age 0, Feb age 1); March is gone
    assert sorted(after["time"].dt.month.unique()) == [2]
    assert sorted(after["age"].astype(int)) == [0, 1]


def test_late_event_joining_a_netting_group_across_midnight_moves_the_movement() -> None:
    first = [sub("2026-01-01 10:00", 0, 100, sid="old"), sub("2026-01-31 23:40", 100, 0, sid="old")]
    late = [sub("2026-02-01 00:20", 0, 150, sid="new")]
    from test_properties import MemoryStore  # the keyed store the property test uses

    incremental, full = MemoryStore(), MemoryStore()
    with Ledger() as ledger:
        engine = MetricsEngine(ledger, USD)
        ledger.append(first)
        engine.update([incremental])
        ledger.append(late)
        engine.update([incremental])
    with Ledger() as ledger:
        ledger.append(first + late)
        MetricsEngine(ledger, USD).recompute([full])
    assert incremental.points == full.points
    jan31 = full.points[("mrr_daily", ("p1",), pd.Timestamp("2026-01-31", tz="UTC"))]
    assert (jan31["churn"], jan31["expansion"]) == (0.0, 50.0)  # 100 -> 150 netted


def test_late_events_remove_stale_funnel_and_revenue_cohort_rows(tmp_path) -> None:  # type: ignore[no-untyped-def]
    settings = MetricsSettings(funnels=(Funnel("f", ("signup", "activation"), window_days=3),))
    early = [
        ev("signup", "2026-03-05", "z"),  # z enters the funnel in March ...
        sub("2026-03-10", 0, 100, "k", sid="k"),  # ... k's first paid MRR is in March
    ]
    late = [
        ev("signup", "2026-02-20", "z"),  # ... until an earlier signup arrives: February
        sub("2026-02-15", 0, 100, "k", sid="k0"),  # k paid from February on another sub
        sub("2026-03-01", 100, 0, "k", sid="k0"),
    ]
    store = SeriesStore(tmp_path / "s.duckdb")
    with Ledger() as ledger:
        engine = MetricsEngine(ledger, settings)
        ledger.append(early)
        engine.recompute([store])
        ledger.append(late)
        engine.update([store])
    steps = store.read("funnel_steps", tags={"product": "p1"})
    # z's entry month is February now: no March funnel row is left
    assert sorted(steps["time"].dt.strftime("%m").unique()) == ["02"]
    branches = store.read("funnel_branches", tags={"product": "p1"})
    assert sorted(branches["time"].dt.strftime("%m").unique()) == ["02"]
    revenue_cohorts = store.read("cohort_retention", tags={"product": "p1", "basis": "revenue"})
    # k's first paid MRR is Feb 15: the revenue cohort is February (size 1); March is gone
    assert sorted(revenue_cohorts["time"].dt.strftime("%m").unique()) == ["02"]
    assert set(revenue_cohorts["cohort_size"]) == {1}
    fresh = SeriesStore(tmp_path / "fresh.duckdb")
    with Ledger() as ledger:
        ledger.append(early + late)
        MetricsEngine(ledger, settings).recompute([fresh])
    for name in ("funnel_steps", "funnel_branches", "cohort_retention", "mrr_daily"):
        assert _store_rows(store, name) == _store_rows(fresh, name), name
    store.close()
    fresh.close()


def test_berlin_day_grid_has_23_and_25_hour_days() -> None:
    spring = local_day_range(pd.Timestamp("2026-03-28 12:00", tz="UTC"),
                             pd.Timestamp("2026-03-30 12:00", tz="UTC"), "Europe/Berlin")
    # Berlin midnights: Mar 28 00:00 CET = 27th 23:00Z; Mar 29 = 28th 23:00Z; Mar 30 00:00
    # CEST = 29th 22:00Z -> Mar 29 lasts 23 hours
    assert [d.strftime("%d %H") for d in spring] == ["27 23", "28 23", "29 22"]
    autumn = local_day_range(pd.Timestamp("2026-10-25 12:00", tz="UTC"),
                             pd.Timestamp("2026-10-26 12:00", tz="UTC"), "Europe/Berlin")
    # Oct 25 00:00 CEST = 24th 22:00Z; Oct 26 00:00 CET = 25th 23:00Z -> 25 hours
    assert [d.strftime("%d %H") for d in autumn] == ["24 22", "25 23"]
    assert autumn[1] - autumn[0] == pd.Timedelta(hours=25)
