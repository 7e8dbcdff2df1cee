"""``growthwatch detect score``: the CSV contract, irregular series, bad input by row."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from growthwatch.cli import main


def write(path: Path, rows: list[tuple[str, str]]) -> Path:
    path.write_text("timestamp,value\n" + "".join(f"{t},{v}\n" for t, v in rows))
    return path


def test_score_writes_the_contract_columns_and_flags_the_spike(tmp_path: Path) -> None:
    rng = np.random.default_rng(4)
    times = pd.date_range("2026-01-01", periods=60, freq="D")
    values = 100 + rng.normal(0, 3, 60)
    values[50] = 200
    src = write(tmp_path / "in.csv", [(t.strftime("%Y-%m-%d"), f"{v:.3f}") for t, v in zip(times, values, strict=True)])
    out = tmp_path / "out.csv"
    assert main(["detect", "score", str(src), "--output", str(out), "--direction", "up"]) == 0
    rows = list(csv.DictReader(out.open()))
    assert list(rows[0]) == ["timestamp", "value", "score", "anomaly"]
    assert len(rows) == 60 and rows[0]["timestamp"] == "2026-01-01T00:00:00Z"
    scores = [float(r["score"]) for r in rows if r["score"]]
    assert all(0 <= s <= 1 for s in scores)
    assert rows[50]["anomaly"] == "1"
    assert sum(r["anomaly"] == "1" for r in rows) <= 3


def test_irregular_minute_series_is_scored(tmp_path: Path) -> None:
    rng = np.random.default_rng(8)
    offsets = np.cumsum(rng.integers(1, 10, 400))  # irregular, 1-9 minutes apart
    times = pd.Timestamp("2026-01-01T00:00:00Z") + pd.to_timedelta(offsets, unit="m")
    values = 5 + rng.normal(0, 0.5, 400)
    values[-1] = 50
    src = write(tmp_path / "in.csv", [(t.isoformat(), f"{v:.3f}") for t, v in zip(times, values, strict=True)])
    out = tmp_path / "out.csv"
    assert main(["detect", "score", str(src), "--output", str(out), "--method", "zscore"]) == 0
    rows = list(csv.DictReader(out.open()))
    assert rows[-1]["anomaly"] == "1"


@pytest.mark.parametrize(("rows", "message"), [
    ([("2026-01-01", "1"), ("2026-01-02", "abc")], "row 3: value 'abc' is not a number"),
    ([("2026-01-01", "1"), ("yesterday", "2")], "row 3: timestamp 'yesterday'"),
    ([("2026-01-02", "1"), ("2026-01-01", "2")], "row 3: timestamp 2026-01-01 goes back"),
    ([("2026-01-01", "1"), ("2026-01-01", "2")], "row 3: timestamp 2026-01-01 repeats"),
    ([("2026-01-01", "nan")], "row 2: value 'nan' is not finite"),
])  # fmt: skip
def test_bad_input_names_the_row_and_writes_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], rows: list[tuple[str, str]], message: str
) -> None:
    src = write(tmp_path / "in.csv", rows)
    out = tmp_path / "out.csv"
    assert main(["detect", "score", str(src), "--output", str(out)]) == 2
    assert message in capsys.readouterr().err
    assert not out.exists()


def test_wrong_header_and_unknown_method(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    src = tmp_path / "in.csv"
    src.write_text("time,amount\n2026-01-01,1\n")
    assert main(["detect", "score", str(src)]) == 2
    assert "timestamp,value" in capsys.readouterr().err
    assert main(["detect", "score", str(src), "--method", "prophet"]) == 2
    assert "known: auto, zscore" in capsys.readouterr().err


def test_backtest_lists_what_would_have_fired(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import json
    from datetime import UTC, datetime, timedelta
    from decimal import Decimal

    from detectors.scenario import seed_history
    from growthwatch import EventType, GrowthEvent, Ledger, SeriesStore

    day = datetime(2026, 3, 10, tzinfo=UTC)
    ledger = Ledger(tmp_path / "ledger.duckdb")
    seed_history(ledger, "acme", day, days=35, per_day=2.0)
    ledger.append([GrowthEvent(
        product="acme", type=EventType.SUBSCRIPTION_CANCELLED,
        timestamp=day + timedelta(hours=9, minutes=3 * i), value=Decimal(-45), currency="USD",
        subject=f"cus_s{i}", mrr_before=Decimal(45), mrr_after=Decimal(0),
        metadata={"plan": "pro", "reason": "payment_failed"}, source="stripe",
        source_id=f"sub_spike_{i}", kind="subscription_cancelled",
    ) for i in range(20)])  # fmt: skip
    ledger.close()
    SeriesStore(tmp_path / "series.duckdb").close()
    code = main(["detect", "backtest", "--since", "2026-03-01", "--until", "2026-03-11",
                 "--data-dir", str(tmp_path), "--format", "json"])  # fmt: skip
    assert code == 0
    rows = json.loads(capsys.readouterr().out)
    opened = [r for r in rows if r["state"] == "open"]
    assert len(opened) == 1
    (alert,) = opened
    assert alert["product"] == "acme" and alert["metric"] == "customers_daily.cancellations"
    assert "2026-03-10T09:" in alert["time"] or "2026-03-10T10:" in alert["time"]
    assert "reason=payment_failed" in alert["explanation"]
