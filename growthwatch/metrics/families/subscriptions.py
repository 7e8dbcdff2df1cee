"""Subscriptions: MRR and its movements, customers, churn, and revenue retention.

The one family with state between runs: the portfolio's MRR state as of the last run
(keyed by the day its grids end), so a long-running engine (``growthwatch serve``)
recomputes only the products whose subscriptions changed: a webhook's cancellation costs
one product's history, not the portfolio's. It holds a row per customer movement and MRR
change (tens of MB for the 10M-event demo), far less than the events it came from.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar

import numpy as np
import pandas as pd

from growthwatch.metrics import cohorts
from growthwatch.metrics._frame import local_floor_at
from growthwatch.metrics.customers import churn_periods
from growthwatch.metrics.families.base import Computed, Family, Frames, LedgerView, Scope
from growthwatch.metrics.mrr import MRR_TYPES, MrrResult, compute_mrr
from growthwatch.metrics.settings import MetricsSettings


def subscription_frames(
    state: MrrResult, settings: MetricsSettings, until: pd.Timestamp | None
) -> Frames:
    """The family's frames from its MRR state (cheap: per-day aggregates)."""
    tz = settings.timezone
    daily = churn_periods(state, "D", tz=tz, until=until)
    if not daily.empty:
        daily["net_change"] = np.round(daily["mrr_end"] - daily["mrr_start"], 6)
    return {
        "mrr_daily": daily,
        "customers_daily": daily,
        "churn_monthly": churn_periods(state, "MS", settings.ltv_months, tz=tz, until=until),
        "churn_yearly": churn_periods(state, "YS", tz=tz, until=until),
        "cohort_retention": cohorts.revenue_retention(state, until, tz),
    }


class Subscriptions(Family):
    name = "subscriptions"
    columns = ("idempotency_key", "product", "type", "ts", "currency", "subject",
               "mrr_before", "mrr_after", "metadata")  # fmt: skip
    measurements = ("mrr_daily", "customers_daily", "churn_monthly", "churn_yearly",
                    "cohort_retention")  # fmt: skip
    grid = True
    shrinking = frozenset({"cohort_retention"})
    owns: ClassVar[Mapping[str, Mapping[str, str]]] = {"cohort_retention": {"basis": "revenue"}}  # the cohorts family writes "logo"

    def __init__(self) -> None:
        self._state: tuple[pd.Timestamp, MrrResult] | None = None

    def types(self, settings: MetricsSettings) -> tuple[str, ...]:
        return MRR_TYPES

    def compute(self, events: pd.DataFrame, scope: Scope) -> Frames:
        settings, until = scope.settings, scope.until
        return subscription_frames(compute_mrr(events, settings, until), settings, until)

    def read_start(
        self, start: pd.Timestamp | None, settings: MetricsSettings
    ) -> pd.Timestamp | None:
        return None  # MRR is a state over each subscription's whole history

    def run(
        self,
        view: LedgerView,
        start: pd.Timestamp | None,
        products: set[str] | None,
        horizon: pd.Timestamp,
    ) -> Computed:
        """MRR over each subscription's whole history: of every product on a full run or
        a cold start, else of the changed products only, merged into the kept state."""
        settings = view.settings
        day = local_floor_at(horizon, "D", settings.timezone)
        cached = self._state[1] if self._state is not None and self._state[0] == day else None
        if products is None or cached is None:
            state = compute_mrr(view.events(MRR_TYPES, columns=self.columns), settings, horizon)
        else:
            chosen = sorted(products)
            events = view.events(MRR_TYPES, columns=self.columns, products=chosen)
            state = cached.with_products_from(compute_mrr(events, settings, horizon), chosen)
        self._state = (day, state)
        if start is not None:
            # A late event can join a netting group that began earlier (even the day
            # before): that movement moves, so rewrite from the group's day.
            start = _netted_start(state.netted, start, settings)
        return Computed(subscription_frames(state, settings, horizon), start,
                        {"chain_breaks": state.chain_breaks})  # fmt: skip


def _netted_start(
    netted: pd.DataFrame, start: pd.Timestamp, settings: MetricsSettings
) -> pd.Timestamp:
    """``start`` moved back to the day of any multi-event netting group still open at it."""
    if netted.empty:
        return start
    reaching = netted.loc[netted["end"] >= start, "start"]
    if reaching.empty:
        return start
    return min(start, local_floor_at(pd.Timestamp(reaching.min()), "D", settings.timezone))
