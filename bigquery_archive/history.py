"""Which events the metrics engine needs from all history, and which only from a window.

Most metric families read a window (revenue: the days rewritten; DAU/WAU/MAU: the 30 days
before), but MRR is a per-subscription state over its whole life (subscription events and
payments), logo cohorts need every signup, and funnels the first entry step of each user.
Retention keeps these *history types* in the ledger for good (they are a small share of
the volume: no active_use, session or kpi events), and a replay reads them from the start
of the archive, the rest only from ``window_start``.
"""

from __future__ import annotations

from datetime import timedelta

import pandas as pd

from growthwatch import EventType, MetricsSettings

# Every type the MRR chain reads (``growthwatch.metrics.mrr.MRR_TYPES``): a pause deleted
# by retention would make its resume a chain break, a failed payment a voluntary churn.
_SUBSCRIPTION = (
    EventType.TRIAL_STARTED, EventType.SUBSCRIPTION_STARTED, EventType.SUBSCRIPTION_CHANGED,
    EventType.SUBSCRIPTION_CANCELLED, EventType.SUBSCRIPTION_REACTIVATED,
    EventType.SUBSCRIPTION_PAUSED, EventType.SUBSCRIPTION_RESUMED, EventType.PAYMENT_FAILED,
)  # fmt: skip
MAU_DAYS = 30
# Types of which the engine needs each user's first event ever, not their whole history:
# the lifecycle's "new" (first activity). A replay adds these firsts from before its window.
FIRST_TYPES: tuple[str, ...] = (EventType.ACTIVE_USE.value,)


def history_types(settings: MetricsSettings) -> tuple[str, ...]:
    """Event types whose whole history the engine reads (all types if a funnel step is an
    event kind rather than a type: kinds can be anything)."""
    known = {t.value for t in EventType}
    entry = {f.steps[0] for f in settings.funnels}
    if not entry <= known:
        return tuple(sorted(known))
    chosen = {t.value for t in _SUBSCRIPTION} | {EventType.PAYMENT.value,
                                                 EventType.SIGNUP.value} | entry  # fmt: skip
    return tuple(sorted(chosen))


def window_types(settings: MetricsSettings) -> tuple[str, ...]:
    history = set(history_types(settings))
    return tuple(sorted(t.value for t in EventType if t.value not in history))


def window_start(since: pd.Timestamp, settings: MetricsSettings) -> pd.Timestamp:
    """Where windowed input must begin for every bucket from ``since`` on to come out as
    a full recompute would make it: the month of ``since`` (cohort and funnel rows are
    per month) less MAU's 30 days, the activation window and the longest funnel window."""
    month = pd.Timestamp(year=since.year, month=since.month, day=1, tz="UTC")
    funnel = max([f.window_days for f in settings.funnels] or [0])
    days = MAU_DAYS + settings.activation_window_days + max(funnel, settings.funnel_window_days)
    return month - timedelta(days=days + 1)
