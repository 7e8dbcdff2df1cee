"""One product's events that cannot be valued never freeze the other products' metrics."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

from metric_cases import ev, sub

from growthwatch.metrics.engine import EngineState, MetricsEngine
from growthwatch.metrics.fx import FxTable
from growthwatch.metrics.settings import MetricsSettings
from growthwatch.stores.ledger import Ledger
from growthwatch.stores.series import SeriesStore


def test_a_currency_without_a_rate_fails_its_product_only(tmp_path: Path) -> None:
    settings = MetricsSettings(fx=FxTable.constant("USD", {"JPY": Decimal("0.0067")}))
    series = SeriesStore(tmp_path / "series.duckdb")
    with Ledger(tmp_path / "ledger.duckdb") as ledger:
        ledger.append([sub("2026-01-01", 0, 100, "a1", product="acme"),
                       sub("2026-01-01", 0, 50, "b1", product="beta")])  # fmt: skip
        engine = MetricsEngine(ledger, settings, state_path=tmp_path / "state.json")
        first = engine.recompute([series])
        assert first.failing == {}
        # an EUR charge for beta, no EUR rate configured: beta fails, acme goes on
        ledger.append([ev("payment", "2026-01-05", "b1", value="10", currency="EUR",
                          product="beta"),
                       sub("2026-01-06", 100, 130, "a1", product="acme")])  # fmt: skip
        again = engine.update([series])
    assert list(again.failing) == ["beta"] and "EUR" in again.failing["beta"]
    mrr = series.read("mrr_daily", tags={"product": "acme"})
    assert mrr.set_index("time")["mrr"].iloc[-1] == 130  # acme's MRR moved on: 100 + 30
    state = EngineState.from_json((tmp_path / "state.json").read_text())
    assert list(state.failing) == ["beta"]  # what `growthwatch status` shows
    series.close()
