"""User lifecycle per day and ISO week: new, returning, resurrected, dormant users.

Counted in the ledger's DuckDB over the persisted active-user rollup
(``growthwatch.metrics.sql.activity``: distinct user-days, each with the user's previous
active day): the active_use volume never becomes a frame, a run holds one row per product and
period, and an update reads the rollup's days from one period before its rewrite.
"""

from __future__ import annotations

import pandas as pd

from growthwatch.metrics import lifecycle
from growthwatch.metrics._frame import TIME_DTYPE, local_day_numbers
from growthwatch.metrics.families.base import Computed, Family, Frames, LedgerView, Scope
from growthwatch.metrics.schema import bucket_floor
from growthwatch.metrics.settings import MetricsSettings
from growthwatch.metrics.sql import activity

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

    def held(self, settings: MetricsSettings) -> tuple[str, ...]:
        return ()  # all of it is counted in SQL

    def run(
        self,
        view: LedgerView,
        start: pd.Timestamp | None,
        products: set[str] | None,
        horizon: pd.Timestamp,
    ) -> Computed:
        """``compute``'s numbers from the rollup's counts (the pure path counts in pandas)."""
        settings = view.settings
        read_from = self.read_start(start, settings)
        activity.sync(view)
        firsts = activity.products(view)
        tz = settings.timezone
        day = local_day_numbers(firsts["first"].astype(TIME_DTYPE), tz)
        frames: Frames = {}
        for period, measurement in (("day", "lifecycle_daily"), ("week", "lifecycle_weekly")):
            counts = activity.lifecycle_counts(view, period, read_from)
            known = pd.Series(lifecycle.period_numbers(day, period),
                              index=pd.Index(firsts["product"], dtype=object))
            frames[measurement] = lifecycle.from_counts(counts, known, settings, period, horizon)
        return Computed(frames, start)
