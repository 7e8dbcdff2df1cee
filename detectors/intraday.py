"""Intraday: the running day and hour judged against what is expected by this time of day.

A churn spike must page in the hour it starts, not tomorrow. From the event times of one
product and one event type (cancellations, payments, signups, failed payments) this
module builds, once per day, a ``DayModel`` from the complete days before it: the day's
expected count (the negative binomial of ``detectors.counts`` on the daily totals, with
days that were themselves anomalous left out) and the share of a normal day's events
that arrive by each minute of the day (from the same days, smoothed towards uniform).
``intraday_at(now)`` then compares the count so far today, and over the trailing
``window``, with ``expected day count x share elapsed``. Both use only events before
``now``, so the live path (``serve``, at each webhook) and the backtest (every hour of
history) are the same function and give the same answers.

Days are UTC days.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.stats import nbinom

from detectors.base import score_from_tails
from detectors.counts import NegBinomCounts, nb_tails

DAY = 86_400 * 10**9
MINUTE = 60 * 10**9


@dataclass(frozen=True)
class IntradaySettings:
    baseline_days: int = 28
    min_history_days: int = 14
    window_minutes: int = 60
    warning: float = 0.9995
    direction: str = "up"
    share_prior: float = 20.0  # pseudo-events spread evenly over the day
    day_looks: float = 4.0  # effective independent looks at the day so far (correction)


@dataclass(frozen=True)
class DayModel:
    day_start: int  # ns since epoch, UTC midnight
    mu: float  # expected events in the whole day
    inv_r: float
    share: np.ndarray  # cumulative share of a day's events by minute (1441 values, 0 .. 1)
    kept_days: tuple[int, ...]  # the baseline days (day starts, ns) the model used


@dataclass(frozen=True)
class IntradayResult:
    time: int  # ns
    window: str  # "day" (so far today) or "window" (the trailing window)
    since: int  # ns: start of the judged window
    observed: float
    expected: float
    lower: float
    upper: float
    score: float


def day_start_of(ns: int) -> int:
    return ns - ns % DAY


def judged_day(now: int) -> int:
    """The day a judgement at ``now`` is about (midnight itself closes the day before)."""
    return day_start_of(now - 1)


def day_model(ts: np.ndarray, day_start: int, settings: IntradaySettings) -> DayModel | None:
    """The model of day ``day_start`` from the sorted event times ``ts`` (ns) before it."""
    starts = day_start - DAY * np.arange(settings.baseline_days, 0, -1)
    if len(ts) == 0 or ts[0] > day_start - settings.min_history_days * DAY:
        return None
    starts = starts[starts >= day_start_of(int(ts[0]))]
    if len(starts) < settings.min_history_days:
        return None
    edges = np.searchsorted(ts, np.append(starts, day_start))
    totals = np.diff(edges).astype(float)
    stamps = starts.astype("datetime64[ns]")
    # the method's core directly: inputs are already sorted, unique, finite day totals
    detector = NegBinomCounts(window_days=settings.baseline_days,
                              season_days=settings.baseline_days)  # fmt: skip
    detector._fit(stamps, totals)
    mu_in = detector.expected_at(stamps)
    r = 1.0 / max(detector.inv_r_, 1e-9)
    p_high = np.where(totals <= 0, 1.0, nbinom.sf(totals - 1, r, r / (r + mu_in)))
    keep = score_from_tails(p_high, p_high, "up") < settings.warning
    if keep.sum() >= settings.min_history_days // 2:
        detector = NegBinomCounts(window_days=settings.baseline_days,
                                  season_days=settings.baseline_days)  # fmt: skip
        detector._fit(stamps[keep], totals[keep])
    else:
        keep = np.ones(len(starts), dtype=bool)
    mu = float(detector.expected_at(np.array([day_start], dtype="datetime64[ns]"))[0])
    minutes = np.zeros(1440)
    for begin, s, e in zip(starts[keep], edges[:-1][keep], edges[1:][keep], strict=True):
        tod = (ts[s:e] - begin) // MINUTE
        np.add.at(minutes, np.clip(tod.astype(int), 0, 1439), 1)
    prior = settings.share_prior
    cum = np.concatenate([[0.0], np.cumsum(minutes)])
    share = (cum + prior * np.arange(1441) / 1440) / (cum[-1] + prior)
    return DayModel(day_start, mu, float(detector.inv_r_), share,
                    tuple(int(s) for s in starts[keep]))  # fmt: skip


def share_at(model: DayModel, ns: np.ndarray | int) -> np.ndarray:
    """Share of the day's events expected before ``ns`` (interpolated by the minute)."""
    pos = (np.asarray(ns, dtype="int64") - model.day_start) / MINUTE
    return np.interp(pos, np.arange(1441), model.share)


def intraday_many(
    ts: np.ndarray, nows: np.ndarray, model: DayModel, settings: IntradaySettings,
    prev: DayModel | None = None,
) -> list[IntradayResult]:
    """``intraday_at`` for several moments of the same day at once (vectorised)."""
    nows = np.asarray(nows, dtype="int64")
    day = model.day_start
    elapsed = share_at(model, nows)
    upto = np.searchsorted(ts, nows)
    observed_day = (upto - np.searchsorted(ts, day)).astype(float)
    w_start = nows - settings.window_minutes * MINUTE
    observed_w = (upto - np.searchsorted(ts, w_start)).astype(float)
    before = prev or model
    expected_w = np.where(
        w_start >= day,
        model.mu * (elapsed - share_at(model, np.maximum(w_start, day))),
        model.mu * elapsed + before.mu * (1 - share_at(before, w_start + DAY)),
    )
    level = (1 - settings.warning) / 2
    day_t = nb_tails(model.mu * elapsed, model.inv_r, observed_day, level)
    win_t = nb_tails(expected_w, model.inv_r, observed_w, level)
    # the day so far is judged at every look (each webhook, every hour): correlated
    # looks, but several a day, so its tails carry a small correction too
    looks = settings.day_looks
    day_s = score_from_tails(np.minimum(day_t.p_high * looks, 1.0),
                             np.minimum(day_t.p_low * looks, 1.0), settings.direction)  # fmt: skip
    # a day holds 1440 / window disjoint windows, each a chance of a false alarm: their
    # tails are Bonferroni-corrected, so the hour test pages as rarely as the day test
    windows = 1440 / max(settings.window_minutes, 1)
    win_s = score_from_tails(np.minimum(win_t.p_high * windows, 1.0),
                             np.minimum(win_t.p_low * windows, 1.0), settings.direction)  # fmt: skip
    out = []
    for i, now in enumerate(nows):
        if win_s[i] > day_s[i]:
            t, obs, since, window, score = win_t, observed_w, int(w_start[i]), "window", win_s[i]
        else:
            t, obs, since, window, score = day_t, observed_day, day, "day", day_s[i]
        out.append(IntradayResult(int(now), window, since, float(obs[i]), float(t.expected[i]),
                                  float(t.lower[i]), float(t.upper[i]), float(score)))  # fmt: skip
    return out


def intraday_at(
    ts: np.ndarray, now: int, model: DayModel, settings: IntradaySettings,
    prev: DayModel | None = None,
) -> IntradayResult:
    """Judge the day so far and the trailing window at ``now`` (only events before it)."""
    return intraday_many(ts, np.array([now]), model, settings, prev)[0]


def backtest(
    ts: np.ndarray, start: int, end: int, settings: IntradaySettings, step_minutes: int = 60
) -> list[IntradayResult]:
    """``intraday_at`` every ``step_minutes`` in ``[start, end)``, one day model per day."""
    out: list[IntradayResult] = []
    models: dict[int, DayModel | None] = {}

    def model_of(day: int) -> DayModel | None:
        if day not in models:
            models[day] = day_model(ts, day, settings)
        return models[day]

    step = step_minutes * MINUTE
    nows = np.arange(start - start % step + step, end, step, dtype="int64")
    days = (nows - 1) - (nows - 1) % DAY
    for day in np.unique(days):
        model = model_of(int(day))
        if model is not None:
            out.extend(intraday_many(ts, nows[days == day], model, settings,
                                     model_of(int(day) - DAY)))  # fmt: skip
    return out
