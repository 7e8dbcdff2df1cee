"""Revenue: payments, refunds and failed payments per day and per hour.

``compute`` is the pandas definition (``revenue.revenue``: the pure path and the
reference); ``run``, the engine's path, sums the money events in the ledger's DuckDB
(``growthwatch.metrics.sql.revenue_counts``) and finishes with the same
``revenue.from_sums``: no event frame, one piece."""

from __future__ import annotations

import pandas as pd

from growthwatch.metrics import revenue
from growthwatch.metrics._frame import local_floor_at
from growthwatch.metrics.families.base import Computed, Family, Frames, LedgerView, Scope
from growthwatch.metrics.settings import MetricsSettings
from growthwatch.metrics.sql import revenue_counts


class Revenue(Family):
    name = "revenue"
    columns = ("idempotency_key", "product", "type", "ts", "value", "currency")
    measurements = ("revenue_daily", "revenue_hourly")

    def types(self, settings: MetricsSettings) -> tuple[str, ...]:
        return revenue.MONEY_TYPES

    def held(self, settings: MetricsSettings) -> tuple[str, ...]:
        return ()  # summed in SQL: the engine runs it in one piece

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

    def run(
        self,
        view: LedgerView,
        start: pd.Timestamp | None,
        products: set[str] | None,
        horizon: pd.Timestamp,
    ) -> Computed:
        """The sums from ``start`` in SQL (every product: the portfolio rows need them
        all), the frames from them as ``compute`` makes them."""
        settings = view.settings
        fx, tz = settings.fx, settings.timezone
        read_from = self.read_start(start, settings)
        first = self.first_days(view, read_from)
        daily = revenue_counts.revenue_sums(view, read_from, "D")
        hourly = revenue_counts.revenue_sums(view, read_from, "h")
        return Computed({
            "revenue_daily": revenue.from_sums(daily, fx, "D", tz),
            "revenue_hourly": revenue.from_sums(hourly, fx, "h", tz, first, read_from),
        }, start, {"revenue_events": int(daily["payments"].sum() + daily["refund_count"].sum()
                                          + daily["failed_count"].sum())})  # fmt: skip
