"""Revenue: payments, refunds and failed payments per day and per hour."""

from __future__ import annotations

import pandas as pd

from growthwatch.metrics import revenue
from growthwatch.metrics._frame import local_floor_at
from growthwatch.metrics.families.base import Family, Frames, LedgerView, Scope
from growthwatch.metrics.settings import MetricsSettings


class Revenue(Family):
    name = "revenue"
    columns = ("idempotency_key", "product", "type", "ts", "value", "currency")
    measurements = ("revenue_daily", "revenue_hourly")

    def types(self, settings: MetricsSettings) -> tuple[str, ...]:
        return revenue.MONEY_TYPES

    def compute(self, events: pd.DataFrame, scope: Scope) -> Frames:
        fx, tz = scope.settings.fx, scope.settings.timezone
        return {
            "revenue_daily": revenue.revenue(events, fx, "D", tz),
            "revenue_hourly": revenue.revenue(events, fx, "h", tz, scope.first_days, scope.since),
        }

    def touch_start(self, earliest: pd.Timestamp, view: LedgerView) -> pd.Timestamp | None:
        """The new events' day, or the day of the last money before them: the hours in
        between become zero rows."""
        tz = view.settings.timezone
        start = local_floor_at(earliest, "D", tz)
        restart = view.previous_last_by_currency(revenue.MONEY_TYPES)
        return start if restart is None else min(start, local_floor_at(restart, "D", tz))

    def first_days(self, view: LedgerView, read_from: pd.Timestamp | None) -> pd.Series | None:
        """(product, currency) -> first money event: where its hourly grid starts."""
        if read_from is None:
            return None
        return view.first_events(revenue.MONEY_TYPES, ("product", "currency"))
