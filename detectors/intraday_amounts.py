"""Intraday amounts: the running day's revenue judged against what is expected by now.

``detectors.intraday`` judges event *counts* in the running day; revenue is a sum of
event *amounts* and, judged only when the day closes, a payment outage at 08:00 would
page tomorrow. Here, from the times and amounts of one product's payments, a
``AmountDayModel`` is built once per day from the complete days before it:

- the day's expected total: the ``seasonal_mad`` method on the daily totals (same
  weekday, trend correction, log scale for positive totals), days that were themselves
  anomalous (either way) left out;
- the share of a normal day's amount that has arrived by each minute (from the same
  days, smoothed towards uniform);
- the spread of the sum so far, in two parts: the day's *level* (how much whole days
  vary beyond chance: ``seasonal_mad``'s relative spread minus the sampling part,
  at least its relative floor) and *sampling* (a compound Poisson sum of the payments
  expected so far: ``n x E[amount^2]``). Early in the day few payments have arrived and
  sampling dominates (a wide range); at the close the variance is the day's.

The sum so far is judged under a gamma distribution with that mean and variance (a sum
of positive amounts: skewed, never negative); no payment at all has the probability of
no event under the matching negative binomial. Only events before ``now`` are used, so
``serve`` (at each webhook) and the backtest (every hour of history) are the same
function and give the same answers.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.stats import gamma

from detectors.base import score_from_tails
from detectors.intraday import IntradaySettings
from detectors.seasonal import SeasonalMAD

#: relative floor of the day's level spread (as ``seasonal_mad``'s relative floor)
LEVEL_FLOOR = 0.03


@dataclass(frozen=True)
class AmountDayModel:
    day_start: int  # ns since epoch, local midnight
    total: float  # expected amount of the whole day
    level_rel: float  # relative sd of the whole day's level, beyond sampling
    events: float  # expected events in the whole day
    mean_sq: float  # E[amount^2] of one event
    share: np.ndarray  # cumulative share of a day's amount by minute (1441 values, 0 .. 1)
    kept_days: tuple[int, ...]


@dataclass(frozen=True)
class AmountResult:
    time: int  # ns
    since: int  # ns: start of the judged window (the day's start)
    observed: float
    expected: float
    lower: float
    upper: float
    score: float


def amount_day_model(
    ts: np.ndarray, amounts: np.ndarray, day_start: int, settings: IntradaySettings,
) -> AmountDayModel | None:
    """The model of day ``day_start`` from sorted event times ``ts`` (ns) and amounts."""
    days = settings.days
    if len(ts) == 0 or ts[0] > day_start - settings.min_history_days * 86_400 * 10**9:
        return None
    starts = days.previous(day_start, settings.baseline_days)
    starts = starts[starts >= days.start_of(int(ts[0]))]
    if len(starts) < settings.min_history_days:
        return None
    edges = np.searchsorted(ts, np.append(starts, day_start))
    cum = np.concatenate([[0.0], np.cumsum(amounts)])
    totals = cum[edges[1:]] - cum[edges[:-1]]
    counts = np.diff(edges).astype(float)
    if counts.sum() < 2:
        return None
    stamps = starts.astype("datetime64[ns]")
    detector = SeasonalMAD(window_days=settings.baseline_days)
    detector._fit(stamps, totals)
    tails = detector._score(stamps, totals)
    inside = score_from_tails(tails.p_high, tails.p_low, "both")
    keep = inside < settings.warning
    if keep.sum() >= settings.min_history_days // 2 and not keep.all():
        detector = SeasonalMAD(window_days=settings.baseline_days)
        detector._fit(stamps[keep], totals[keep])
    else:
        keep = np.ones(len(starts), dtype=bool)
    at = np.array([day_start], dtype="datetime64[ns]")
    total = float(detector._score(at, np.ones(1)).expected[0])
    if detector.log_:
        rel = float(np.expm1(detector.scale_))
    else:
        rel = float(detector.scale_) / max(abs(total), 1e-9)
    kept_counts, kept_totals = counts[keep], totals[keep]
    n_events = max(float(kept_counts.sum()), 1.0)
    mean_amount = float(kept_totals.sum()) / n_events
    in_days = np.concatenate([np.arange(s, e) for s, e in
                              zip(edges[:-1][keep], edges[1:][keep], strict=True)])  # fmt: skip
    mean_sq = float(np.mean(amounts[in_days] ** 2)) if len(in_days) else mean_amount**2
    events = max(total, 0.0) / max(mean_amount, 1e-9)
    sampling_rel2 = events * mean_sq / max(total, 1e-9) ** 2
    level_rel = float(np.sqrt(max(rel**2 - sampling_rel2, LEVEL_FLOOR**2)))
    minutes = np.zeros(1440)
    for begin, s, e in zip(starts[keep], edges[:-1][keep], edges[1:][keep], strict=True):
        tod = days.minute_of_day(ts[s:e], int(begin))
        np.add.at(minutes, np.clip(tod.astype(int), 0, 1439), amounts[s:e])
    prior = settings.share_prior * max(mean_amount, 1e-9)
    cum_m = np.concatenate([[0.0], np.cumsum(np.maximum(minutes, 0.0))])
    share = (cum_m + prior * np.arange(1441) / 1440) / (cum_m[-1] + prior)
    return AmountDayModel(day_start, total, level_rel, events, mean_sq, share,
                          tuple(int(s) for s in starts[keep]))  # fmt: skip


def amounts_many(
    ts: np.ndarray, cum: np.ndarray, nows: np.ndarray, model: AmountDayModel,
    settings: IntradaySettings,
) -> list[AmountResult]:
    """The day's sum so far at each of ``nows`` (same day), judged; ``cum`` is the
    running sum of the amounts with a leading 0 (``cum[i]`` = sum of the first i)."""
    nows = np.asarray(nows, dtype="int64")
    pos = settings.days.minute_of_day(nows, model.day_start)
    elapsed = np.interp(pos, np.arange(1441), model.share)
    observed = cum[np.searchsorted(ts, nows)] - cum[np.searchsorted(ts, model.day_start)]
    mean = np.maximum(model.total * elapsed, 1e-9)
    n_so_far = np.maximum(model.events * elapsed, 1e-9)
    var = (model.level_rel * mean) ** 2 + n_so_far * model.mean_sq
    shape, scale = mean**2 / var, var / mean
    p_high = gamma.sf(observed, shape, scale=scale)
    # no payment at all: the chance of no event (negative binomial, the level's spread)
    r = 1.0 / max(model.level_rel**2, 1e-9)
    p_none = (r / (r + n_so_far)) ** r
    p_low = np.where(observed <= 0, p_none, np.maximum(gamma.cdf(observed, shape, scale=scale), p_none))
    p_high = np.where(observed <= 0, 1.0, p_high)
    level = (1 - settings.warning) / 2
    lower = gamma.ppf(level, shape, scale=scale)
    upper = gamma.isf(level, shape, scale=scale)
    looks = settings.day_looks  # several correlated looks a day, as for counts
    score = score_from_tails(np.minimum(p_high * looks, 1.0), np.minimum(p_low * looks, 1.0),
                             settings.direction)  # fmt: skip
    return [AmountResult(int(now), model.day_start, float(observed[i]), float(mean[i]),
                         float(lower[i]), float(upper[i]), float(score[i]))
            for i, now in enumerate(nows)]  # fmt: skip


def backtest(
    ts: np.ndarray, amounts: np.ndarray, start: int, end: int, settings: IntradaySettings,
    step_minutes: int = 60,
) -> list[AmountResult]:
    """``amounts_many`` every ``step_minutes`` in ``(start, end)``, one model per day."""
    cum = np.concatenate([[0.0], np.cumsum(amounts)])
    step = step_minutes * 60 * 10**9
    nows = np.arange(start - start % step + step, end, step, dtype="int64")
    judged = settings.days.judged(nows)
    out: list[AmountResult] = []
    for day in np.unique(judged):
        model = amount_day_model(ts, amounts, int(day), settings)
        if model is not None:
            out.extend(amounts_many(ts, cum, nows[judged == day], model, settings))
    return out
