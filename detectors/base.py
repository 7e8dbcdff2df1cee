"""The one interface every detection method implements (fit a baseline, score new points).

Template method, as in adtk and Merlion: the public ``fit``/``score`` live here and check
their input once (a UTC-indexed, sorted, finite series); a method implements only its
core, ``_fit(times, values)`` and ``_score(times, values)``. Parameters are set in
``__init__``; fitted state ends in ``_``. A method *scores*; it never decides: thresholds,
severities and alarm suppression are the caller's (``detectors.causal`` and the alert book).

Every method returns, per point, the expected value, the range ``[lower, upper]`` outside
of which the point would reach the method's default threshold, the two tail probabilities
of the observed value under the baseline, and from those a score in [0, 1] for the asked
direction: ``1 - 2 * tail`` (0 = as expected, 1 = impossible), so that "2.5 sd" means the
same threshold whichever direction is watched.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

import numpy as np
import pandas as pd

Direction = Literal["up", "down", "both"]
DIRECTIONS: tuple[str, ...] = ("up", "down", "both")


class DetectorInputError(ValueError):
    """A series a detector cannot judge (unsorted, duplicate or naive times, NaN history)."""


@dataclass(frozen=True)
class Tails:
    """What a method's core returns for each scored point (arrays of one length)."""

    expected: np.ndarray
    lower: np.ndarray
    upper: np.ndarray
    p_high: np.ndarray  # P(X >= observed) under the baseline
    p_low: np.ndarray  # P(X <= observed)


def score_from_tails(p_high: np.ndarray, p_low: np.ndarray, direction: str) -> np.ndarray:
    """``1 - 2 * tail`` in the watched direction(s), clipped to [0, 1]."""
    if direction == "up":
        tail = p_high
    elif direction == "down":
        tail = p_low
    elif direction == "both":
        tail = np.minimum(p_high, p_low)
    else:
        raise ValueError(f"direction must be one of {', '.join(DIRECTIONS)}, not {direction!r}")
    return np.clip(1.0 - 2.0 * np.asarray(tail, dtype=float), 0.0, 1.0)


def as_series(data: Any, what: str = "series") -> pd.Series:
    """Check and normalise a series once: UTC DatetimeIndex, sorted, unique, float values."""
    if not isinstance(data, pd.Series):
        raise DetectorInputError(f"{what}: expected a pandas Series indexed by time")
    index = data.index
    if not isinstance(index, pd.DatetimeIndex):
        raise DetectorInputError(f"{what}: the index must be timestamps, not {type(index).__name__}")
    if index.tz is None:
        raise DetectorInputError(f"{what}: timestamps must be timezone-aware (UTC)")
    series = pd.Series(np.asarray(data, dtype=float), index=index.tz_convert("UTC"))
    if not series.index.is_monotonic_increasing:
        raise DetectorInputError(f"{what}: timestamps must be sorted ascending")
    if series.index.has_duplicates:
        first = series.index[series.index.duplicated()][0]
        raise DetectorInputError(f"{what}: timestamp {first} appears twice")
    if np.isinf(series.to_numpy()).any():
        raise DetectorInputError(f"{what}: values must be finite")
    return series


class Detector(ABC):
    """Base of every method: ``fit(history)`` then ``score(points)``."""

    name: ClassVar[str] = ""
    #: score at or above which ``detect score`` marks a point anomalous by default
    default_threshold: ClassVar[float] = 0.999
    #: False for the seed's z-score: its baseline took flagged points in (kept as it was)
    excludes_flagged: ClassVar[bool] = True
    #: a one-line description for ``--help`` and the README
    summary: ClassVar[str] = ""

    def fit(self, history: pd.Series) -> Detector:
        series = as_series(history, "history").dropna()
        if series.empty:
            raise DetectorInputError("history: no values to fit a baseline on")
        self._fit(series.index.to_numpy(dtype="datetime64[ns]"), series.to_numpy(dtype=float))
        self.n_fitted_ = len(series)
        return self

    def score(self, points: pd.Series, direction: str = "both") -> pd.DataFrame:
        """Per point: ``value, expected, lower, upper, p_high, p_low, score``."""
        if not hasattr(self, "n_fitted_"):
            raise RuntimeError(f"{type(self).__name__}: call fit() before score()")
        series = as_series(points, "points")
        tails = self._score(
            series.index.to_numpy(dtype="datetime64[ns]"), series.to_numpy(dtype=float)
        )
        score = score_from_tails(tails.p_high, tails.p_low, direction)
        score = np.where(np.isnan(series.to_numpy()), np.nan, score)
        return pd.DataFrame(
            {"value": series.to_numpy(), "expected": tails.expected, "lower": tails.lower,
             "upper": tails.upper, "p_high": tails.p_high, "p_low": tails.p_low, "score": score},
            index=series.index,
        )  # fmt: skip

    @abstractmethod
    def _fit(self, times: np.ndarray, values: np.ndarray) -> None:
        """Learn the baseline from ``values`` at ``times`` (datetime64[ns], sorted, no NaN)."""

    @abstractmethod
    def _score(self, times: np.ndarray, values: np.ndarray) -> Tails:
        """Expected value, range and tail probabilities of ``values`` at ``times``."""

    @property
    def tail_level(self) -> float:
        """The one-sided tail probability the range ``[lower, upper]`` is drawn at."""
        return (1.0 - self.default_threshold) / 2.0
