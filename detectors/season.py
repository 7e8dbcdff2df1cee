"""Which points of a history are "the same time" as a point under test (seasonal keys).

Daily data compare a day with the same weekday; hourly and finer data with the same hour
of the week when there are three weeks of history, the same hour of the day with three
days, and with everything otherwise. Pure functions over numpy datetimes.
"""

from __future__ import annotations

import numpy as np

DAY_NS = 86_400 * 10**9
HOUR_NS = 3_600 * 10**9
WEEK_NS = 7 * DAY_NS


def step_ns(times: np.ndarray) -> float:
    """The typical sampling step (median gap), in nanoseconds; a day for a single point."""
    if len(times) < 2:
        return float(DAY_NS)
    return float(np.median(np.diff(times.astype("int64"))))


def season_kind(times: np.ndarray) -> str:
    """``weekday``, ``hour_of_week``, ``hour_of_day`` or ``none`` for this history."""
    if len(times) < 2:
        return "none"
    span = int(times[-1].astype("int64") - times[0].astype("int64"))
    if step_ns(times) >= 20 * HOUR_NS:
        return "weekday" if span >= 2 * WEEK_NS else "none"
    if span >= 3 * WEEK_NS:
        return "hour_of_week"
    if span >= 3 * DAY_NS:
        return "hour_of_day"
    return "none"


def season_keys(times: np.ndarray, kind: str) -> np.ndarray:
    ns = times.astype("int64")
    days = ns // DAY_NS
    weekday = (days + 3) % 7  # 1970-01-01 was a Thursday: Monday = 0
    hour = (ns % DAY_NS) // HOUR_NS
    if kind == "weekday":
        return weekday
    if kind == "hour_of_week":
        return weekday * 24 + hour
    if kind == "hour_of_day":
        return hour
    return np.zeros(len(ns), dtype="int64")
