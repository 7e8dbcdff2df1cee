"""The engine over a ledger: targeted incremental cases, ranges, the state file, InfluxDB."""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd
import pytest
from metric_cases import ev, sub
from test_properties import MemoryStore

from growthwatch.events import GrowthEvent
from growthwatch.metrics.engine import MetricsEngine, compute, metric_batches, to_batches
from growthwatch.metrics.settings import Funnel, MetricsSettings
from growthwatch.stores.influx import InfluxStore
from growthwatch.stores.ledger import Ledger
from growthwatch.stores.series import SeriesStore
from growthwatch.testing.servers import InfluxServer

S = MetricsSettings(
    activation_window_days=3,
    funnels=(Funnel("paid", ("signup", "activation", "payment"), window_days=5),),
)


def incremental_vs_full(*chunks: list[GrowthEvent]) -> tuple[MemoryStore, MemoryStore]:
    inc = MemoryStore()
    with Ledger() as ledger:
        engine = MetricsEngine(ledger, S)
        for chunk in chunks:
            ledger.append(chunk)
            engine.update([inc])
    full = MemoryStore()
    with Ledger() as ledger:
        ledger.append([e for c in chunks for e in c])
        MetricsEngine(ledger, S).recompute([full])
    return inc, full


def assert_same(inc: MemoryStore, full: MemoryStore) -> None:
    assert inc.points.keys() == full.points.keys()
    for key, fields in full.points.items():
        assert inc.points[key] == pytest.approx(fields), key


def point(store: MemoryStore, measurement: str, tags: tuple[str, ...], day: str) -> dict:
    return store.points[(measurement, tags, pd.Timestamp(day, tz="UTC"))]


def test_activation_arriving_later_updates_the_earlier_signup_cohort() -> None:
    first = [ev("signup", "2026-01-01 10:00", "u1"), ev("signup", "2026-01-01", "u2"),
             ev("active_use", "2026-01-02", "u9")]  # fmt: skip
    later = [ev("activation", "2026-01-03 09:00", "u1"), ev("active_use", "2026-01-03", "u9")]
    inc, full = incremental_vs_full(first, later)
    assert_same(inc, full)
    day1 = point(inc, "product_daily", ("p1",), "2026-01-01")
    assert (day1["activated"], day1["activation_rate"]) == (1, 0.5)


def test_new_day_extends_every_grid_even_without_events_of_that_family() -> None:
    first = [ev("active_use", "2026-01-01", "u1"), sub("2026-01-02", 0, 100)]
    later = [ev("payment", "2026-01-05 12:00", value="10")]  # only revenue arrives
    inc, full = incremental_vs_full(first, later)
    assert_same(inc, full)
    assert point(inc, "mrr_daily", ("p1",), "2026-01-05")["mrr"] == 100
    assert point(inc, "product_daily", ("p1",), "2026-01-05")["mau"] == 1


def test_late_subscription_event_rewrites_every_later_day() -> None:
    first = [sub("2026-01-01", 0, 100), ev("payment", "2026-01-10", value="1")]
    late = [sub("2026-01-03", 0, 50, "c2")]
    inc, full = incremental_vs_full(first, late)
    assert_same(inc, full)
    assert point(inc, "mrr_daily", ("all",), "2026-01-10")["mrr"] == 150
    assert point(inc, "churn_monthly", ("p1",), "2026-01-01")["new"] == 150


def test_a_live_cancellation_recomputes_only_its_customers_subscriptions(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A long-running engine keeps the portfolio's MRR totals and recomputes only the
    customer a new subscription event belongs to (its events before the event, to take
    out, and after, to put in); the numbers equal a full recompute (portfolio rows, the
    customer's product and the other product included)."""
    from growthwatch.metrics.families import subscriptions as engine_module

    first = [
        sub("2026-01-01", 0, 100, "c1", sid="s1"), sub("2026-01-01", 0, 40, "c2", sid="s2"),
        sub("2026-01-02", 0, 70, "c3", product="p2", sid="s3"),
        sub("2026-01-02", 0, 30, "c4", product="p2", sid="s4"),
        ev("payment", "2026-01-03 08:00", "c4", product="p2", value="30",
           sid="s4"),
    ]  # fmt: skip
    cancel = [sub("2026-01-03 12:00", 100, 0, "c1", sid="s1")]  # p1 only, same day
    later_p2 = [sub("2026-01-03 18:00", 70, 90, "c3", product="p2", sid="s3")]
    seen: list[tuple[set[tuple[str, str]], int]] = []
    real = engine_module.compute_mrr

    def spy(events: pd.DataFrame, *args: object, **kw: object) -> object:
        # the customers' events before the update go in under a tagged product name
        products = events["product"].astype(str).str.removeprefix("\x00old\x00")
        seen.append((set(zip(products, events["subject"], strict=True)), len(events)))
        return real(events, *args, **kw)  # type: ignore[arg-type]

    monkeypatch.setattr(engine_module, "compute_mrr", spy)
    inc, full = incremental_vs_full(first, cancel, later_p2)
    everyone = {("p1", "c1"), ("p1", "c2"), ("p2", "c3"), ("p2", "c4")}
    # the first run builds everything; then c1 before (1 event) and after (2) in one
    # computation, c3 likewise
    assert seen[:3] == [(everyone, 5), ({("p1", "c1")}, 3), ({("p2", "c3")}, 3)]
    assert_same(inc, full)
    day3 = point(inc, "mrr_daily", ("all",), "2026-01-03")
    assert (day3["churn"], day3["expansion"]) == (100, 20)
    assert point(inc, "customers_daily", ("p1",), "2026-01-03")["active"] == 1  # c2 stays


def test_a_rate_that_becomes_undefined_is_cleared_not_left_stale() -> None:
    """January's ARPA is 100 after the first update; the last customer's cancellation
    leaves no customer at the month's end, so ARPA is undefined and must disappear."""
    first = [sub("2026-01-01", 0, 100, sid="s1")]
    cancel = [sub("2026-01-02", 100, 0, sid="s1")]
    inc, full = incremental_vs_full(first, cancel)
    assert_same(inc, full)
    january = point(inc, "churn_monthly", ("p1",), "2026-01-01")
    assert january["customers_end"] == 0 and "arpa" not in january


def test_funnel_and_cohort_cells_update_from_later_events() -> None:
    first = [ev("signup", "2026-01-30", "u1"), ev("active_use", "2026-01-30", "u1")]
    later = [ev("activation", "2026-02-01", "u1"), ev("payment", "2026-02-02", "u1", value="5"),
             ev("active_use", "2026-02-03", "u1")]  # fmt: skip
    inc, full = incremental_vs_full(first, later)
    assert_same(inc, full)
    jan = pd.Timestamp("2026-01-01", tz="UTC")
    assert inc.points[("funnel_steps", ("p1", "paid", "3:payment"), jan)]["users"] == 1
    assert inc.points[("cohort_retention", ("p1", "logo", "1"), jan)]["retained"] == 1


def test_nothing_new_is_a_noop_and_state_survives_a_restart(tmp_path: Path) -> None:
    with Ledger(tmp_path / "ledger.duckdb") as ledger:
        ledger.append([sub("2026-01-01", 0, 100), ev("signup", "2026-01-01", "u1")])
        engine = MetricsEngine(ledger, S, state_path=tmp_path / "state.json")
        first = engine.update([MemoryStore()])
        assert first.mode == "full"
        again = MetricsEngine(ledger, S, state_path=tmp_path / "state.json")
        assert again.state.last_seq == ledger.max_seq()
        assert again.update([MemoryStore()]).mode == "noop"
        ledger.append([ev("payment", "2026-01-02", value="3")])
        result = again.update([MemoryStore()])
        assert (result.mode, result.events) == ("incremental", 1)
        # payments feed revenue and the funnel; the grids move to the new day
        assert set(result.families) == {"revenue", "funnels", "subscriptions", "product", "cohorts",
                                        "trials", "lifecycle", "segments"}  # fmt: skip


def test_recompute_a_range_writes_only_that_range() -> None:
    store = SeriesStore()
    with Ledger() as ledger:
        ledger.append([sub("2026-01-01", 0, 100), sub("2026-01-20", 100, 0)])
        since, until = pd.Timestamp("2026-01-10", tz="UTC"), pd.Timestamp("2026-01-15", tz="UTC")
        MetricsEngine(ledger, S).recompute([store], since=since, until=until)
    days = store.read("mrr_daily", tags={"product": "p1"})
    assert days["time"].min() == since and days["time"].max() == until - pd.Timedelta(days=1)
    assert (days["mrr"] == 100).all()


def test_pure_compute_equals_engine_full_run() -> None:
    events = [sub("2026-01-01", 0, 100), ev("payment", "2026-01-01", value="100"),
              ev("signup", "2026-01-01", "u1"), ev("active_use", "2026-01-02", "u1"),
              ev("session", "2026-01-01", None, value=4, channel="seo"),
              ev("kpi", "2026-01-02", None, value="7", kpi="orders")]  # fmt: skip
    pure = MemoryStore()
    pure.write(metric_batches(pd.concat([_frame(events)]), S))
    engine = MemoryStore()
    with Ledger() as ledger:
        ledger.append(events)
        MetricsEngine(ledger, S).recompute([engine])
    assert_same(pure, engine)


def _frame(events: list[GrowthEvent]) -> pd.DataFrame:
    from growthwatch.frames import events_to_frame

    return events_to_frame(events)


@pytest.mark.influx
def test_metric_batches_round_trip_through_influxdb(
    influx_server: InfluxServer, influx_db: str
) -> None:
    events = [
        sub("2026-01-01 09:00", 0, 100, "c1"),
        sub("2026-01-02 09:00", 0, 50, "c2", product="p2"),
        sub("2026-01-03 09:00", 100, 0, "c1"),
        ev("payment", "2026-01-01 09:00", "c1", value="100"),
        ev("payment", "2026-01-02 09:00", "c2", value="50", product="p2"),
        ev("signup", "2026-01-01", "u1"), ev("active_use", "2026-01-01", "u1"),
    ]  # fmt: skip
    store = InfluxStore(influx_server.url, influx_db)
    store.ensure_database()
    frames = compute(_frame(events), S)
    store.write(to_batches(frames))
    rows = influx_server.query(
        "SELECT \"mrr\", \"churn\", \"new\" FROM \"mrr_daily\" WHERE \"product\" = 'all' "
        "ORDER BY time", influx_db,
    )  # fmt: skip
    assert [(r["mrr"], r["new"], r["churn"]) for r in rows] == [
        (100.0, 100.0, 0.0), (150.0, 50.0, 0.0), (50.0, 0.0, 100.0)
    ]  # fmt: skip
    rows = influx_server.query(
        'SELECT sum("net_rc") FROM "revenue_daily" WHERE product = \'all\' AND time >= \'2026-01-01\' GROUP BY time(1d) '
        "fill(none)", influx_db,
    )  # fmt: skip
    assert [r["sum"] for r in rows] == [100.0, 50.0]
    rows = influx_server.query(
        'SELECT "active", "churned" FROM "customers_daily" WHERE "product" = \'p1\'', influx_db
    )
    assert [(r["active"], r["churned"]) for r in rows] == [(1, 0), (1, 0), (0, 1)]
    rows = influx_server.query(
        'SELECT "rate" FROM "cohort_retention" WHERE "basis" = \'logo\' AND "product" = \'p1\' '
        'GROUP BY "age"', influx_db,
    )  # fmt: skip
    assert rows and all(math.isclose(float(str(r["rate"])), 1.0) for r in rows)
    # Writing again overwrites: nothing doubles.
    store.write(to_batches(frames))
    rows = influx_server.query('SELECT count("mrr") FROM "mrr_daily"', influx_db)
    assert rows[0]["count"] == 3 + 2 + 3  # p1 and all: Jan 1-3; p2 from its first day, Jan 2


@pytest.mark.influx
def test_every_documented_influxql_query_runs(influx_server: InfluxServer, influx_db: str) -> None:
    """The example panel queries of docs/metrics.md, after Grafana's macro expansion."""
    doc = (Path(__file__).parents[2] / "docs" / "metrics.md").read_text()
    queries: list[str] = []
    current: list[str] | None = None
    for line in doc.split("### Example queries")[1].splitlines():
        if line.startswith("    SELECT"):
            current = [line.strip()]
            queries.append("")
        elif line.startswith("      ") and current is not None:
            current.append(line.strip())
        else:
            current = None
            continue
        queries[-1] = " ".join(current)
    assert len(queries) >= 10
    events = [
        sub("2025-12-15 09:00", 0, 100, "c1", product="acme", plan="pro"),  # segments
        ev("payment", "2026-01-01 09:00", "c1", value="100", product="acme"),
        ev("signup", "2026-01-01", "u1", product="acme"),
        ev("activation", "2026-01-02", "u1", product="acme"),
        ev("active_use", "2026-01-02", "u1", product="acme"),
        ev("session", "2026-01-01", None, value=3, channel="seo", product="acme"),
        ev("kpi", "2026-01-02", None, value="7", kpi="orders", product="acme"),
    ]
    settings = MetricsSettings(funnels=(Funnel("visit-to-paid", ("signup", "activation")),))
    store = InfluxStore(influx_server.url, influx_db)
    store.ensure_database()
    store.write(metric_batches(_frame(events), settings))
    for q in queries:
        q = (q.replace("$timeFilter", "time >= 1767225600000ms and time <= 1767830400000ms")
             .replace("$__interval", "1d").replace("$product", "acme"))  # fmt: skip
        rows = influx_server.query(q, influx_db)
        assert rows, q


def test_a_live_update_defers_segments_until_the_catch_up_and_remembers_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A webhook's update leaves a family that is not ``live`` (segments) to the next
    update that is not live; what it put off survives a restart (the state file), and the
    catch-up writes it."""
    from growthwatch.metrics.families import load

    assert [f.name for f in load() if not f.live] == ["segments"]
    first = [sub("2026-01-01", 0, 100, "c1", sid="s1", plan="pro")]
    cancel = [sub("2026-01-01 15:00", 100, 0, "c1", sid="s1", plan="pro")]
    store = MemoryStore()
    state = tmp_path / "state.json"
    with Ledger() as ledger:
        ledger.append(first)
        MetricsEngine(ledger, S, state_path=state).update([store])
        ledger.append(cancel)
        live = MetricsEngine(ledger, S, state_path=state).update([store], live=True)
        assert live.deferred == ["segments"] and "segments" not in live.timings
        assert point(store, "mrr_daily", ("p1",), "2026-01-01")["churn"] == 100
        seg = ("mrr_segments_daily", ("p1", "plan", "pro"))
        assert point(store, *seg, "2026-01-01")["churn"] == 0  # not yet
        restarted = MetricsEngine(ledger, S, state_path=state)
        assert list(restarted.state.deferred) == ["segments"]
        caught = restarted.update([store])
        assert caught.deferred == [] and "segments" in caught.timings
        assert point(store, *seg, "2026-01-01")["churn"] == 100
        assert restarted.update([store]).mode == "noop"


def test_an_update_after_a_webhook_folds_the_cohort_state_it_passed_by(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A webhook's cancellation is of no cohort type, so the live update passes the cohort
    family by and its state stays at the seq it last ran; the next update folds the new
    events into it from there (it used to rebuild the state from the whole ledger: 4.7 s at
    10M events) and writes what a full run writes."""
    from growthwatch.metrics.sql import state as sql_state

    first = [ev("signup", "2026-01-01", "u1"), ev("active_use", "2026-01-02", "u1"),
             sub("2026-01-01", 0, 100, "c1", sid="s1", plan="pro")]  # fmt: skip
    cancel = [sub("2026-01-01 15:00", 100, 0, "c1", sid="s1", plan="pro")]
    later = [ev("signup", "2026-02-03", "u2"), ev("active_use", "2026-02-04", "u1")]
    store = MemoryStore()
    with Ledger() as ledger:
        ledger.append(first)
        engine = MetricsEngine(ledger, S, state_path=tmp_path / "state.json")
        engine.update([store])
        ledger.append(cancel)
        live = engine.update([store], live=True)
        assert "cohorts" not in live.timings
        rebuilds: list[int] = []
        real = sql_state._cohort_rows  # what every rebuild of the cohort state runs
        monkeypatch.setattr(sql_state, "_cohort_rows",
                            lambda run, tz, **kw: (rebuilds.append(1), real(run, tz, **kw))[1])  # fmt: skip
        ledger.append(later)
        assert "cohorts" in engine.update([store]).timings
        assert rebuilds == []
        full = MemoryStore()
        MetricsEngine(ledger, S, state_path=tmp_path / "full.json").recompute([full])
    assert_same(store, full)
