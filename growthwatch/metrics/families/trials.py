"""Trials: trial-to-paid conversion per day and month cohort, active trials per day."""

from __future__ import annotations

import pandas as pd

from growthwatch.metrics import trials
from growthwatch.metrics._frame import local_floor_at
from growthwatch.metrics.families.base import Family, Frames, LedgerView, Scope
from growthwatch.metrics.settings import MetricsSettings


class Trials(Family):
    name = "trials"
    # the key de-duplicates, mrr_after tells a paid period, metadata holds the
    # subscription id and the trial's end
    columns = ("idempotency_key", "product", "type", "ts", "subject", "mrr_after", "metadata")
    measurements = ("trials_daily", "trials_monthly")
    ordered = False  # per-trial matching by time, not the ledger's order
    grid = True  # active trials and maturing flags run to the horizon

    def types(self, settings: MetricsSettings) -> tuple[str, ...]:
        return trials.TYPES

    def compute(self, events: pd.DataFrame, scope: Scope) -> Frames:
        s, until = scope.settings, scope.until
        return {
            "trials_daily": trials.trials_daily(events, s, until, scope.first_days),
            "trials_monthly": trials.trials_monthly(events, s, until, scope.first_days),
        }

    def touch_start(self, earliest: pd.Timestamp, view: LedgerView) -> pd.Timestamp | None:
        # a conversion or cancellation counts for the trials started up to N days before it
        tz = view.settings.timezone
        back = pd.Timedelta(days=view.settings.trial_conversion_days)
        return local_floor_at(local_floor_at(earliest, "D", tz) - back, "D", tz)

    def grid_start(self, previous: pd.Timestamp, settings: MetricsSettings) -> pd.Timestamp:
        # the cohorts whose maturing flag the new day clears (N + 1 days back)
        tz = settings.timezone
        back = pd.Timedelta(days=settings.trial_conversion_days + 1)
        return local_floor_at(local_floor_at(previous, "D", tz) - back, "D", tz)

    def read_start(
        self, start: pd.Timestamp | None, settings: MetricsSettings
    ) -> pd.Timestamp | None:
        # a trial with a long metadata trial_end stays active for any number of days:
        # every trial is read (subscription events are a small share of the ledger)
        return None
