"""Days in ``reporting.timezone``: Europe/Berlin, across the spring DST change.

2026-03-29 is the day Berlin moves from UTC+1 to UTC+2: it starts at 2026-03-28 23:00 UTC
and ends at 2026-03-29 22:00 UTC (23 hours).
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from detectors.days import Days
from detectors.evaluate import series_findings
from detectors.intraday import IntradaySettings, day_model, intraday_at
from detectors.settings import DetectorSettings
from growthwatch import Point, PointBatch, SeriesStore

BERLIN = Days("Europe/Berlin")
HOUR = 3600 * 10**9


def ns(text: str) -> int:
    return int(pd.Timestamp(text).value)


def test_berlin_days_start_at_local_midnight_and_the_dst_day_lasts_23_hours() -> None:
    dst = ns("2026-03-28T23:00Z")
    assert BERLIN.start_of(ns("2026-03-29T12:00Z")) == dst
    assert BERLIN.start_of(ns("2026-03-28T22:59Z")) == ns("2026-03-27T23:00Z")
    assert BERLIN.next(dst) == ns("2026-03-29T22:00Z")
    assert BERLIN.length(dst) == 23 * HOUR
    assert list(BERLIN.previous(ns("2026-03-30T22:00Z"), 3)) == [
        ns("2026-03-27T23:00Z"), dst, ns("2026-03-29T22:00Z")]  # fmt: skip
    # the close of the day is minute 1440, half of its 23 hours minute 720
    assert BERLIN.minute_of_day(np.array([BERLIN.next(dst), dst + 23 * HOUR // 2]), dst).tolist() == [1440.0, 720.0]
    assert BERLIN.judged(np.array([BERLIN.next(dst)]))[0] == dst  # midnight closes the day
    assert Days().start_of(ns("2026-03-29T12:00Z")) == ns("2026-03-29T00:00Z")


def test_the_intraday_day_is_the_local_day() -> None:
    # 3 cancellations a local day at 09:00, 13:00 and 17:00 Berlin time for 30 days; on the
    # DST day a burst of 12 between 00:10 and 01:00 local (23:10-00:00 UTC the day before)
    rng = np.random.default_rng(1)
    days = pd.date_range("2026-02-27", "2026-03-28", freq="D", tz="Europe/Berlin")
    ts = [int((d + pd.Timedelta(hours=h, minutes=int(rng.integers(0, 50)))).value)
          for d in days for h in (9, 13, 17)]  # fmt: skip
    dst = ns("2026-03-28T23:00Z")
    burst = [dst + (10 + 4 * i) * 60 * 10**9 for i in range(12)]
    events = np.sort(np.array(ts + burst, dtype="int64"))
    now = dst + 2 * HOUR  # 01:00 UTC = 03:00 CEST (02:00-03:00 local does not exist)
    berlin = IntradaySettings(timezone="Europe/Berlin")
    model = day_model(events, BERLIN.judged(np.array([now]))[0], berlin)
    assert model is not None and model.day_start == dst and model.end - dst == 23 * HOUR
    assert model.mu == pytest.approx(3.0, rel=0.05)  # a normal day is three
    result = intraday_at(events, now, model, berlin)
    assert result.observed == 12 and result.score >= berlin.warning
    # the same events on UTC days: the burst belongs to the 28th (UTC), and at 01:00 UTC
    # the running UTC day has seen nothing
    utc = IntradaySettings()
    utc_model = day_model(events, ns("2026-03-29T00:00Z"), utc)
    assert utc_model is not None
    at_utc = intraday_at(events, now, utc_model, utc)
    assert at_utc.observed == 0 and at_utc.score < utc.warning
    # the local days' profile puts the normal day's events at 09, 13 and 17 local: at
    # 12:00 local on an ordinary day one of three is expected
    ordinary = day_model(events, ns("2026-03-20T23:00Z"), berlin)
    assert ordinary is not None
    noon = intraday_at(events, ns("2026-03-21T11:00Z"), ordinary, berlin)
    assert noon.expected == pytest.approx(ordinary.mu / 3, rel=0.15)


def test_daily_series_in_berlin_are_judged_at_each_local_midnight(tmp_path: Path) -> None:
    store = SeriesStore(tmp_path / "series.duckdb")
    local = pd.date_range("2026-02-01", "2026-04-05", freq="D", tz="Europe/Berlin")
    rng = np.random.default_rng(2)
    store.write(PointBatch.from_points([
        Point("revenue_daily", {"product": "acme", "currency": "EUR"},
              {"net_rc": float(1000 + rng.normal(0, 30))}, d.tz_convert("UTC").to_pydatetime())
        for d in local]))  # fmt: skip
    settings = DetectorSettings.from_section({"metrics": ["revenue_daily.net_rc"]})
    settings = replace(settings, timezone="Europe/Berlin")
    since = datetime(2026, 3, 25, tzinfo=UTC)
    found = series_findings(store, settings.metrics[0], settings, "acme", since=since,
                            until=datetime(2026, 4, 3, tzinfo=UTC))  # fmt: skip
    store.close()
    closes = [f.time for f in found]
    # every local day that closed in the range, judged at its own midnight; no zero-filled
    # phantom day at 23:00 UTC after the change (it would be a 1000 -> 0 "outage")
    expected = [d.tz_convert("UTC").to_pydatetime() for d in local
                if since - timedelta(days=1) < d.tz_convert("UTC").to_pydatetime() <= datetime(2026, 4, 3, tzinfo=UTC)]  # fmt: skip
    assert closes[-5:] == expected[-5:]
    assert all(f.observed > 800 for f in found) and not any(f.severity for f in found)
    assert closes == sorted(set(closes))
