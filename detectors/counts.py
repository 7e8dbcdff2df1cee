"""Counts judged as counts: a negative binomial with a seasonal rate.

Cancellations, signups and failed payments are small integers for most products: 2 a day
is not "mean 2, sd 1.4", and a z-score on them pages on noise (3 instead of 1) yet hides
a real spike on a big product. Here the day's rate is the recent level times a weekday
(or hour) factor shrunk towards 1, and the predictive distribution is a negative binomial
whose extra variance has two parts: the uncertainty of a rate estimated from few events
(the Gamma-Poisson posterior: 1/r = 1/(events + 0.5)) and the over-dispersion seen in the
history (method of moments on the Pearson residuals). Zero counts are fine: the rate is
never zero, and a quiet product needs many more events than usual to page.
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np
from scipy.stats import nbinom

from detectors.base import Detector, Tails
from detectors.season import DAY_NS, season_keys, season_kind


class NegBinomCounts(Detector):
    name: ClassVar[str] = "counts"
    summary: ClassVar[str] = "negative binomial with a seasonal rate (for count fields)"
    default_threshold: ClassVar[float] = 0.999

    def __init__(self, window_days: float = 28.0, season_days: float = 56.0) -> None:
        self.window_days = window_days
        self.season_days = season_days

    def _fit(self, times: np.ndarray, values: np.ndarray) -> None:
        y = np.clip(np.round(values), 0, None)
        ns = times.astype("int64")
        last = ns[-1]
        season = ns >= last - self.season_days * DAY_NS
        t_s, y_s = times[season], y[season]
        self.kind_ = season_kind(t_s)
        keys = season_keys(t_s, self.kind_)
        mean_s = float(y_s.mean())
        prior = max(2.0, 2.0 * mean_s)  # pseudo-events pulling a slot factor towards 1
        self.factor_: dict[int, float] = {}
        for key in np.unique(keys):
            members = keys == key
            self.factor_[int(key)] = float(
                (y_s[members].sum() + prior) / (mean_s * members.sum() + prior)
            )
        recent = ns >= last - self.window_days * DAY_NS
        y_r, k_r = y[recent], season_keys(times[recent], self.kind_)
        f_r = np.array([self.factor_.get(int(k), 1.0) for k in k_r])
        exposure = float(f_r.sum())
        self.events_ = float(y_r.sum())
        self.rate_ = (self.events_ + 0.5) / max(exposure, 1e-9)
        mu = self.rate_ * f_r
        phi = float(np.mean((y_r - mu) ** 2 / mu)) if len(y_r) > 2 else 1.0
        over = max(phi - 1.0, 0.0) / max(float(mu.mean()), 1e-9)
        self.inv_r_ = 1.0 / (self.events_ + 0.5) + over

    def expected_at(self, times: np.ndarray) -> np.ndarray:
        keys = season_keys(times, self.kind_)
        return self.rate_ * np.array([self.factor_.get(int(k), 1.0) for k in keys])

    def _score(self, times: np.ndarray, values: np.ndarray) -> Tails:
        mu = self.expected_at(times)
        return nb_tails(mu, self.inv_r_, values, self.tail_level)


def nb_tails(mu: np.ndarray, inv_r: float, values: np.ndarray, level: float) -> Tails:
    """Negative binomial (mean ``mu``, variance ``mu + inv_r * mu**2``) tails of ``values``."""
    mu = np.maximum(np.asarray(mu, dtype=float), 1e-9)
    r = 1.0 / max(inv_r, 1e-9)
    p = r / (r + mu)
    x = np.round(np.asarray(values, dtype=float))
    p_high = np.where(x <= 0, 1.0, nbinom.sf(x - 1, r, p))
    p_low = nbinom.cdf(x, r, p)
    lower = nbinom.ppf(level, r, p)
    upper = nbinom.isf(level, r, p)
    return Tails(mu, lower.astype(float), upper.astype(float), p_high, p_low)
