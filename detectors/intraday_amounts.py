"""Intraday amounts: the running day's revenue judged against what is expected by now.

``detectors.intraday`` judges event *counts* in the running day; revenue is a sum of
event *amounts* and, judged only when the day closes, a payment outage at 08:00 would
page tomorrow. Here, from the times and amounts of one product's payments, a
``AmountDayModel`` is built once per day from the complete days before it:

- the day's expected number of payments and its spread: the negative binomial of the
  counts' intraday model (seasonal rate, days that were themselves anomalous left out,
  over-dispersion = how much whole days vary beyond chance);
- the amounts of the baseline days' payments (their mean and mean square) and the share
  of a normal day's amount that has arrived by each minute (smoothed towards uniform);
- so the sum so far is a compound count: mean ``n x E[a]``, variance ``n x E[a^2]``
  (sampling: few payments early in the day, a wide range) plus ``(level x mean)^2``
  (the day's level, at least 3 %); at the close it is the day's.

The sum so far is judged under a gamma distribution with that mean and variance (a sum
of positive amounts: skewed, never negative), each tail at least the negative binomial's
of the equivalent count (sum / mean amount): with few payments due, the count is what
varies, and the gamma alone would page on a quiet morning. Only events before ``now`` are used, so
``serve`` (at each webhook) and the backtest (every hour of history) are the same
function and give the same answers.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.stats import gamma, nbinom

from detectors.base import score_from_tails
from detectors.intraday import IntradaySettings, day_model

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
    """The model of day ``day_start`` from sorted event times ``ts`` (ns) and amounts.

    A compound count: the day's events are the negative binomial of the counts' intraday
    model (``detectors.intraday.day_model``: seasonal rate, anomalous days left out, its
    over-dispersion the day's level spread), each carrying an amount drawn like the
    amounts of the baseline days' events."""
    counts_model = day_model(ts, day_start, settings)
    if counts_model is None:
        return None
    days = settings.days
    starts = np.array(counts_model.kept_days, dtype="int64")
    ends = np.array([days.next(int(d)) for d in starts], dtype="int64")
    lo, hi = np.searchsorted(ts, starts), np.searchsorted(ts, ends)
    if int((hi - lo).sum()) < 2:
        return None
    idx = np.concatenate([np.arange(a, b) for a, b in zip(lo, hi, strict=True)])
    kept = amounts[idx]
    mean_amount = float(kept.mean())
    mean_sq = float(np.mean(kept**2))
    minutes = np.zeros(1440)
    for begin, a, b in zip(starts, lo, hi, strict=True):
        tod = days.minute_of_day(ts[a:b], int(begin))
        np.add.at(minutes, np.clip(tod.astype(int), 0, 1439), np.maximum(amounts[a:b], 0.0))
    prior = settings.share_prior * max(mean_amount, 1e-9)
    cum_m = np.concatenate([[0.0], np.cumsum(minutes)])
    share = (cum_m + prior * np.arange(1441) / 1440) / (cum_m[-1] + prior)
    level_rel = float(max(np.sqrt(counts_model.inv_r), LEVEL_FLOOR))
    return AmountDayModel(day_start, counts_model.mu * mean_amount, level_rel,
                          counts_model.mu, mean_sq, share, counts_model.kept_days)  # fmt: skip


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
    # The gamma's tails are too thin when few payments are expected (a sum of 2 where 12
    # are due is a count event: the count's own tail is ten times fatter). Each tail is
    # the larger of the gamma's and the negative binomial's of the equivalent count
    # (observed / mean amount) with the counts' dispersion.
    r = 1.0 / max(model.level_rel**2, 1e-9)
    p = r / (r + n_so_far)
    mean_amount = model.total / max(model.events, 1e-9)
    k = observed / max(mean_amount, 1e-9)
    p_high = np.maximum(gamma.sf(observed, shape, scale=scale), nbinom.sf(np.ceil(k) - 1, r, p))
    # no payment at all: the chance of no event
    p_low = np.maximum(gamma.cdf(observed, shape, scale=scale), nbinom.cdf(np.floor(k), r, p))
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
