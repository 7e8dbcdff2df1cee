"""User lifecycle per day and ISO week: new, returning, resurrected, dormant users."""

from __future__ import annotations

import pandas as pd

from growthwatch.metrics import lifecycle
from growthwatch.metrics.families.base import Family, Frames, LedgerView, Scope
from growthwatch.metrics.schema import bucket_floor
from growthwatch.metrics.settings import MetricsSettings

# one period before the earliest rewritten bucket (a week, from the week's Monday)
_BACK = pd.Timedelta(days=14)


class Lifecycle(Family):
    name = "lifecycle"
    columns = ("product", "type", "ts", "subject")
    measurements = ("lifecycle_daily", "lifecycle_weekly")
    ordered = False  # distinct users per period: order irrelevant
    grid = True  # every new day (and week) has its row, dormant users included

    def types(self, settings: MetricsSettings) -> tuple[str, ...]:
        return lifecycle.TYPES

    def compute(self, events: pd.DataFrame, scope: Scope) -> Frames:
        firsts = None
        if scope.first_days is not None:
            firsts = scope.first_days.rename("first").reset_index()
        s, until = scope.settings, scope.until
        return {
            "lifecycle_daily": lifecycle.lifecycle(events, s, "day", until, firsts),
            "lifecycle_weekly": lifecycle.lifecycle(events, s, "week", until, firsts),
        }

    def touch_start(self, earliest: pd.Timestamp, view: LedgerView) -> pd.Timestamp | None:
        # its day and week, and every later period: an activity before a user's known
        # first one turns their old "new" period into a resurrected or returning one
        return bucket_floor("lifecycle_weekly", earliest, view.settings.timezone)

    def read_start(
        self, start: pd.Timestamp | None, settings: MetricsSettings
    ) -> pd.Timestamp | None:
        if start is None:
            return None
        return bucket_floor("lifecycle_weekly", start, settings.timezone) - _BACK

    def first_days(self, view: LedgerView, read_from: pd.Timestamp | None) -> pd.Series | None:
        """(product, subject) -> the user's first activity in the whole ledger: whether an
        activity is someone's first ever, without reading all their history."""
        if read_from is None:
            return None
        return view.first_events(self.types(view.settings), ("product", "subject"),
                                 with_subject=True)
