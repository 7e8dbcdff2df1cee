"""Intraday: a spike is caught in the running day, the same way live and in a backtest."""

from __future__ import annotations

import numpy as np
import pandas as pd

from detectors.explain import drivers, sentence
from detectors.intraday import DAY, IntradaySettings, backtest, day_model, intraday_at

HOUR = 3600 * 10**9
T0 = int(pd.Timestamp("2026-01-05", tz="UTC").value)


def events(days: int = 40, per_day: float = 3.0, seed: int = 2) -> np.ndarray:
    rng = np.random.default_rng(seed)
    out: list[int] = []
    for d in range(days):
        n = int(rng.poisson(per_day))
        out += list(T0 + d * DAY + (rng.beta(2, 2, n) * DAY).astype("int64"))
    return np.sort(np.array(out, dtype="int64"))


def test_a_spike_is_caught_within_hours_not_tomorrow() -> None:
    ts = events()
    spike_day = T0 + 35 * DAY
    burst = spike_day + 10 * HOUR + np.arange(15) * (6 * 60 * 10**9)  # 15 in 90 minutes
    ts = np.sort(np.concatenate([ts, burst]))
    found = backtest(ts, spike_day, spike_day + DAY, IntradaySettings(), step_minutes=15)
    first = next(r for r in found if r.score >= IntradaySettings().warning)
    assert spike_day + 10 * HOUR < first.time <= spike_day + 12 * HOUR
    quiet = backtest(ts, T0 + 30 * DAY, T0 + 35 * DAY, IntradaySettings(), step_minutes=60)
    assert max(r.score for r in quiet) < 0.9995


def test_intraday_streaming_equals_backtest() -> None:
    ts = events(seed=5)
    settings = IntradaySettings()
    replayed = {r.time: r for r in backtest(ts, T0 + 30 * DAY, T0 + 34 * DAY, settings, 30)}
    for now in (T0 + 30 * DAY + 7 * HOUR, T0 + 31 * DAY + 30 * 60 * 10**9, T0 + 33 * DAY):
        visible = ts[ts < now]  # live: only what has arrived
        day = (now - 1) - (now - 1) % DAY
        model = day_model(visible, day, settings)
        assert model is not None
        live = intraday_at(visible, now, model, settings, day_model(visible, day - DAY, settings))
        assert live == replayed[now]


def test_explanation_names_the_segment_that_carries_the_excess() -> None:
    # baseline: 100 cancellations, 70 plan=team/voluntary, 30 plan=pro/voluntary
    baseline = pd.DataFrame({"plan": ["team"] * 70 + ["pro"] * 30,
                             "metadata": ['{"reason": "voluntary"}'] * 100})  # fmt: skip
    # now: 8 expected, 20 seen: 6 plan=team/voluntary and 14 plan=pro/payment_failed
    window = pd.DataFrame({"plan": ["team"] * 6 + ["pro"] * 14,
                           "metadata": ['{"reason": "voluntary"}'] * 6
                           + ['{"reason": "payment_failed"}'] * 14})  # fmt: skip
    top = drivers(window, baseline, expected_total=8.0, dimensions=("plan", "reason"))[0]
    # excess 12; pro with payment_failed: 14 seen vs 8 x 0 expected -> 14/12 capped at 100 %;
    # plan=pro alone: 14 - 8 x 0.3 = 11.6 -> 97 %; the pair is the more specific
    assert top.text == "plan=pro with reason=payment_failed"
    only_plan = drivers(window, baseline, 8.0, dimensions=("plan",))[0]
    assert only_plan.text == "plan=pro" and round(only_plan.share * 100) == 97
    text = sentence("cancellations", 20, 8, 3, 14, "by 14:00", only_plan)
    assert text == "cancellations 20 vs 8 expected (3-14) by 14:00; 97 % of the excess is plan=pro"


def test_a_slow_outage_at_low_volume_is_found_over_days_and_not_in_any_single_day() -> None:
    # 6 signups a day, then none for two days (a tracking outage): a day without signups
    # is a 1-in-400 day here (e^-6), the two days together 1 in 160,000
    rng = np.random.default_rng(11)
    out: list[int] = []
    for d in range(42):
        if d in (38, 39):
            continue
        out += list(T0 + d * DAY + (rng.beta(2, 2, int(rng.poisson(6.0))) * DAY).astype("int64"))
    ts = np.sort(np.array(out, dtype="int64"))
    multi = IntradaySettings(direction="down", multi_days=3)
    single = IntradaySettings(direction="down", multi_days=1)
    found = backtest(ts, T0 + 38 * DAY, T0 + 41 * DAY, multi, step_minutes=60)
    first = next(r for r in found if r.score >= multi.warning)
    assert T0 + 39 * DAY < first.time <= T0 + 40 * DAY and first.window == "days"
    assert first.observed == 0 and first.since >= T0 + 37 * DAY
    assert max(r.score for r in backtest(ts, T0 + 38 * DAY, T0 + 41 * DAY, single, 60)) < single.warning
    # the normal weeks before: no page with the multi-day window either
    quiet = backtest(ts, T0 + 20 * DAY, T0 + 38 * DAY, multi, step_minutes=60)
    assert max(r.score for r in quiet) < multi.warning
