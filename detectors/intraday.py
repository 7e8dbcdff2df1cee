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

Days are days of ``reporting.timezone`` (``IntradaySettings.timezone``, ``detectors.days``):
the running day starts at local midnight and the share of the day passed is the elapsed
fraction of that day's own length (23 or 25 hours on a DST day).

A slow outage at low volume (6 signups a day falling to none) shows in no single day
(a day without signups is a 1-in-400 event there) but over two: the trailing 24 h, 48 h,
... (up to ``multi_days - 1`` days) are each judged as one count against the expected
events of the days they span (each day's own model and profile), for drops only, the
tails corrected for the window lengths tried.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from scipy.stats import nbinom

from detectors.base import Tails, score_from_tails
from detectors.counts import NegBinomCounts, nb_tails
from detectors.days import Days

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
    timezone: str = "UTC"  # the zone of the day buckets (reporting.timezone)
    multi_days: int = 3  # longest window of days for drops (1: off)

    @property
    def days(self) -> Days:
        return Days(self.timezone)


@dataclass(frozen=True)
class DayModel:
    day_start: int  # ns since epoch, local midnight
    mu: float  # expected events in the whole day
    inv_r: float
    share: np.ndarray  # cumulative share of a day's events by minute (1441 values, 0 .. 1)
    kept_days: tuple[int, ...]  # the baseline days (day starts, ns) the model used
    day_end: int = 0  # ns: the next local midnight (0: day_start + 24 h)

    @property
    def end(self) -> int:
        return self.day_end or self.day_start + DAY


@dataclass(frozen=True)
class IntradayResult:
    time: int  # ns
    window: str  # "day" (so far today), "window" (the trailing window), "days" (k days)
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
    days = settings.days
    if len(ts) == 0 or ts[0] > day_start - settings.min_history_days * DAY:
        return None
    starts = days.previous(day_start, settings.baseline_days)
    starts = starts[starts >= days.start_of(int(ts[0]))]
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
        tod = days.minute_of_day(ts[s:e], int(begin))
        np.add.at(minutes, np.clip(tod.astype(int), 0, 1439), 1)
    prior = settings.share_prior
    cum = np.concatenate([[0.0], np.cumsum(minutes)])
    share = (cum + prior * np.arange(1441) / 1440) / (cum[-1] + prior)
    return DayModel(day_start, mu, float(detector.inv_r_), share,
                    tuple(int(s) for s in starts[keep]), days.next(day_start))  # fmt: skip


def share_at(model: DayModel, ns: np.ndarray | int) -> np.ndarray:
    """Share of the day's events expected before ``ns`` (interpolated by the minute)."""
    pos = (np.asarray(ns, dtype="int64") - model.day_start) * (1440.0 / (model.end - model.day_start))
    return np.interp(pos, np.arange(1441), model.share)


def share_before(model: DayModel, prev: DayModel | None, ns: np.ndarray) -> np.ndarray:
    """Share of the *previous* day's events expected before ``ns`` (an instant in that
    day): from its own model, or this day's profile when there is none."""
    if prev is not None:
        return share_at(prev, ns)
    pos = 1440.0 + (np.asarray(ns, dtype="int64") - model.day_start) * (
        1440.0 / (model.end - model.day_start))
    return np.interp(pos, np.arange(1441), model.share)


def intraday_many(
    ts: np.ndarray, nows: np.ndarray, model: DayModel, settings: IntradaySettings,
    prev: DayModel | None = None, earlier: tuple[DayModel, ...] = (),
) -> list[IntradayResult]:
    """``intraday_at`` for several moments of the same day at once (vectorised).

    ``earlier``: the models of the complete days just before this one, oldest first
    (``earlier_models``), for the multi-day drop window."""
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
        model.mu * elapsed + before.mu * (1 - share_before(model, prev, np.minimum(w_start, day))),
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
    multi = _multi_day(ts, nows, upto, model, elapsed, earlier, level, settings)
    out = []
    for i, now in enumerate(nows):
        if win_s[i] > day_s[i]:
            t, obs, since, window, score = win_t, observed_w, int(w_start[i]), "window", win_s[i]
        else:
            t, obs, since, window, score = day_t, observed_day, day, "day", day_s[i]
        for m_since, m_obs, m_t, m_s in multi:
            if m_s[i] > score:
                t, obs, since, window, score = m_t, m_obs, int(m_since[i]), "days", m_s[i]
        out.append(IntradayResult(int(now), window, since, float(obs[i]), float(t.expected[i]),
                                  float(t.lower[i]), float(t.upper[i]), float(score)))  # fmt: skip
    return out


def _multi_day(
    ts: np.ndarray, nows: np.ndarray, upto: np.ndarray, model: DayModel, elapsed: np.ndarray,
    earlier: tuple[DayModel, ...], level: float, settings: IntradaySettings,
) -> list[tuple[np.ndarray, np.ndarray, Tails, np.ndarray]]:
    """The trailing 1 .. ``multi_days - 1`` days (24 h, 48 h, ...), each judged as one
    count against the expected events of the days it spans (drops only)."""
    if settings.direction == "up" or not earlier:
        return []
    out = []
    lengths = range(1, min(settings.multi_days - 1, len(earlier)) + 1)
    # hourly looks at a window a day long or more are nearly the same look: the tails are
    # corrected for the lengths tried (and both directions of the convention), not the looks
    tried = 2.0 * len(lengths)
    for j in lengths:
        since = nows - j * DAY
        expected = model.mu * (elapsed - share_at(model, since))
        for m in earlier:
            expected = expected + m.mu * (1.0 - share_at(m, since))
        observed = (upto - np.searchsorted(ts, since)).astype(float)
        inv_r = max([model.inv_r, *(m.inv_r for m in earlier)])
        t = nb_tails(expected, inv_r, observed, level)
        p_low = np.minimum(t.p_low * tried, 1.0)
        out.append((since, observed, t, score_from_tails(np.ones(len(nows)), p_low, "down")))
    return out


def earlier_models(
    model_of: Callable[[int], DayModel | None], day: int, settings: IntradaySettings,
) -> tuple[DayModel, ...]:
    """The models of the ``multi_days - 1`` days before ``day`` (oldest first), as far back
    as each has one."""
    if settings.multi_days <= 1:
        return ()
    out: list[DayModel] = []
    for start in settings.days.previous(day, settings.multi_days - 1)[::-1]:
        found = model_of(int(start))
        if found is None:
            break
        out.insert(0, found)
    return tuple(out)


def intraday_at(
    ts: np.ndarray, now: int, model: DayModel, settings: IntradaySettings,
    prev: DayModel | None = None,
) -> IntradayResult:
    """Judge the day so far and the trailing window at ``now`` (only events before it)."""
    earlier = earlier_models(lambda d: day_model(ts, d, settings), model.day_start, settings)
    return intraday_many(ts, np.array([now]), model, settings, prev, earlier)[0]


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
    days = settings.days.judged(nows)
    for day in np.unique(days):
        model = model_of(int(day))
        if model is not None:
            earlier = earlier_models(model_of, int(day), settings)
            prev = model_of(int(settings.days.previous(int(day), 1)[0]))
            out.extend(intraday_many(ts, nows[days == day], model, settings, prev, earlier))
    return out
