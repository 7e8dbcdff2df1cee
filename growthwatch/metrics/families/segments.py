"""Segments: MRR and its movements, customers, churn and revenue per plan, billing
interval, country, channel and custom customer attribute (``growthwatch.metrics.segments``).

Its own family rather than part of the subscription family because its rows can depend on
the whole history and the whole portfolio: which values keep their own series
(``max_values`` folding ranks them over every product) and a customer's first known
country or channel (a late event can carry an earlier one). So every run computes over all
history, and compares with the ledger as the last run saw it (events up to its ``seq``):

* the kept values changed: every product is rewritten over its whole history;
* a customer's first known value changed: the changed products, over their whole history;
* neither (the usual case): the changed products from the first bucket the new events
  touch (or the start of a netting group they join), like the subscription family.
"""

from __future__ import annotations

import pandas as pd

from growthwatch.metrics.families.base import Computed, Family, Frames, LedgerView, Scope
from growthwatch.metrics.families.subscriptions import _netted_start
from growthwatch.metrics.segments import (
    TYPES,
    attributes_changed,
    kept_by_dimension,
    segment_frames,
)
from growthwatch.metrics.settings import MetricsSettings
from growthwatch.stores.ledger import SELECT_EXPR


class Segments(Family):
    name = "segments"
    columns = ("idempotency_key", "product", "type", "ts", "value", "currency", "subject",
               "mrr_before", "mrr_after", "plan", "channel", "metadata")  # fmt: skip
    measurements = ("mrr_segments_daily", "customers_segments_daily", "churn_segments_monthly",
                    "revenue_segments_daily")  # fmt: skip
    grid = True
    # a customer's segment, or a value's folding into ``other``, can change retroactively
    shrinking = frozenset(measurements)
    # It computes over all history (folding ranks values over the portfolio): seconds on a
    # large ledger, so a webhook's update leaves it to the catch-up once the events pause.
    live = False

    def types(self, settings: MetricsSettings) -> tuple[str, ...]:
        return TYPES if settings.segments.dimensions else ()

    def compute(self, events: pd.DataFrame, scope: Scope) -> Frames:
        return segment_frames(events, scope.settings, scope.until)

    def read_start(
        self, start: pd.Timestamp | None, settings: MetricsSettings
    ) -> pd.Timestamp | None:
        return None  # the whole history, always

    def run(
        self,
        view: LedgerView,
        start: pd.Timestamp | None,
        products: set[str] | None,
        horizon: pd.Timestamp,
    ) -> Computed:
        settings = view.settings
        if not settings.segments.dimensions:
            return Computed({}, start)
        events = view.events(TYPES, columns=self.columns)
        kept = kept_by_dimension(events, settings)
        netted: list[pd.DataFrame] = []
        frames = segment_frames(events, settings, horizon, kept, netted)
        if start is None or view.last_seq == 0:
            return Computed(frames, start)
        old = events[~events["idempotency_key"].isin(self._new_keys(view))]
        if kept_by_dimension(old, settings) != kept:
            return Computed(frames, None, all_products=True)
        if attributes_changed(old, events, settings):
            return Computed(frames, None)
        if netted:
            start = _netted_start(netted[0], start, settings)
        return Computed(frames, start)

    def _new_keys(self, view: LedgerView) -> list[str]:
        """Idempotency keys of this family's events after the last run's ``seq``."""
        cursor = view.ledger.connection
        try:
            rows = cursor.execute(
                f"SELECT {SELECT_EXPR['idempotency_key']} FROM events WHERE seq > ? "
                "AND type IN (SELECT unnest(?))", [view.last_seq, list(TYPES)],
            ).fetchall()  # fmt: skip
        finally:
            cursor.close()
        return [str(r[0]) for r in rows]
