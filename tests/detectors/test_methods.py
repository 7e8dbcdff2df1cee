"""The methods and the causal replay on series whose answers are known by construction."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from detectors.base import DetectorInputError
from detectors.causal import Policy, replay
from detectors.counts import NegBinomCounts
from detectors.registry import METHODS
from detectors.seasonal import SeasonalMAD
from detectors.zscore import ZScore

DAYS = pd.date_range("2026-01-05", periods=84, freq="D", tz="UTC")  # starts on a Monday


def weekly(level_weekday: float = 100.0, level_weekend: float = 20.0, noise: float = 2.0,
           seed: int = 1) -> pd.Series:  # fmt: skip
    rng = np.random.default_rng(seed)
    base = np.where(DAYS.day_of_week < 5, level_weekday, level_weekend)
    return pd.Series(base + rng.normal(0, noise, len(DAYS)), index=DAYS)


def test_a_normal_monday_after_a_quiet_weekend_is_not_an_anomaly() -> None:
    series = weekly()
    history, monday = series.iloc[:-7], series.iloc[[-7]]
    assert monday.index[0].day_of_week == 0
    seasonal = SeasonalMAD().fit(history).score(monday)
    assert seasonal["score"].iloc[0] < 0.99
    assert abs(seasonal["expected"].iloc[0] - 100) < 5
    # the seed's z-score mixes weekdays and weekends: its expected value is the overall mean
    z = ZScore().fit(history).score(monday)
    assert abs(z["expected"].iloc[0] - (5 * 100 + 2 * 20) / 7) < 5


def test_flagged_points_stay_out_of_the_baseline() -> None:
    series = weekly(100, 100, 2.0)
    series.iloc[50:56] = 300.0  # a six-day incident
    robust = replay(series, SeasonalMAD, Policy(direction="up", adapt_after_days=30))
    assert (robust["severity"].iloc[50:56] != "").all()  # every day of it, not only the first
    assert robust["expected"].iloc[55] < 110
    seed = replay(series, ZScore, Policy(warning=ZScore.default_threshold, direction="up"))
    assert (seed["severity"].iloc[50:56] == "").any()  # the seed learns the spike as normal


def test_a_persisting_level_shift_becomes_the_new_normal() -> None:
    series = weekly(100, 100, 2.0)
    series.iloc[40:] += 50.0
    frame = replay(series, SeasonalMAD, Policy(direction="both", adapt_after_days=5))
    assert frame["severity"].iloc[40] != ""
    assert frame["adapted"].any()
    assert (frame["severity"].iloc[50:] == "").all()
    assert abs(frame["expected"].iloc[-1] - 150) < 10


def test_low_counts_neither_page_on_noise_nor_hide_a_spike() -> None:
    rng = np.random.default_rng(3)
    counts = pd.Series(rng.poisson(0.5, len(DAYS)).astype(float), index=DAYS)
    history = counts.iloc[:-1]
    point = counts.iloc[[-1]]
    model = NegBinomCounts().fit(history)
    def at(value: float) -> pd.Series:
        return pd.Series([value], index=point.index)

    assert model.score(at(3.0), "up")["score"].iloc[0] < 0.999  # 3 vs about 0.5 a day
    assert model.score(at(10.0), "up")["score"].iloc[0] > 0.9999  # 10 vs about 0.5
    assert model.score(at(0.0), "down")["score"].iloc[0] == 0.0  # a day without is normal


def test_zero_mad_series_has_a_floor_instead_of_infinite_scores() -> None:
    flat = pd.Series(np.full(len(DAYS), 10.0), index=DAYS)
    model = SeasonalMAD().fit(flat.iloc[:-1])
    same = model.score(flat.iloc[[-1]])
    assert same["score"].iloc[0] == 0.0 and same["upper"].iloc[0] > 10.0
    assert model.score(flat.iloc[[-1]] + 0.1)["score"].iloc[0] < 0.9
    assert model.score(flat.iloc[[-1]] * 3)["score"].iloc[0] > 0.9999
    zeros = pd.Series(np.zeros(len(DAYS)), index=DAYS)
    counts = NegBinomCounts().fit(zeros.iloc[:-1]).score(zeros.iloc[[-1]] + 1, "up")
    assert np.isfinite(counts["score"]).all() and counts["score"].iloc[0] < 0.999


@pytest.mark.parametrize("name", sorted(METHODS))
def test_direction_up_ignores_drops_and_down_ignores_spikes(name: str) -> None:
    series = weekly(100, 100, 2.0)
    model = METHODS[name]().fit(series.iloc[:-1])
    drop, spike = series.iloc[[-1]] * 0 + 10.0, series.iloc[[-1]] * 0 + 300.0
    assert model.score(drop, "up")["score"].iloc[0] == 0.0
    assert model.score(spike, "down")["score"].iloc[0] == 0.0
    assert model.score(drop, "down")["score"].iloc[0] > 0.999
    assert model.score(spike, "both")["score"].iloc[0] > 0.999


def test_streaming_equals_backtest() -> None:
    series = weekly(50, 30, 4.0, seed=9)
    series.iloc[60:62] = 120.0
    full = replay(series, SeasonalMAD, Policy())
    for end in (30, 45, 61, 62, 70, len(series)):
        streamed = replay(series.iloc[:end], SeasonalMAD, Policy()).iloc[-1]
        pd.testing.assert_series_equal(streamed, full.iloc[end - 1], check_names=False)


def test_bad_input_is_refused_with_the_reason() -> None:
    naive = pd.Series([1.0, 2.0], index=pd.date_range("2026-01-01", periods=2))
    with pytest.raises(DetectorInputError, match="timezone"):
        SeasonalMAD().fit(naive)
    backwards = pd.Series([1.0, 2.0], index=DAYS[:2][::-1])
    with pytest.raises(DetectorInputError, match="sorted"):
        SeasonalMAD().fit(backwards)


def sparse_revenue(days: int, per_day: float, seed: int) -> pd.Series:
    """Daily sums of Poisson(per_day) payments of a log-normal amount (median 50)."""
    rng = np.random.default_rng(seed)
    index = pd.date_range("2026-01-05", periods=days, freq="D", tz="UTC")
    n = rng.poisson(per_day, days)
    return pd.Series([float(np.round(rng.lognormal(np.log(50), 0.5, k), 2).sum()) for k in n],
                     index=index)  # fmt: skip


def test_sparse_revenue_does_not_page_on_every_payment() -> None:
    # half a payment a day: two days in three are zero, so every weekday median and the
    # MAD were 0 and each payment was an "anomaly" (the benchmark's low-volume amounts)
    series = sparse_revenue(200, 0.5, seed=3)
    policy = Policy(warning=0.9995, direction="both", baseline_days=56, min_history_days=28)
    rows = replay(series, METHODS["seasonal_mad"], policy)
    assert (rows["severity"] != "").sum() == 0
    fitted = SeasonalMAD().fit(series.iloc[-56:])
    assert fitted.sparse_ and not fitted.log_
    # its expected day is the mean (0.5 x E[amount] = 0.5 x 50 x e^(0.125) = 28.3), not 0
    assert float(fitted.score(series.iloc[[-1]])["expected"].iloc[0]) == pytest.approx(28.3, rel=0.4)
    # ten payments in a day is still an anomaly (P(N >= 10) at 0.5 a day is 2e-10)
    spike = pd.Series([500.0], index=[series.index[-1] + pd.Timedelta(days=1)])
    assert float(fitted.score(spike, "up")["score"].iloc[0]) >= 0.9995


def test_revenue_of_twenty_payments_a_day_is_judged_as_a_sum_of_few_events() -> None:
    series = sparse_revenue(56, 20.0, seed=4)
    fitted = SeasonalMAD().fit(series)
    # a compound Poisson sum of 20 log-normal amounts: mean^2 / variance = 20 / e^(0.25) = 15.6
    assert fitted.sparse_ and not fitted.log_
    # a day with none of them is an outage; a day of 11 (the 2 % quantile) is not
    nothing = pd.Series([0.0], index=[series.index[-1] + pd.Timedelta(days=1)])
    assert float(fitted.score(nothing, "down")["score"].iloc[0]) >= 0.9995
    quiet = pd.Series([550.0], index=nothing.index)
    assert float(fitted.score(quiet, "down")["score"].iloc[0]) < 0.999
