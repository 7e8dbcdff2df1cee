"""The seed's detector, kept as the reference: 2.5 standard deviations from the 30-day mean.

Its known faults are the reason the other methods exist (no weekly season, thrown off by
the anomalies it should find, a day judged only once it is over); the benchmark measures
every other method against it.
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np
from scipy.stats import norm

from detectors.base import Detector, Tails
from detectors.season import DAY_NS

SEED_SIGMAS = 2.5


class ZScore(Detector):
    name: ClassVar[str] = "zscore"
    summary: ClassVar[str] = "the seed's 30-day mean +/- 2.5 sd (reference)"
    default_threshold: ClassVar[float] = float(1 - 2 * norm.sf(SEED_SIGMAS))
    excludes_flagged: ClassVar[bool] = False

    def __init__(self, window_days: float = 30.0) -> None:
        self.window_days = window_days

    def _fit(self, times: np.ndarray, values: np.ndarray) -> None:
        recent = times.astype("int64") >= times[-1].astype("int64") - self.window_days * DAY_NS
        window = values[recent]
        self.mean_ = float(window.mean())
        self.std_ = float(window.std(ddof=1)) if len(window) > 1 else 0.0

    def _score(self, times: np.ndarray, values: np.ndarray) -> Tails:
        std = max(self.std_, 1e-9)
        z = (values - self.mean_) / std
        half = SEED_SIGMAS * std
        n = len(values)
        return Tails(
            expected=np.full(n, self.mean_), lower=np.full(n, self.mean_ - half),
            upper=np.full(n, self.mean_ + half), p_high=norm.sf(z), p_low=norm.cdf(z),
        )  # fmt: skip
