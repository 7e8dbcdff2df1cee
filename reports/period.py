"""The report's month in the reporting timezone, and how a stored point falls into it.

A board month is a calendar month of the reporting timezone (``reporting.timezone``):
October in Europe/Berlin starts at 2026-09-30T22:00Z. Series points carry a UTC time; a
daily or monthly point is stamped at the start of its bucket, which is midnight of the
bucket's first day in whichever zone the metrics engine used to cut the buckets (UTC
today). ``local_day`` maps a point to the day it stands for in either convention: the
calendar date, in the reporting zone, of the point's time plus 12 hours (a bucket start
is never more than 12 hours away from local midnight, whichever of the two zones cut it).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import pandas as pd

_MONTH = re.compile(r"^(\d{4})-(\d{2})$")


class PeriodError(ValueError):
    """A month or timezone that cannot be reported on (the message says which and why)."""


@dataclass(frozen=True, order=True)
class Month:
    year: int
    month: int

    @classmethod
    def parse(cls, text: str) -> Month:
        """``YYYY-MM`` (e.g. ``2026-10``); anything else is a ``PeriodError`` naming it."""
        match = _MONTH.match(text.strip())
        if not match or not 1 <= int(match.group(2)) <= 12:
            raise PeriodError(f"month {text!r}: expected YYYY-MM with a month 01-12, e.g. 2026-10")
        return cls(int(match.group(1)), int(match.group(2)))

    @classmethod
    def of(cls, day: date) -> Month:
        return cls(day.year, day.month)

    def shift(self, months: int) -> Month:
        index = self.year * 12 + self.month - 1 + months
        return Month(index // 12, index % 12 + 1)

    @property
    def first_day(self) -> date:
        return date(self.year, self.month, 1)

    @property
    def last_day(self) -> date:
        return self.shift(1).first_day - timedelta(days=1)

    @property
    def days(self) -> int:
        return self.last_day.day

    @property
    def label(self) -> str:
        """``October 2026``"""
        return self.first_day.strftime("%B %Y")

    @property
    def short(self) -> str:
        """``Oct 26``, for chart axes."""
        return self.first_day.strftime("%b %y")

    def __str__(self) -> str:
        return f"{self.year:04d}-{self.month:02d}"


def zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise PeriodError(f"reporting timezone {name!r} is not an IANA zone name") from exc


def bounds(month: Month, tz: ZoneInfo) -> tuple[datetime, datetime]:
    """The month as a UTC interval [start, end) of the reporting timezone's calendar."""
    start = datetime.combine(month.first_day, time(0), tz).astimezone(UTC)
    end = datetime.combine(month.shift(1).first_day, time(0), tz).astimezone(UTC)
    return start, end


def read_window(first: Month, last: Month, tz: ZoneInfo) -> tuple[datetime, datetime]:
    """A UTC interval sure to hold every bucket of months ``first``..``last`` whichever
    zone cut the buckets (a day of margin each side; callers filter with ``local_day``)."""
    start, _ = bounds(first, tz)
    _, end = bounds(last, tz)
    return start - timedelta(days=1), end + timedelta(days=1)


def local_day(times: pd.Series, tz: ZoneInfo) -> pd.Series:
    """The reporting-zone calendar day each bucket-start time stands for (see module doc)."""
    shifted = pd.to_datetime(times, utc=True) + pd.Timedelta(hours=12)
    return shifted.dt.tz_convert(tz).dt.tz_localize(None).dt.normalize()


def local_month(times: pd.Series, tz: ZoneInfo) -> pd.Series:
    """``Month.year * 12 + month - 1`` of each bucket start (an integer, for grouping)."""
    days = local_day(times, tz)
    return days.dt.year * 12 + days.dt.month - 1


def month_index(month: Month) -> int:
    return month.year * 12 + month.month - 1


def from_index(index: int) -> Month:
    return Month(index // 12, index % 12 + 1)


def last_complete_month(now: datetime, tz: ZoneInfo) -> Month:
    """The latest month that has ended by ``now`` in the reporting timezone."""
    local = now.astimezone(tz)
    return Month(local.year, local.month).shift(-1)
