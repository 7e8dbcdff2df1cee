"""What happens right after events reach the ledger: the live series.

The architecture wants a cancellation visible in the series within seconds. Until the
metrics package offers an engine that recomputes touched buckets, this hook does the two
things that need no history: it writes each new event as a raw point (measurement
``growth_events``, see ``growthwatch.stores.event_points``) and recomputes the *per-day*
foundation series (``revenue_daily``, ``signups_daily``, ``cancellations_daily``) of every
touched product/day from the ledger. Both overwrite by point identity, so calling it twice
with the same events changes nothing. Series that need the whole history (active
customers, MRR) are left to the scheduled metrics run. The receiver and the scheduler take
the hook as a plain callable, so switching to the engine is a one-line change in ``serve``.
"""

from __future__ import annotations

import logging
from datetime import timedelta

import pandas as pd

from growthwatch.events import EventType
from growthwatch.metrics.daily import count_daily, revenue_daily
from growthwatch.points import PointBatch
from growthwatch.stores.event_points import event_points
from growthwatch.stores.influx import InfluxStore
from growthwatch.stores.ledger import Ledger
from growthwatch.stores.series import SeriesStore

log = logging.getLogger(__name__)


class LiveSeriesHook:
    def __init__(
        self,
        ledger: Ledger,
        *,
        influx: InfluxStore | None = None,
        series: SeriesStore | None = None,
        raw_events: bool = True,
    ) -> None:
        self.ledger = ledger
        self.influx = influx
        self.series = series
        self.raw_events = raw_events

    def __call__(self, events: pd.DataFrame) -> None:
        if events.empty:
            return
        batches: list[PointBatch] = []
        days = events["ts"].dt.tz_convert("UTC").dt.floor("D")
        for product, day in sorted(set(zip(events["product"], days, strict=True))):
            start = day.to_pydatetime()
            frame = self.ledger.read(products=product, start=start, end=start + timedelta(days=1))
            batches += [
                revenue_daily(frame),
                count_daily(frame, EventType.SIGNUP, "signups_daily"),
                count_daily(frame, EventType.SUBSCRIPTION_CANCELLED, "cancellations_daily"),
            ]
        batches = [b for b in batches if len(b)]
        if self.influx is not None:
            if self.raw_events:
                self.influx.write(event_points(events))
            self.influx.write(batches)
        if self.series is not None:
            self.series.write(batches)
