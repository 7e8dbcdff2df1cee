"""Logo retention: of the users who signed up in a month, how many are active N months on."""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar

import pandas as pd

from growthwatch.events import EventType
from growthwatch.metrics import cohorts
from growthwatch.metrics._frame import LEDGER_ORDER, LEDGER_UNIQUE
from growthwatch.metrics.families.base import Family, Frames, LedgerView, Scope
from growthwatch.metrics.schema import bucket_floor
from growthwatch.metrics.settings import MetricsSettings


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
        return None  # every cohort's signups; ``read`` narrows the active use

    def read(
        self, view: LedgerView, start: pd.Timestamp | None, read_from: pd.Timestamp | None
    ) -> pd.DataFrame:
        """Every signup (cohort membership), active use only of the months rewritten."""
        if start is None:
            return super().read(view, start, read_from)
        month = bucket_floor("cohort_retention", start, view.settings.timezone)
        both = pd.concat(
            [view.events([EventType.SIGNUP.value], columns=self.columns, ordered=False),
             view.events([EventType.ACTIVE_USE.value], start=month, columns=self.columns,
                         ordered=False)],
            ignore_index=True,
        )  # fmt: skip
        both.attrs.pop(LEDGER_ORDER, None)  # two reads of distinct types: unique, but
        both.attrs[LEDGER_UNIQUE] = True  # not in one (ts, key) order
        return both
