"""Robust seasonal baseline: same-weekday (or same-hour) medians, MAD residuals.

Why medians of the same season slot rather than STL: the baseline must be refitted for
every point in a causal replay (streaming = backtest), on a few weeks of data with the
flagged points taken out, and a median of the last four to eight Mondays is exact, robust
to what is left of an incident, and costs microseconds. With a year of history a yearly
term is added: how far last year's value around this date stood from last year's recent
level. The residual spread is 1.4826 x MAD with a floor (a share of the level and the
mean absolute deviation), so a flat or zero-MAD series does not make every wiggle an
anomaly; tails come from Student's t, which is honest about four-point medians.

A *sparse* non-negative series (at least ``sparse_zeros`` of its days zero: the revenue
of a product with a payment every other day) is a sum of a few events, not a level with
noise: its weekday medians are 0 and its MAD is 0, and every payment looked like an
anomaly (the benchmark's false alerts on low-volume amounts). There the expected value
is the slot *mean* (shrunk towards the overall mean), the spread the residuals' standard
deviation, and the tails come from the gamma of that mean and variance, a zero having at
least the observed share of zero days. The same holds for a series whose noise says it
sums fewer than ``few_events`` events a point (``events_per_point``: mean^2 / variance;
the log of a sum of 20 payments is skewed left, and every quiet day looked like a drop).
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np
from scipy.stats import gamma, poisson
from scipy.stats import t as student_t

from detectors.base import Detector, Tails
from detectors.season import DAY_NS, season_keys, season_kind

YEAR_NS = 364 * DAY_NS  # 52 weeks: keeps the weekday


class SeasonalMAD(Detector):
    name: ClassVar[str] = "seasonal_mad"
    summary: ClassVar[str] = "same-weekday/hour medians + yearly term, MAD residuals (robust)"
    default_threshold: ClassVar[float] = 0.999

    def __init__(
        self,
        window_days: float = 56.0,
        min_slot_points: int = 2,
        relative_floor: float = 0.03,
        absolute_floor: float = 1e-6,
        yearly: bool = True,
        yearly_min_days: float = 400.0,
        trend_days: float = 14.0,
        sparse_zeros: float = 0.02,
        few_events: float = 50.0,
    ) -> None:
        self.sparse_zeros = sparse_zeros
        self.few_events = few_events
        self.trend_days = trend_days
        self.window_days = window_days
        self.min_slot_points = min_slot_points
        self.relative_floor = relative_floor
        self.absolute_floor = absolute_floor
        self.yearly = yearly
        self.yearly_min_days = yearly_min_days

    def _fit(self, times: np.ndarray, values: np.ndarray) -> None:
        ns = times.astype("int64")
        last = ns[-1]
        recent = ns >= last - self.window_days * DAY_NS
        t, y = times[recent], values[recent]
        counts_like = bool(np.all(y >= 0) and np.all(y == np.round(y)))
        self.kind_ = season_kind(t)
        keys = season_keys(t, self.kind_)
        self.zeros_ = float(np.mean(y == 0))
        self.sparse_ = bool(np.all(y >= 0) and not counts_like and (
            self.zeros_ >= self.sparse_zeros or events_per_point(y, keys) < self.few_events))
        # positive amounts (revenue, sessions) vary in proportion to their level, so a
        # Monday and a Sunday share one relative spread: judged on the log scale
        self.log_ = bool(np.all(y > 0) and not (counts_like and np.median(y) < 50)
                         and not self.sparse_)  # fmt: skip
        if self.log_:
            y = np.log(y)
        self.level_ = float(np.median(y))
        self.slot_: dict[int, float] = {}
        overall = float(np.mean(y))
        resid = np.empty(len(y))
        centres = np.empty(len(y))
        for key in np.unique(keys):
            members = keys == key
            m = int(members.sum())
            # sparse: a slot mean shrunk towards the overall mean (four pseudo-points): four
            # Mondays without a payment do not make a payment on Monday impossible
            centre = float((y[members].sum() + 4.0 * overall) / (m + 4.0) if self.sparse_
                           else np.median(y[members]))  # fmt: skip
            centres[members] = centre
            if m >= self.min_slot_points:
                self.slot_[int(key)] = centre
            # leave-one-out: a point's residual against the median of the other points of
            # its slot (in-sample residuals of a few-point median understate the spread)
            values_k = y[members]
            if m > 2 and self.sparse_:
                resid[members] = values_k - (values_k.sum() - values_k) / (m - 1)
            elif m > 2:
                resid[members] = values_k - loo_medians(values_k)
            else:
                resid[members] = (values_k - centre) * (2.0 if m == 2 else 1.0)
        # a slow trend (growth, the yearly swing) leaves the slot medians of eight weeks
        # behind: the last two weeks' median residual moves them to the current level
        latest = (t.astype("int64") >= last - self.trend_days * DAY_NS)
        self.trend_ = float(np.median(resid[latest])) if latest.sum() >= 5 else 0.0
        if self.sparse_:
            self.level_ = float(np.mean(y))
            self.trend_ = 0.0  # the median residual of mostly-zero days is not a trend
        # sparse: the spread of a sum of few events is its standard deviation (what the
        # gamma is matched to); the MAD of mostly-zero days is 0
        rms = float(np.sqrt(np.mean(resid**2))) if self.sparse_ else 0.0
        # ... and grows with the level like a count's (variance = dispersion x mean): a
        # Sunday of 12 payments varies less than a Monday of 20
        self.dispersion_ = (float(np.sum(resid**2) / max(np.sum(centres), 1e-9))
                            if self.sparse_ else 0.0)  # fmt: skip
        mad = float(np.median(np.abs(resid - np.median(resid))))
        self.scale_ = max(
            1.4826 * mad,
            0.5 * float(np.mean(np.abs(resid))),
            self.relative_floor * (1.0 if self.log_ else abs(self.level_)),
            np.sqrt(max(self.level_, 1.0)) if counts_like and not self.log_ else 0.0,  # Poisson
            rms,
            self.absolute_floor,
        )
        # the spread is a MAD of leave-one-out residuals of eight-point medians plus a
        # trend correction: far fewer effective degrees of freedom than points (30 here
        # paged on ordinary 3.5 sd days of smooth revenue, where the seed's z-score did not)
        self.df_ = float(min(max(len(y) - 1, 2), 10))
        self.yearly_ = 0.0
        span = ns[-1] - ns[0]
        if self.yearly and not self.sparse_ and span >= self.yearly_min_days * DAY_NS:
            self.yearly_ = self._yearly_term(ns, values, last)

    def _yearly_term(self, ns: np.ndarray, values: np.ndarray, last: int) -> float:
        if self.log_:
            values = np.log(np.maximum(values, 1e-300))
        """Last year's value near next point minus last year's level over the window."""
        ahead = last + DAY_NS - YEAR_NS
        near = (ns >= ahead - 7 * DAY_NS) & (ns < ahead + 7 * DAY_NS)
        before = (ns >= ahead - self.window_days * DAY_NS) & (ns < ahead)
        if near.sum() < 5 or before.sum() < 10:
            return 0.0
        return float(np.median(values[near]) - np.median(values[before]))

    def _score(self, times: np.ndarray, values: np.ndarray) -> Tails:
        keys = season_keys(times, self.kind_)
        expected = np.array([self.slot_.get(int(k), self.level_) for k in keys])
        expected = expected + self.yearly_ + self.trend_
        if self.sparse_:
            return self._sparse_tails(np.maximum(expected, 1e-9), values)
        observed = np.log(np.maximum(values, 1e-300)) if self.log_ else values
        z = (observed - expected) / self.scale_
        half = float(student_t.isf(self.tail_level, self.df_)) * self.scale_
        lower, upper = expected - half, expected + half
        if self.log_:
            expected, lower, upper = np.exp(expected), np.exp(lower), np.exp(upper)
        return Tails(expected, lower, upper, student_t.sf(z, self.df_), student_t.cdf(z, self.df_))


    def _sparse_tails(self, expected: np.ndarray, values: np.ndarray) -> Tails:
        """Gamma tails (mean ``expected``, variance ``dispersion_ x expected``); a zero is
        at least as likely as the zero days seen."""
        var = np.maximum(self.dispersion_ * expected,
                         (self.relative_floor * expected) ** 2 + self.absolute_floor**2)
        shape, scale = expected**2 / var, var / expected
        # the gamma's tails are thin where the sum is of a dozen events: each tail is at
        # least the Poisson one of the equivalent count (value / dispersion)
        unit = np.maximum(var / expected, 1e-12)
        k, mu = values / unit, expected / unit
        p_high = np.where(values <= 0, 1.0, np.maximum(gamma.sf(values, shape, scale=scale),
                                                       poisson.sf(np.ceil(k) - 1, mu)))  # fmt: skip
        # nothing at all: at least as likely as the zero days seen, or as no event among
        # ``shape`` expected ones
        p_low = np.maximum(np.maximum(gamma.cdf(values, shape, scale=scale), poisson.cdf(np.floor(k), mu)),
                           np.where(values <= 0, np.maximum(self.zeros_, np.exp(-shape)), 0.0))  # fmt: skip
        lower = gamma.ppf(self.tail_level, shape, scale=scale)
        upper = gamma.isf(self.tail_level, shape, scale=scale)
        return Tails(expected, lower, upper, p_high, p_low)


def events_per_point(y: np.ndarray, keys: np.ndarray) -> float:
    """How many events a point of a non-negative series sums, judged from its noise:
    ``mean^2 / variance`` around the slot means (a compound Poisson sum of n events has
    about n / 1.3; a level with 5 % noise, 400). Large for no noise at all."""
    mean = float(np.mean(y))
    if mean <= 0 or len(y) < 3:
        return 0.0
    resid = y.astype(float).copy()
    for key in np.unique(keys):
        members = keys == key
        resid[members] -= y[members].mean()
    var = float(np.sum(resid**2) / max(len(y) - len(np.unique(keys)), 1))
    return mean**2 / var if var > 0 else float("inf")


def loo_medians(values: np.ndarray) -> np.ndarray:
    """For each element, the median of the others (vectorised; no m medians of m - 1)."""
    order = np.argsort(values, kind="stable")
    v = values[order]
    m = len(v)
    n = m - 1  # size after leaving one out
    j = np.arange(m)  # sorted position of the left-out element

    def at(i: int) -> np.ndarray:  # element i of the sorted array without position j
        return np.where(i < j, v[min(i, m - 1)], v[min(i + 1, m - 1)])

    med = at(n // 2) if n % 2 else (at(n // 2 - 1) + at(n // 2)) / 2
    out = np.empty(m)
    out[order] = med
    return out
