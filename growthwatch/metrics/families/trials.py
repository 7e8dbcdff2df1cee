"""Trials: trial-to-paid conversion per day and month cohort, active trials per day.

Keeps per-product day totals (``growthwatch.metrics.trial_totals``) between runs: an update
recomputes the trials of the customers whose events arrived only (before out, after in).
``compute`` (the frames of ``growthwatch.metrics.trials`` over the whole history) is the
reference the tests compare with."""

from __future__ import annotations

import pandas as pd

from growthwatch.events import EventType
from growthwatch.metrics import customer_events, trials
from growthwatch.metrics._frame import local_days_before
from growthwatch.metrics.families.base import Computed, Family, Frames, LedgerView, Scope
from growthwatch.metrics.family_state import Kept
from growthwatch.metrics.settings import MetricsSettings
from growthwatch.metrics.touched import (
    max_seq,
    product_counts,
    product_groups,
    read_upto,
    touched,
)
from growthwatch.metrics.trial_totals import TrialTotals, trial_frames_from

# the trial maths holds about three times ``BYTES_PER_EVENT`` per event: at 101.5M demo
# events and the 2048 default its groups of ``chunk_events`` took the recompute's peak from
# 2,041 to 2,235 MiB (as the subscriptions' own, ``subscriptions._MRR_WEIGHT``)
_WEIGHT = 3


class Trials(Family):
    name = "trials"
    # the key de-duplicates, mrr_after tells a paid period, metadata holds the
    # subscription id and the trial's end
    columns = ("idempotency_key", "product", "type", "ts", "subject", "mrr_after", "metadata")
    measurements = ("trials_daily", "trials_monthly")
    ordered = False  # per-trial matching by time, not the ledger's order
    grid = True  # active trials and maturing flags run to the horizon

    kept: Kept  # its totals between runs

    def __init__(self) -> None:
        self.kept = Kept(self.name)

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

    def run(
        self,
        view: LedgerView,
        start: pd.Timestamp | None,
        products: set[str] | None,
        horizon: pd.Timestamp,
    ) -> Computed:
        """From the kept totals updated with the touched customers' trials; rebuilt
        product group by product group on a full run, a cold start or a ledger that is
        not the one the totals cover."""
        settings = view.settings
        upto = max_seq(view)
        totals = None if start is None and products is None else self._updated(view, upto)
        built = totals is None
        if totals is None:
            customer_events.sync(view, upto)  # the indexed copy the next updates read from
            totals = TrialTotals.nothing().combined(
                (1, TrialTotals.of(read_upto(view, trials.TYPES, self.columns, group, upto,
                                             customer_events.TABLE), settings))
                for group in product_groups(product_counts(view, trials.TYPES, upto),
                                            max(1, settings.chunk_events // _WEIGHT))
            )  # fmt: skip
        self.kept.keep(view, upto, totals, built=built)
        # only the days (months) the rewrite from ``start`` covers (``_select`` keeps no other)
        return Computed(trial_frames_from(totals, settings, horizon, start), start)

    def _updated(self, view: LedgerView, upto: int) -> TrialTotals | None:
        settings = view.settings
        state = self.kept.current(view, upto)
        if state is None:
            return None
        # events without a subject are no one's trial (``trial_table`` drops them)
        got = touched(view, trials.TYPES, self.columns, state.seq, upto, with_subject=True)
        started = EventType.TRIAL_STARTED.value
        if not (got.after["type"] == started).any() and not (got.before["type"] == started).any():
            return state.totals  # customers without a trial count for nothing, before or after
        # one computation of both versions of the touched customers, the old one under
        # tagged product names (a trial is one product's)
        both = pd.concat([got.before.assign(product=_OLD + got.before["product"].astype(str)),
                          got.after], ignore_index=True)  # fmt: skip
        old, new = TrialTotals.of(both, settings).split(_OLD)
        return state.totals.combined([(-1, old), (1, new)])


_OLD = "\x00old\x00"  # product name prefix of the touched customers' events as they were
