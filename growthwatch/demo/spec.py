"""What to generate (``DemoSpec``) and the random streams every part draws from.

Reproducibility is the point of the demo: the same spec must give byte-identical data on
any day and any machine (with the same numpy version: numpy does not promise identical
streams across releases for every distribution). So the range has a fixed default end, and every random draw comes
from a numpy ``Generator`` seeded by the spec's seed plus a tuple of stable integers naming
what it is for (stream, product index, day, customer number), never from Python's
``hash()`` (salted per process) or from the order in which chunks are requested.
"""

from __future__ import annotations

import calendar
from dataclasses import dataclass
from datetime import date, timedelta
from enum import IntEnum

import numpy as np

DAY_S = 86_400
_EPOCH_ORDINAL = date(1970, 1, 1).toordinal()
HOUR_S = 3_600


@dataclass(frozen=True)
class DemoSpec:
    """A demo portfolio: how many products, which dates, how many events, which seed."""

    seed: int = 42
    products: int = 12
    end: date = date(2026, 11, 1)  # exclusive; fixed so that a run is reproducible any day
    months: int = 18  # start = end minus this many months
    events_per_day: int = 3_000  # portfolio-wide mean volume (the demo stays under a minute)
    days: int | None = None  # if given, overrides months

    def __post_init__(self) -> None:
        if self.products < 1:
            raise ValueError(f"products must be >= 1, not {self.products}")
        if self.events_per_day < 1:
            raise ValueError(f"events_per_day must be >= 1, not {self.events_per_day}")
        if self.days is None and self.months < 1:
            raise ValueError(f"months must be >= 1, not {self.months}")
        if self.days is not None and self.days < 1:
            raise ValueError(f"days must be >= 1, not {self.days}")

    @property
    def start(self) -> date:
        """First day generated (inclusive): ``end`` minus ``days`` or minus ``months``."""
        if self.days is not None:
            return self.end - timedelta(days=self.days)
        return add_months(self.end, -self.months)

    @property
    def n_days(self) -> int:
        return (self.end - self.start).days

    @property
    def start_s(self) -> int:
        """The start as UNIX seconds (UTC midnight), the time unit used inside the demo."""
        return day_seconds(self.start)

    @property
    def end_s(self) -> int:
        return day_seconds(self.end)


class Stream(IntEnum):
    """Names of the independent random streams (their values are part of the output)."""

    PROFILE = 1
    BULK = 2
    ACQUISITION = 3
    CUSTOMER = 4
    INCIDENTS = 5
    ACTIVATION = 6
    CATALOG = 7


def rng(seed: int, stream: Stream, *keys: int) -> np.random.Generator:
    """A generator for one purpose, independent of every other (SeedSequence entropy)."""
    return np.random.default_rng([seed % 2**63, int(stream), *keys])


def add_months(day: date, months: int) -> date:
    """Calendar month arithmetic, clamping the day (Jan 31 + 1 month = Feb 28/29)."""
    year, month0 = divmod(day.month - 1 + months, 12)
    year += day.year
    last = calendar.monthrange(year, month0 + 1)[1]
    return date(year, month0 + 1, min(day.day, last))


def day_seconds(day: date) -> int:
    """UTC midnight of ``day`` as UNIX seconds."""
    return (day.toordinal() - _EPOCH_ORDINAL) * DAY_S


def add_months_s(anchor_s: int, months: int) -> int:
    """``anchor_s`` (UNIX seconds) plus calendar months, keeping the time of day.

    Plain integer and ordinal arithmetic: this runs once per billing period of every
    simulated subscription, where timezone-aware datetimes would dominate the cost.
    """
    days, seconds = divmod(anchor_s, DAY_S)
    moved = add_months(date.fromordinal(_EPOCH_ORDINAL + days), months)
    return (moved.toordinal() - _EPOCH_ORDINAL) * DAY_S + seconds
