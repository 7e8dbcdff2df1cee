"""Logo retention: of the users who signed up in a month, how many are active N months on.

``compute`` is the pandas definition (``cohorts.logo_retention``: the pure path and the
reference); ``run``, the engine's path, is the same definition as SQL in the ledger."""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar

import pandas as pd

from growthwatch.events import EventType
from growthwatch.metrics import cohorts
from growthwatch.metrics.families.base import Computed, Family, Frames, LedgerView, Scope
from growthwatch.metrics.settings import MetricsSettings
from growthwatch.metrics.sql import state


class Cohorts(Family):
    name = "cohorts"
    columns = ("product", "type", "ts", "subject")
    measurements = ("cohort_retention",)
    ordered = False  # counts of distinct users: order irrelevant
    grid = True
    shrinking = frozenset({"cohort_retention"})  # a late signup moves a user's cohort
    owns: ClassVar[Mapping[str, Mapping[str, str]]] = {"cohort_retention": {"basis": "logo"}}  # the subscriptions family writes "revenue"

    def types(self, settings: MetricsSettings) -> tuple[str, ...]:
        return (EventType.SIGNUP.value, EventType.ACTIVE_USE.value)

    def compute(self, events: pd.DataFrame, scope: Scope) -> Frames:
        return {"cohort_retention": cohorts.logo_retention(events, scope.until, scope.settings.timezone)}

    def read_start(
        self, start: pd.Timestamp | None, settings: MetricsSettings
    ) -> pd.Timestamp | None:
        return None  # each user's first signup is over all history (``run`` reads it in the ledger, in SQL)

    def run(
        self,
        view: LedgerView,
        start: pd.Timestamp | None,
        products: set[str] | None,
        horizon: pd.Timestamp,
    ) -> Computed:
        """As SQL in the ledger, with each user's cohort and active months kept there
        (``growthwatch.metrics.sql.state``): no event frame, whatever the history."""
        frame = state.logo_retention(view, start, horizon)
        return Computed({"cohort_retention": frame}, start)
