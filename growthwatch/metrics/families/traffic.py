"""Traffic: sessions, users and signups per acquisition channel and day."""

from __future__ import annotations

import pandas as pd

from growthwatch.metrics import traffic
from growthwatch.metrics._frame import local_floor_at
from growthwatch.metrics.families.base import Family, Frames, LedgerView, Scope
from growthwatch.metrics.settings import MetricsSettings

_LOOKBACK = pd.Timedelta(minutes=traffic.SESSION_MINUTES)


class Traffic(Family):
    name = "traffic"
    columns = ("idempotency_key", "product", "type", "ts", "value", "subject", "channel")
    measurements = ("traffic_daily",)
    shrinking = frozenset({"traffic_daily"})  # a late session re-attributes a signup

    def types(self, settings: MetricsSettings) -> tuple[str, ...]:
        return traffic.TYPES

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
