"""Subscriptions: MRR and its movements, customers, churn, and revenue retention.

A family with state between runs: per-product totals that are sums over customers
(``growthwatch.metrics.mrr_totals``), so an update recomputes only the customers whose
events arrived (their contribution before comes out, after goes in) and assembles the
frames from the totals: a webhook's cancellation costs that customer's events plus the
products x days of the grids, not the history. A full run builds the totals product group
by product group (``MetricsSettings.chunk_events``). ``compute`` (frames from
``compute_mrr`` over the whole history) stays the reference the tests compare with.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar

import numpy as np
import pandas as pd

from growthwatch.metrics import cohorts, customer_events
from growthwatch.metrics._frame import LEDGER_ORDER, local_floor_at
from growthwatch.metrics.customers import churn_periods
from growthwatch.metrics.families.base import Computed, Family, Frames, LedgerView, Scope
from growthwatch.metrics.family_state import Kept
from growthwatch.metrics.mrr import MRR_TYPES, MrrResult, compute_mrr
from growthwatch.metrics.mrr_totals import MrrTotals, subscription_frames_from
from growthwatch.metrics.settings import MetricsSettings
from growthwatch.metrics.touched import (
    max_seq,
    product_counts,
    product_groups,
    read_upto,
    touched,
)


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

    kept: Kept  # its totals between runs

    def __init__(self) -> None:
        self.kept = Kept(self.name)

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
        """From the kept totals, updated with the touched customers only (their
        contribution before the new events out, after them in); rebuilt product group by
        product group on a full run, a cold start or when the ledger is not the one the
        totals were built over."""
        settings = view.settings
        upto = max_seq(view)
        totals = None if start is None and products is None else self._updated(view, upto, horizon)
        built = totals is None
        if totals is None:
            totals = self._built(view, upto, horizon)
        self.kept.keep(view, upto, totals, built=built)
        if start is not None and len(totals.netted):
            # A late event can join a netting group that began earlier (even the day
            # before): that movement moves, so rewrite from the group's day.
            start = _netted_start(totals.netted, start, settings)
        # only the periods the rewrite from ``start`` covers (``_select`` keeps no other)
        return Computed(subscription_frames_from(totals, settings, horizon, start), start,
                        {"chain_breaks": totals.chain_breaks})  # fmt: skip

    def _updated(self, view: LedgerView, upto: int, horizon: pd.Timestamp) -> MrrTotals | None:
        """The kept totals moved to ``upto`` (None: nothing kept that matches the ledger)."""
        settings = view.settings
        state = self.kept.current(view, upto)
        if state is None:
            return None
        got = touched(view, MRR_TYPES, self.columns, state.seq, upto)
        if got.pairs is None:  # an event without a customer: nothing to isolate it by
            return None
        # one computation of both versions of the touched customers, the old one under
        # tagged product names (products are independent)
        before = got.before.assign(product=_OLD + got.before["product"].astype(str))
        both = pd.concat([before, got.after], ignore_index=True)
        both = both.sort_values(["ts", "idempotency_key"], kind="stable").reset_index(drop=True)
        both.attrs[LEDGER_ORDER] = True
        old, new = MrrTotals.of(compute_mrr(both, settings, horizon), settings.timezone).split(_OLD)
        return state.totals.combined([(-1, old), (1, new)])

    def _built(self, view: LedgerView, upto: int, horizon: pd.Timestamp) -> MrrTotals:
        """The totals over the whole ledger up to ``upto``, product group by product group
        (at most ``chunk_events`` / ``_MRR_WEIGHT`` events in memory at once; products are
        independent, and a bigger product is built in parts of its customers:
        ``touched.product_groups``)."""
        settings = view.settings
        customer_events.sync(view, upto)  # the indexed copy the next updates read from
        parts = []
        counts = product_counts(view, MRR_TYPES, upto)
        for group in product_groups(counts, max(1, settings.chunk_events // _MRR_WEIGHT)):
            events = read_upto(view, MRR_TYPES, self.columns, group, upto, customer_events.TABLE)
            parts.append((1, MrrTotals.of(compute_mrr(events, settings, horizon),
                                          settings.timezone)))  # fmt: skip
            del events
        return MrrTotals.nothing().combined(parts)


# ``compute_mrr`` holds two to three times ``BYTES_PER_EVENT`` per event (its netting
# groups, each customer's chain and the per-day frames): at 101.5M demo events and the 2048
# default its groups of ``chunk_events`` took the recompute's peak from 1,906 to 2,558
# MiB, of ``chunk_events`` / 2 to 2,041 MiB
_MRR_WEIGHT = 3
_OLD = "\x00old\x00"  # product name prefix of the touched customers' events as they were


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
