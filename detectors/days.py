"""Days in the reporting time zone (``reporting.timezone``), as nanosecond instants.

The metrics engine buckets days in the reporting zone, so the detector's running day,
its baseline days and "the share of a normal day that has passed" must use the same
midnights: in Europe/Berlin a day starts at 23:00 UTC in winter, 22:00 UTC in summer,
and the DST days last 23 and 25 hours. Positions within a day are the elapsed fraction
of that day's own length, in minutes of a 1440-minute day (monotonic, and exactly 1440
at the close, also on a DST day). UTC is plain arithmetic; other zones go through
pandas' zone database.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

DAY = 86_400 * 10**9


def _index(ns: np.ndarray | int) -> pd.DatetimeIndex:
    return pd.DatetimeIndex(np.atleast_1d(np.asarray(ns, dtype="int64")).astype("datetime64[ns]"),
                            tz="UTC")  # fmt: skip


def _ns(index: pd.DatetimeIndex) -> np.ndarray:
    return np.asarray(index.as_unit("ns").asi8, dtype="int64")


@dataclass(frozen=True)
class Days:
    tz: str = "UTC"

    @property
    def utc(self) -> bool:
        return self.tz in ("UTC", "Etc/UTC", "UTC0", "GMT")

    def starts_of(self, ns: np.ndarray) -> np.ndarray:
        """The local midnight at or before each instant."""
        ns = np.asarray(ns, dtype="int64")
        if self.utc:
            return ns - ns % DAY
        return _ns(_index(ns).tz_convert(self.tz).normalize())

    def start_of(self, ns: int) -> int:
        return int(self.starts_of(np.array([ns]))[0])

    def judged(self, nows: np.ndarray) -> np.ndarray:
        """The day a judgement at each ``now`` is about (midnight closes the day before)."""
        return self.starts_of(np.asarray(nows, dtype="int64") - 1)

    def previous(self, day_start: int, k: int) -> np.ndarray:
        """The ``k`` day starts before ``day_start``, oldest first."""
        if self.utc:
            return day_start - DAY * np.arange(k, 0, -1, dtype="int64")
        local = _index(day_start).tz_convert(self.tz)[0].tz_localize(None)
        naive = pd.date_range(end=local, periods=k + 1, freq="D")[:-1]
        return _ns(naive.tz_localize(self.tz, ambiguous=True, nonexistent="shift_forward"))

    def next(self, day_start: int) -> int:
        if self.utc:
            return day_start + DAY
        local = _index(day_start).tz_convert(self.tz)[0].tz_localize(None)
        stamp = pd.Timestamp(local + pd.Timedelta(days=1)).tz_localize(
            self.tz, ambiguous=True, nonexistent="shift_forward")
        return int(stamp.as_unit("ns").value)

    def length(self, day_start: int) -> int:
        return self.next(day_start) - day_start

    def minute_of_day(self, ns: np.ndarray, day_start: int) -> np.ndarray:
        """Minutes into the day that starts at ``day_start`` (its length scaled to 1440)."""
        return (np.asarray(ns, dtype="int64") - day_start) * (1440.0 / self.length(day_start))
