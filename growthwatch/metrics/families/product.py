"""Product engagement: signups, activations, DAU/WAU/MAU per day."""

from __future__ import annotations

import pandas as pd

from growthwatch.metrics import engagement
from growthwatch.metrics._frame import local_days_before
from growthwatch.metrics.families.base import Family, Frames, LedgerView, Scope
from growthwatch.metrics.settings import MetricsSettings

_WINDOW = pd.Timedelta(days=max(engagement.WINDOWS.values()))


class Product(Family):
    name = "product"
    columns = ("product", "type", "ts", "subject")
    measurements = ("product_daily",)
    ordered = False  # counts of distinct users: order irrelevant
    grid = True

    def types(self, settings: MetricsSettings) -> tuple[str, ...]:
        return engagement.TYPES

    def compute(self, events: pd.DataFrame, scope: Scope) -> Frames:
        daily = engagement.product_daily(events, scope.settings, scope.until, scope.first_days)
        return {"product_daily": daily}

    def touch_start(self, earliest: pd.Timestamp, view: LedgerView) -> pd.Timestamp | None:
        # an activation counts for the signups of the window before it
        settings = view.settings
        return local_days_before(earliest, settings.activation_window_days, settings.timezone)

    def grid_start(self, previous: pd.Timestamp, settings: MetricsSettings) -> pd.Timestamp:
        # the cohorts whose maturing flag the new day clears
        return local_days_before(previous, settings.activation_window_days + 1, settings.timezone)

    def read_start(
        self, start: pd.Timestamp | None, settings: MetricsSettings
    ) -> pd.Timestamp | None:
        return None if start is None else start - _WINDOW  # MAU looks 30 days back

    def first_days(self, view: LedgerView, read_from: pd.Timestamp | None) -> pd.Series | None:
        """product -> its first event with a user: where its day grid starts."""
        return view.first_events(self.types(view.settings), with_subject=True)
