"""Segments: MRR and its movements, customers, churn and revenue per plan, billing
interval, country, channel and custom customer attribute (``growthwatch.metrics.segments``).

Its own family rather than part of the subscription family because its rows depend on the
whole history and the whole portfolio: which values keep their own series (``max_values``
folding ranks them over every product) and a customer's first known country or channel
(a late event can carry an earlier one). So every run computes over all history, and
rewrites: every product when the kept values changed since this engine's last run (or it
has no last run), else the changed products, over their whole history.
"""

from __future__ import annotations

import pandas as pd

from growthwatch.metrics.families.base import Computed, Family, Frames, LedgerView, Scope
from growthwatch.metrics.segments import TYPES, kept_by_dimension, segment_frames
from growthwatch.metrics.settings import MetricsSettings


class Segments(Family):
    name = "segments"
    columns = ("idempotency_key", "product", "type", "ts", "value", "currency", "subject",
               "mrr_before", "mrr_after", "plan", "channel", "metadata")  # fmt: skip
    measurements = ("mrr_segments_daily", "customers_segments_daily", "churn_segments_monthly",
                    "revenue_segments_daily")  # fmt: skip
    grid = True
    # a customer's segment, or a value's folding into ``other``, can change retroactively
    shrinking = frozenset(measurements)

    def __init__(self) -> None:
        self._kept: dict[str, set[str]] | None = None

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
        widened = self._kept is None or kept != self._kept
        self._kept = kept
        frames = segment_frames(events, settings, horizon, kept)
        return Computed(frames, None, all_products=widened)
