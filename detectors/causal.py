"""Causal scoring: every point judged on the data before it, so streaming = backtest.

For each point the baseline is refitted on the points strictly before it, inside the
baseline span, minus the points already flagged (a churn spike must not teach the
baseline that spikes are normal) and never including the point under test. Deciding is
here, not in the methods: a score at or above ``warning`` flags the point (``critical``
marks it severe). A run of flagged points that lasts ``adapt_after`` is a level shift,
not an incident: from then on the history is re-levelled to the new normal (pre-shift
points scaled by the median ratio, or shifted by the median difference, that the
post-shift points show against what was expected of them) and those points rejoin it.

``judge`` is what ``serve`` calls for the newest point; ``replay`` walks a whole series.
Both run the same per-point step, so they give the same answers by construction (and
``tests/detectors/test_causal.py`` checks it).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd

from detectors.base import Detector, as_series, score_from_tails

COLUMNS = ("value", "expected", "lower", "upper", "score", "severity", "flagged", "adapted")


@dataclass(frozen=True)
class Policy:
    """How scores become decisions (from the ``detector`` config section)."""

    warning: float = 0.9995
    critical: float = 0.99999
    direction: str = "both"
    baseline_days: float = 56.0
    min_history_days: float = 14.0
    min_points: int = 7
    adapt_after_days: float = 7.0

    def severity(self, score: float) -> str:
        if not np.isfinite(score) or score < self.warning:
            return ""
        return "critical" if score >= self.critical else "warning"


def replay(
    series: pd.Series,
    make: Callable[[], Detector],
    policy: Policy,
    *,
    since: pd.Timestamp | None = None,
) -> pd.DataFrame:
    """Score every point (from ``since`` on) causally; one row per point, ``COLUMNS``."""
    data = as_series(series, "series").dropna()
    stamps = data.index.to_numpy(dtype="datetime64[ns]")
    times = stamps.astype("int64")
    values = data.to_numpy(dtype=float)
    n = len(values)
    out = {c: np.full(n, np.nan) for c in ("expected", "lower", "upper", "score")}
    severity = np.full(n, "", dtype=object)
    flagged = np.zeros(n, dtype=bool)
    adapted = np.zeros(n, dtype=bool)
    excludes = make().excludes_flagged
    shift: tuple[str, float] = ("ratio", 1.0)  # how pre-shift points move to the new level
    run_start: int | None = None  # index of the first point of the current flagged run
    reset_at: int | None = None  # index where the current normal began (a level shift)
    span = int(policy.baseline_days * 86_400e9)
    need = int(policy.min_history_days * 86_400e9)
    adapt = int(policy.adapt_after_days * 86_400e9)
    first = 0 if since is None else int(np.searchsorted(times, pd.Timestamp(since).value))
    # The walk starts early enough that the flags feeding the first judged point exist.
    start_i = int(np.searchsorted(times, times[first] - span - adapt)) if first < n else n
    for i in range(start_i, n):
        lo = int(np.searchsorted(times, times[i] - span))
        idx = np.arange(lo, i)
        if excludes:
            idx = idx[~flagged[lo:i]]
        if len(idx) < policy.min_points or times[i] - times[0] < need:
            continue
        hist = values[idx]
        if reset_at is not None and excludes:
            hist = _relevel(hist, idx < reset_at, shift)
        # The series was validated once above; the per-point fit/score run the method's
        # core directly (the public wrappers would re-check and re-wrap it every time).
        detector = make()
        detector._fit(stamps[idx], hist)
        tails = detector._score(stamps[i : i + 1], values[i : i + 1])
        out["expected"][i], out["lower"][i] = tails.expected[0], tails.lower[0]
        out["upper"][i] = tails.upper[0]
        out["score"][i] = score_from_tails(tails.p_high, tails.p_low, policy.direction)[0]
        sev = policy.severity(out["score"][i])
        severity[i] = sev
        if sev:
            flagged[i] = True
            run_start = i if run_start is None else run_start
            if excludes and times[i] - times[run_start] >= adapt:
                flagged[run_start : i + 1] = False  # the new normal
                adapted[i] = True
                shift = _shift(values[run_start : i + 1], out["expected"][run_start : i + 1])
                reset_at, run_start = run_start, None
        else:
            run_start = None
    frame = pd.DataFrame(
        {"value": values, **out, "severity": severity, "flagged": flagged, "adapted": adapted},
        index=data.index,
    )
    return frame.iloc[first:] if since is not None else frame


def _shift(observed: np.ndarray, expected: np.ndarray) -> tuple[str, float]:
    """The level shift a persisting run shows: a ratio for positive series, else a delta."""
    ok = np.isfinite(expected)
    obs, exp = observed[ok], expected[ok]
    if len(obs) == 0:
        return ("ratio", 1.0)
    if (obs >= 0).all() and np.median(exp) > 0:
        return ("ratio", float(np.median(obs) / np.median(exp)))
    return ("delta", float(np.median(obs - exp)))


def _relevel(hist: np.ndarray, pre: np.ndarray, shift: tuple[str, float]) -> np.ndarray:
    """Move the points before a level shift to the level seen after it."""
    out = hist.copy()
    kind, amount = shift
    out[pre] = hist[pre] * amount if kind == "ratio" else hist[pre] + amount
    return out


def judge(series: pd.Series, make: Callable[[], Detector], policy: Policy) -> pd.Series:
    """The newest point, judged as ``replay`` would judge it (the live path)."""
    frame = replay(series, make, policy)
    return frame.iloc[-1]
