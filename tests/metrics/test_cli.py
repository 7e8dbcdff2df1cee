"""``growthwatch metrics``: recompute, update and show through the real CLI entry point."""

from __future__ import annotations

from pathlib import Path

import pytest
from metric_cases import ev, sub

from growthwatch.cli import main
from growthwatch.stores.ledger import Ledger


def test_recompute_update_and_show(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "200")  # rich wraps narrower tables
    with Ledger(tmp_path / "ledger.duckdb") as ledger:
        ledger.append([sub("2026-01-01", 0, 100), sub("2026-01-02", 0, 50, "c2"),
                       ev("payment", "2026-01-01", value="100")])  # fmt: skip
    assert main(["metrics", "recompute", "--data-dir", str(tmp_path)]) == 0
    assert "metrics full: 3 events" in capsys.readouterr().out
    with Ledger(tmp_path / "ledger.duckdb") as ledger:
        ledger.append([sub("2026-01-03", 100, 0)])
    assert main(["metrics", "update", "--data-dir", str(tmp_path)]) == 0
    assert "metrics incremental: 1 events" in capsys.readouterr().out
    assert main(["metrics", "show", "mrr", "--data-dir", str(tmp_path), "--fields",
                 "mrr,churn"]) == 0  # fmt: skip
    out = capsys.readouterr().out
    rows = [line for line in out.splitlines() if line.startswith("│ 2026")]
    cells = [[c.strip() for c in r.split("│")[2:4]] for r in rows]
    assert cells == [["100.00", "0.00"], ["150.00", "0.00"], ["50.00", "100.00"]]
    assert main(["metrics", "show", "customers", "--product", "p1", "--from", "2026-01-03",
                 "--data-dir", str(tmp_path)]) == 0  # fmt: skip
    assert "│ 2026-01-03 │" in capsys.readouterr().out
    assert main(["metrics", "show", "nope", "--data-dir", str(tmp_path)]) == 2
    assert main(["metrics", "schema"]) == 0
    assert "cohort_retention" in capsys.readouterr().out


def test_missing_exchange_rate_is_reported_not_a_traceback(tmp_path: Path) -> None:
    with Ledger(tmp_path / "ledger.duckdb") as ledger:
        ledger.append([sub("2026-01-01", 0, 100, currency="GBP")])
    assert main(["metrics", "recompute", "--data-dir", str(tmp_path)]) == 1


def test_settings_from_config_file(tmp_path: Path) -> None:
    from growthwatch.config import load_config
    from growthwatch.metrics.settings import MetricsSettings

    path = tmp_path / "growthwatch.yaml"
    path.write_text(
        "reporting:\n  currency: EUR\n  fx_rates:\n    USD:\n      - {date: 2026-01-01, rate: 0.9}\n"
        "products:\n  - id: p1\n"
        "metrics:\n  activation_window_days: 3\n  ltv_months: 4\n  movement_netting_minutes: 0\n"
        "  funnels:\n    - {name: f, steps: [signup, activation], window_days: 2}\n"
    )
    s = MetricsSettings.from_config(load_config(path))
    assert (s.reporting_currency, s.activation_window_days, s.ltv_months) == ("EUR", 3, 4)
    assert s.movement_netting_minutes == 0
    assert s.funnels[0].steps == ("signup", "activation") and s.funnels[0].window_days == 2
    assert s.fx.rate_on("USD", __import__("datetime").date(2026, 2, 1)) == 0.9
