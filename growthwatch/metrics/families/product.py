"""Product engagement: signups, activations, DAU/WAU/MAU per day.

The active users (three quarters of all events) are counted in the ledger's DuckDB from
the persisted active-user rollup (``growthwatch.metrics.sql.activity``: distinct user-days,
folded in by ``seq``), and the signups and activations there too
(``growthwatch.metrics.sql.signup_counts``: one row per product and day): a run holds no
event frame, and an update reads the rollup's days and the signups from 30 days before
its rewrite, not the history.
"""

from __future__ import annotations

import pandas as pd

from growthwatch.frames import empty_frame
from growthwatch.metrics import engagement
from growthwatch.metrics._frame import local_days_before
from growthwatch.metrics.families.base import Computed, Family, Frames, LedgerView, Scope
from growthwatch.metrics.settings import MetricsSettings
from growthwatch.metrics.sql import activity, signup_counts

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
        """product -> its first event with a user: where its day grid starts (kept in the
        rollup, ``activity.sync`` first: no aggregate over the history)."""
        grids = activity.products(view, grid=True)
        return pd.Series(grids["first"].array, index=pd.Index(grids["product"], dtype=object))

    def held(self, settings: MetricsSettings) -> tuple[str, ...]:
        return ()  # all of it is counted in SQL: the engine runs it in one piece

    def run(
        self,
        view: LedgerView,
        start: pd.Timestamp | None,
        products: set[str] | None,
        horizon: pd.Timestamp,
    ) -> Computed:
        """``compute``'s numbers, with the active users' edges from the rollup and the
        signups' and activations' counts from SQL (``sql.signup_counts``): no event
        frame."""
        settings = view.settings
        read_from = self.read_start(start, settings)
        activity.sync(view)
        first = self.first_days(view, read_from)
        edges = activity.rolling_edges(view, read_from)
        counts = signup_counts.signup_counts(view, read_from)
        daily = engagement.product_daily(empty_frame(), settings, horizon, first, edges, counts)
        return Computed({"product_daily": daily}, start)
