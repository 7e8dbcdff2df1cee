"""Intraday amounts: the running day's revenue judged from the payments so far."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from detectors.evaluate import amount_findings
from detectors.intraday import DAY, IntradaySettings
from detectors.intraday_amounts import amount_day_model, amounts_many, backtest
from detectors.settings import DetectorSettings
from growthwatch import EventType, GrowthEvent, Ledger

HOUR = 3600 * 10**9
T0 = int(pd.Timestamp("2026-01-05", tz="UTC").value)  # a Monday


def payments(days: int = 40, per_day: float = 20.0, seed: int = 3) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    ts: list[int] = []
    for d in range(days):
        n = int(rng.poisson(per_day))
        ts += list(T0 + d * DAY + (rng.beta(2.5, 2, n) * DAY).astype("int64"))
    times = np.sort(np.array(ts, dtype="int64"))
    return times, np.round(rng.lognormal(np.log(50), 0.5, len(times)), 2)


def test_the_model_of_a_regular_day_is_the_count_times_the_amount() -> None:
    # 28 days of exactly 10 payments of 50.00, one every 2.4 h from 01:00: by hand, the
    # counts model's rate is (280 + 0.5) / 28 a day (its Gamma-Poisson half event), so the
    # day's total is 10.018 x 50 = 500.89 and E[a^2] = 2500
    ts = np.array([T0 + d * DAY + HOUR + k * 2.4 * HOUR for d in range(28) for k in range(10)],
                  dtype="int64")  # fmt: skip
    model = amount_day_model(ts, np.full(len(ts), 50.0), T0 + 28 * DAY, IntradaySettings())
    assert model is not None
    assert model.total == pytest.approx(280.5 / 28 * 50, rel=1e-9)
    assert model.mean_sq == pytest.approx(2500.0)
    # by 13:00 five of the ten payments (01:00 .. 10:36) and the prior's 13/24 of 20 have
    # arrived: share = (28 x 5 x 50 + 20 x 50 x 13/24) / (28 x 500 + 20 x 50)
    share = (28 * 5 * 50 + 1000 * 13 / 24) / (28 * 500 + 1000)
    ts_day = ts[-10:] + DAY  # today as usual so far
    cum = np.concatenate([[0.0], np.cumsum(np.full(len(ts) + 10, 50.0))])
    [r] = amounts_many(np.concatenate([ts, ts_day]), cum, np.array([T0 + 28 * DAY + 13 * HOUR]),
                       model, IntradaySettings(direction="down"))  # fmt: skip
    assert r.expected == pytest.approx(model.total * share, rel=1e-6)
    assert r.observed == 250.0 and r.score < 0.9


def test_a_payment_outage_pages_the_same_day_and_a_normal_month_does_not() -> None:
    ts, amounts = payments()
    outage_day = T0 + 35 * DAY
    keep = ~((ts >= outage_day + 2 * HOUR) & (ts < outage_day + DAY))  # none after 02:00
    ts, amounts = ts[keep], amounts[keep]
    settings = IntradaySettings(direction="down")
    found = backtest(ts, amounts, outage_day, outage_day + DAY, settings, step_minutes=60)
    first = next(r for r in found if r.score >= settings.warning)
    assert outage_day + 2 * HOUR < first.time <= outage_day + 16 * HOUR  # not at the close
    assert first.observed < first.lower
    quiet = backtest(ts, amounts, T0 + 28 * DAY, outage_day, settings, step_minutes=60)
    assert len(quiet) == 7 * 24 - 1 and max(r.score for r in quiet) < settings.warning


def test_a_revenue_spike_pages_in_the_day() -> None:
    ts, amounts = payments(seed=4)
    day = T0 + 36 * DAY
    burst = day + 9 * HOUR + np.arange(30) * (2 * 60 * 10**9)  # 30 payments of 200 from 09:00
    ts2 = np.concatenate([ts, burst])
    order = np.argsort(ts2, kind="stable")
    ts2, amounts2 = ts2[order], np.concatenate([amounts, np.full(30, 200.0)])[order]
    settings = IntradaySettings(direction="up")
    found = backtest(ts2, amounts2, day, day + DAY, settings, step_minutes=60)
    first = next(r for r in found if r.score >= settings.warning)
    assert day + 9 * HOUR < first.time <= day + 11 * HOUR


def test_amounts_streaming_equals_backtest() -> None:
    ts, amounts = payments(seed=5)
    settings = IntradaySettings(direction="both")
    replayed = {r.time: r for r in backtest(ts, amounts, T0 + 30 * DAY, T0 + 34 * DAY, settings, 30)}
    for now in (T0 + 30 * DAY + 7 * HOUR, T0 + 31 * DAY + 30 * 60 * 10**9, T0 + 33 * DAY):
        seen = ts < now  # live: only what has arrived
        visible, paid = ts[seen], amounts[seen]
        day = (now - 1) - (now - 1) % DAY
        model = amount_day_model(visible, paid, day, settings)
        assert model is not None
        cum = np.concatenate([[0.0], np.cumsum(paid)])
        [live] = amounts_many(visible, cum, np.array([now]), model, settings)
        assert live == replayed[now]


def test_serve_judges_the_running_days_revenue_from_the_ledgers_payments(tmp_path: Path) -> None:
    # the same path serve and `detect backtest` run for revenue_daily.net_rc: 35 days of
    # about 20 payments a day, then nothing after 02:00 on the 36th
    ts, amounts = payments(days=36, seed=6)
    day = T0 + 35 * DAY
    keep = ts < day + 2 * HOUR
    ledger = Ledger(tmp_path / "ledger.duckdb")
    ledger.append([GrowthEvent(
        product="acme", type=EventType.PAYMENT, timestamp=datetime.fromtimestamp(t / 1e9, UTC),
        value=Decimal(str(a)), currency="USD", subject=f"cus_{i}", source="stripe",
        source_id=f"ch_{i}", kind="charge") for i, (t, a) in enumerate(zip(ts[keep], amounts[keep], strict=True))])  # fmt: skip
    settings = DetectorSettings.from_section({"metrics": ["revenue_daily.net_rc"]})
    [metric] = settings.metrics
    assert metric.amount_event_type == "payment" and metric.policy.direction == "down"
    nows = [datetime.fromtimestamp((day + h * HOUR) / 1e9, UTC) for h in (1, 6, 20)]
    found = amount_findings(ledger, metric, settings, "acme", nows)
    ledger.close()
    assert len(found) == 3 and found[0].severity == "" and found[-1].severity
    assert found[-1].method == "amounts_intraday" and found[-1].observed < found[-1].lower
    assert found[-1].explanation.startswith("net rc (payments so far)")
    # by 20:00 the day's total so far is what arrived before 02:00
    assert found[-1].observed == pytest.approx(float(amounts[keep & (ts >= day)].sum()))
