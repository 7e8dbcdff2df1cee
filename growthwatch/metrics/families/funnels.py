"""Funnels: of the users who entered in a month, how many reached each step, and where
the others went."""

from __future__ import annotations

import pandas as pd

from growthwatch.events import EventType
from growthwatch.metrics import funnels
from growthwatch.metrics._frame import local_days_before
from growthwatch.metrics.families.base import Computed, Family, Frames, LedgerView, Scope
from growthwatch.metrics.settings import MetricsSettings
from growthwatch.metrics.sql import state

_KNOWN = frozenset(t.value for t in EventType)


class Funnels(Family):
    name = "funnels"
    columns = ("idempotency_key", "product", "type", "ts", "subject", "kind")
    measurements = ("funnel_steps", "funnel_branches")
    # a late entry moves a user to an earlier entry month
    shrinking = frozenset({"funnel_steps", "funnel_branches"})

    def types(self, settings: MetricsSettings) -> tuple[str, ...]:
        named = tuple(dict.fromkeys(
            t for f in settings.funnels for t in funnels.funnel_types(f, settings)))  # fmt: skip
        # event kinds as funnel steps need every type; else just the named types
        return named if set(named) <= _KNOWN else tuple(sorted(_KNOWN))

    def compute(self, events: pd.DataFrame, scope: Scope) -> Frames:
        steps, branches = funnels.funnels(events, scope.settings)
        return {"funnel_steps": steps, "funnel_branches": branches}

    def touch_start(self, earliest: pd.Timestamp, view: LedgerView) -> pd.Timestamp | None:
        # an event completes the funnels entered up to a window before it
        settings = view.settings
        window = max([f.window_days for f in settings.funnels] or [0])
        return local_days_before(earliest, window, settings.timezone)

    def read_start(
        self, start: pd.Timestamp | None, settings: MetricsSettings
    ) -> pd.Timestamp | None:
        return None  # each user's first entry is over all history (``run`` reads it in the ledger, in SQL)

    def run(
        self,
        view: LedgerView,
        start: pd.Timestamp | None,
        products: set[str] | None,
        horizon: pd.Timestamp,
    ) -> Computed:
        """As SQL in the ledger, with each user's entry, step and next type kept there
        (``growthwatch.metrics.sql.state``): no event frame, whatever the history."""
        if start is None:
            steps, branches = state.funnel_frames(view, start)
        else:  # an update: the events may have moved no user (a cancellation in no funnel)
            got = state.changed_funnel_frames(view, start)
            if got is None:
                return Computed({}, start, unchanged=True)
            steps, branches = got
        return Computed({"funnel_steps": steps, "funnel_branches": branches}, start)
