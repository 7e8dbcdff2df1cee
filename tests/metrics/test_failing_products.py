"""One product's events that cannot be valued never freeze the other products' metrics."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest
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


def test_a_warm_engine_checks_only_the_new_events_and_a_failing_product_stays_out(
    tmp_path: Path,
) -> None:
    """The check reads the events after the last run (not the whole ledger on every
    webhook), so a product that failed before must stay failing: its old event is not
    looked at again, and only a recompute (after the rate is configured) brings it back."""
    settings = MetricsSettings(fx=FxTable.constant("USD", {}))
    series = SeriesStore(tmp_path / "series.duckdb")
    with Ledger(tmp_path / "ledger.duckdb") as ledger:
        ledger.append([sub("2026-01-01", 0, 100, "a1", product="acme"),
                       ev("payment", "2026-01-02", "b1", value="10", currency="EUR",
                          product="beta")])  # fmt: skip
        engine = MetricsEngine(ledger, settings)
        assert list(engine.recompute([series]).failing) == ["beta"]
        ledger.append([ev("payment", "2026-01-03", "c1", value="5", currency="GBP",
                          product="cargo"),
                       sub("2026-01-04", 100, 120, "a1", product="acme")])  # fmt: skip
        warm = engine.update([series])
        assert sorted(warm.failing) == ["beta", "cargo"]  # beta kept, cargo from its event
        ledger.append([sub("2026-01-05", 120, 140, "a1", product="acme")])
        assert sorted(engine.update([series]).failing) == ["beta", "cargo"]
        fixed = MetricsSettings(fx=FxTable.constant("USD", {"EUR": Decimal("1.1"),
                                                           "GBP": Decimal("1.3")}))  # fmt: skip
        assert MetricsEngine(ledger, fixed).recompute([series]).failing == {}
    series.close()


def test_a_cold_engine_continues_the_check_its_state_records(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The next ``growthwatch metrics update`` (a new process) checks only the events
    after the last run too, when the exchange-rate table is the one that check used; with
    another table it checks the whole ledger again (a rate added brings a product back)."""
    state = tmp_path / "state.json"
    series = SeriesStore(tmp_path / "series.duckdb")
    checks: list[int | None] = []
    real = MetricsEngine._check_valuable

    def spy(self: MetricsEngine, after_seq: int | None = None) -> dict[str, str]:
        checks.append(after_seq)
        return real(self, after_seq)

    monkeypatch.setattr(MetricsEngine, "_check_valuable", spy)
    no_rates = MetricsSettings(fx=FxTable.constant("USD", {}))
    with Ledger(tmp_path / "ledger.duckdb") as ledger:
        ledger.append([sub("2026-01-01", 0, 100, "a1", product="acme"),
                       ev("payment", "2026-01-02", "b1", value="10", currency="EUR",
                          product="beta")])  # fmt: skip
        first = MetricsEngine(ledger, no_rates, state_path=state).recompute([series])
        assert list(first.failing) == ["beta"]
        covered = ledger.max_seq()
        ledger.append([ev("payment", "2026-01-03", "c1", value="5", currency="GBP",
                          product="cargo")])
        checks.clear()
        cold = MetricsEngine(ledger, no_rates, state_path=state).update([series])
        assert checks == [covered]  # the new events only
        assert sorted(cold.failing) == ["beta", "cargo"]  # beta from the state, cargo new
        ledger.append([sub("2026-01-05", 100, 140, "a1", product="acme")])
        eur = MetricsSettings(fx=FxTable.constant("USD", {"EUR": Decimal("1.1")}))
        checks.clear()
        other = MetricsEngine(ledger, eur, state_path=state).update([series])
        assert checks == [None]  # another table: the whole ledger
        assert sorted(other.failing) == ["cargo"]
    series.close()
