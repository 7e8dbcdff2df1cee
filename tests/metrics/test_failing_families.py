"""One metric family that fails (DuckDB out of memory, a bug) stops no other.

The engine writes every other family's series, reports the failure
(``RunResult.errors``), keeps the family's rewrite as deferred work in its state, and the
next update that is not live runs it again: after it the stores are exactly what a run
without the failure writes. Checked for a full recompute, an update, a live update and a
cold engine that finds the deferred rewrite in its state file.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import duckdb
import pandas as pd
import pytest
from metric_cases import store_contents

from growthwatch.demo.generator import generate
from growthwatch.demo.pipeline import DEMO_METRICS
from growthwatch.demo.spec import DemoSpec
from growthwatch.metrics.engine import MetricsEngine
from growthwatch.stores.ledger import Ledger
from growthwatch.stores.series import SeriesStore


@pytest.fixture(scope="module")
def demo_events() -> pd.DataFrame:
    return pd.concat(generate(DemoSpec(seed=5, products=2, months=2, events_per_day=150)),
                     ignore_index=True).sort_values("ts", kind="stable", ignore_index=True)  # fmt: skip


@pytest.fixture
def ledger(tmp_path: Path) -> Iterator[Ledger]:
    with Ledger(tmp_path / "ledger.duckdb") as ledger:
        yield ledger


def _break(engine: MetricsEngine, name: str) -> list[int]:
    """Make family ``name`` of ``engine`` raise as DuckDB does when it runs out of memory,
    until the returned switch is emptied; it counts the calls."""
    family = next(f for f in engine.families if f.name == name)
    run = family.run
    calls: list[int] = [1]

    def failing(*args: object, **kwargs: object) -> object:
        if calls:
            calls.append(1)
            raise duckdb.OutOfMemoryException("Out of Memory Error: failed to allocate")
        return run(*args, **kwargs)  # type: ignore[arg-type]

    family.run = failing  # type: ignore[method-assign]
    return calls


def _reference(tmp_path: Path, events: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """The stores of an untroubled recompute over ``events``."""
    with Ledger(tmp_path / "reference.duckdb") as ledger:
        ledger.append(events)
        store = SeriesStore()
        MetricsEngine(ledger, DEMO_METRICS).recompute([store])
        return store_contents(store)


def _assert_same(got: dict[str, pd.DataFrame], want: dict[str, pd.DataFrame]) -> None:
    assert got.keys() == want.keys()
    for name, frame in want.items():
        pd.testing.assert_frame_equal(got[name], frame, check_exact=False, rtol=1e-12,
                                      atol=1e-9, obj=name)  # fmt: skip


def test_a_failing_family_in_a_recompute_is_run_again_by_the_next_update(
    tmp_path: Path, ledger: Ledger, demo_events: pd.DataFrame
) -> None:
    ledger.append(demo_events)
    store = SeriesStore()
    state = tmp_path / "state.json"
    engine = MetricsEngine(ledger, DEMO_METRICS, state_path=state)
    switch = _break(engine, "traffic")
    result = engine.recompute([store])
    assert list(result.errors) == ["traffic"]
    assert "OutOfMemoryException" in result.errors["traffic"]
    assert result.deferred == ["traffic"] and "traffic" not in result.families
    held = store_contents(store)
    assert "traffic_daily" not in held  # its series are missing...
    assert {"mrr_daily", "product_daily", "funnel_steps", "lifecycle_daily"} <= held.keys()
    switch.clear()
    # ...until the next update, here by a cold engine that reads the deferral from its state
    again = MetricsEngine(ledger, DEMO_METRICS, state_path=state).update([store])
    assert again.errors == {} and again.deferred == []
    assert again.families["traffic"] == "all" and again.events == 0
    _assert_same(store_contents(store), _reference(tmp_path, demo_events))


@pytest.mark.parametrize("live", [False, True])
def test_a_failing_family_in_an_update_stops_no_other(
    tmp_path: Path, ledger: Ledger, demo_events: pd.DataFrame, live: bool
) -> None:
    cut = len(demo_events) - 400
    ledger.append(demo_events.iloc[:cut])
    store = SeriesStore()
    engine = MetricsEngine(ledger, DEMO_METRICS)
    engine.recompute([store])
    before = store_contents(store)
    ledger.append(demo_events.iloc[cut:])
    switch = _break(engine, "subscriptions")
    result = engine.update([store], live=live)
    assert list(result.errors) == ["subscriptions"] and len(switch) == 2
    assert "subscriptions" in result.deferred and "subscriptions" in engine.state.deferred
    assert engine.state.last_seq == ledger.max_seq()  # the others moved on
    after = store_contents(store)
    # the subscription series are as before; another family's took the new events
    pd.testing.assert_frame_equal(after["mrr_daily"], before["mrr_daily"])
    assert not after["product_daily"].equals(before["product_daily"])
    # a retry that fails again keeps the rewrite deferred, not lost
    retry = engine.update([store])
    assert list(retry.errors) == ["subscriptions"] and "subscriptions" in engine.state.deferred
    switch.clear()
    caught = engine.update([store])
    assert caught.errors == {} and engine.state.deferred == {}
    _assert_same(store_contents(store), _reference(tmp_path, demo_events))
