"""Traffic: sessions, users and signups per acquisition channel and day.

``compute`` is the pandas definition (``traffic.traffic_daily``: the pure path and the
reference); ``run``, the engine's path, is the same definition as SQL in the ledger
(``growthwatch.metrics.sql.traffic_counts``): no event frame, one piece."""

from __future__ import annotations

import pandas as pd

from growthwatch.metrics import traffic
from growthwatch.metrics._frame import local_floor_at
from growthwatch.metrics.families.base import Computed, Family, Frames, LedgerView, Scope
from growthwatch.metrics.settings import MetricsSettings
from growthwatch.metrics.sql import traffic_counts

_LOOKBACK = pd.Timedelta(minutes=traffic.SESSION_MINUTES)


class Traffic(Family):
    name = "traffic"
    columns = ("idempotency_key", "product", "type", "ts", "value", "subject", "channel")
    measurements = ("traffic_daily",)
    shrinking = frozenset({"traffic_daily"})  # a late session re-attributes a signup

    def types(self, settings: MetricsSettings) -> tuple[str, ...]:
        return traffic.TYPES

    def held(self, settings: MetricsSettings) -> tuple[str, ...]:
        return ()  # counted in SQL: the engine runs it in one piece

    def compute(self, events: pd.DataFrame, scope: Scope) -> Frames:
        return {"traffic_daily": traffic.traffic_daily(events, scope.settings.timezone)}

    def touch_start(self, earliest: pd.Timestamp, view: LedgerView) -> pd.Timestamp | None:
        # a signup's session may have begun before its day
        return local_floor_at(earliest - _LOOKBACK, "D", view.settings.timezone)

    def read_start(
        self, start: pd.Timestamp | None, settings: MetricsSettings
    ) -> pd.Timestamp | None:
        # the sessions of the first signups of ``start``'s day
        return None if start is None else start - _LOOKBACK

    def run(
        self,
        view: LedgerView,
        start: pd.Timestamp | None,
        products: set[str] | None,
        horizon: pd.Timestamp,
    ) -> Computed:
        """As SQL in the ledger from ``read_start(start)``: every product (the portfolio
        rows need them all), the rows before ``start`` dropped by the engine.
        ``traffic_events`` counts the events the query read."""
        frame, read = traffic_counts.traffic_daily(view, self.read_start(start, view.settings))
        return Computed({"traffic_daily": frame}, start, {"traffic_events": read})
