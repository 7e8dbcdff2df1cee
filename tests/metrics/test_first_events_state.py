"""A cold engine continues the ``first_events`` aggregates a run persisted.

Where a day grid starts (a product's first event with a user, a currency's first money)
is an aggregate over the whole history; a warm engine keeps it and adds only new events.
The engine persists that copy in the ledger file, so the next ``growthwatch metrics
update`` (a new process) does not scan the history for it either, and drops it when events
at or below the ``seq`` it covers were removed (a trim).
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from metric_cases import store_contents

from growthwatch.demo.generator import generate
from growthwatch.demo.pipeline import DEMO_METRICS
from growthwatch.demo.spec import DemoSpec
from growthwatch.metrics.engine import MetricsEngine
from growthwatch.metrics.reads import LedgerView
from growthwatch.stores.ledger import Ledger
from growthwatch.stores.series import SeriesStore


@pytest.fixture(scope="module")
def demo_events() -> pd.DataFrame:
    return pd.concat(generate(DemoSpec(seed=8, products=2, months=2, events_per_day=120)),
                     ignore_index=True).sort_values("ts", kind="stable", ignore_index=True)  # fmt: skip


def _aggregated_seqs(monkeypatch: pytest.MonkeyPatch) -> list[int | None]:
    """Record, per ``first_events`` call, the ``seq`` it aggregated after (None: all)."""
    seen: list[int | None] = []
    real = LedgerView.first_events

    def spy(self: LedgerView, types, by=("product",), *, with_subject=False):  # type: ignore[no-untyped-def]
        key = (tuple(types), tuple(by), with_subject)
        cached = None if self.firsts is None else self.firsts.get(key)
        seen.append(None if cached is None else cached[0])
        return real(self, types, by, with_subject=with_subject)

    monkeypatch.setattr(LedgerView, "first_events", spy)
    return seen


def test_a_cold_update_continues_the_persisted_first_events(
    tmp_path: Path, demo_events: pd.DataFrame, monkeypatch: pytest.MonkeyPatch
) -> None:
    cut = len(demo_events) - 300
    state = tmp_path / "state.json"
    with Ledger(tmp_path / "ledger.duckdb") as ledger:
        ledger.append(demo_events.iloc[:cut])
        store = SeriesStore()
        MetricsEngine(ledger, DEMO_METRICS, state_path=state).recompute([store])
        covered = ledger.max_seq()
        ledger.append(demo_events.iloc[cut:])
        seen = _aggregated_seqs(monkeypatch)
        MetricsEngine(ledger, DEMO_METRICS, state_path=state).update([store])
        assert seen and all(s is not None and s <= covered for s in seen)  # no full scan
        got = store_contents(store)
    with Ledger(tmp_path / "reference.duckdb") as ledger:
        ledger.append(demo_events)
        reference = SeriesStore()
        MetricsEngine(ledger, DEMO_METRICS).recompute([reference])
        want = store_contents(reference)
    assert got.keys() == want.keys()
    for name, frame in want.items():
        pd.testing.assert_frame_equal(got[name], frame, check_exact=False, rtol=1e-12,
                                      atol=1e-9, obj=name)  # fmt: skip


def test_a_trim_below_the_copy_drops_it(
    tmp_path: Path, demo_events: pd.DataFrame, monkeypatch: pytest.MonkeyPatch
) -> None:
    state = tmp_path / "state.json"
    with Ledger(tmp_path / "ledger.duckdb") as ledger:
        ledger.append(demo_events.iloc[:-300])
        MetricsEngine(ledger, DEMO_METRICS, state_path=state).recompute([SeriesStore()])
        ledger.delete_before(pd.Timestamp(demo_events["ts"].iloc[500]).to_pydatetime())
        ledger.append(demo_events.iloc[-300:])
        seen = _aggregated_seqs(monkeypatch)
        MetricsEngine(ledger, DEMO_METRICS, state_path=state).update([SeriesStore()])
        assert seen and all(s is None for s in seen)  # aggregated afresh
