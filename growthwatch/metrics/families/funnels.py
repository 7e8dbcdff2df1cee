"""Funnels: of the users who entered in a month, how many reached each step, and where
the others went."""

from __future__ import annotations

import pandas as pd

from growthwatch.events import EventType
from growthwatch.metrics import funnels
from growthwatch.metrics._frame import LEDGER_ORDER, local_days_before
from growthwatch.metrics.families.base import Family, Frames, LedgerView, Scope
from growthwatch.metrics.schema import bucket_floor
from growthwatch.metrics.settings import MetricsSettings

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
        return None  # a user's first entry is over all history; ``read`` narrows it

    def read(
        self, view: LedgerView, start: pd.Timestamp | None, read_from: pd.Timestamp | None
    ) -> pd.DataFrame:
        entry = {f.steps[0] for f in view.settings.funnels}
        if start is None or not entry <= _KNOWN:
            return super().read(view, start, read_from)
        # Rows are per entry month, and an event can only move users who entered before
        # it. So the months from ``start`` on need every event from their first day, and
        # before it only the entry steps of users who have one since (is their entry
        # really in those months?).
        month = bucket_floor("funnel_steps", start, view.settings.timezone)
        both = pd.concat(
            [view.events(sorted(entry), end=month, columns=self.columns, seen_from=month),
             view.events(self.types(view.settings), start=month, columns=self.columns)],
            ignore_index=True,
        )
        both.attrs[LEDGER_ORDER] = True  # [.., month) then [month, ..): still ordered
        return both
