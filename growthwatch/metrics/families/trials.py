"""Trials: trial-to-paid conversion per day and month cohort, active trials per day."""

from __future__ import annotations

import pandas as pd

from growthwatch.metrics import trials
from growthwatch.metrics._frame import local_days_before
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
        settings = view.settings
        return local_days_before(earliest, settings.trial_conversion_days, settings.timezone)

    def grid_start(self, previous: pd.Timestamp, settings: MetricsSettings) -> pd.Timestamp:
        # the cohorts whose maturing flag the new day clears (N + 1 days back)
        return local_days_before(previous, settings.trial_conversion_days + 1, settings.timezone)

    def read_start(
        self, start: pd.Timestamp | None, settings: MetricsSettings
    ) -> pd.Timestamp | None:
        # a trial with a long metadata trial_end stays active for any number of days:
        # every trial is read (subscription events are a small share of the ledger)
        return None
