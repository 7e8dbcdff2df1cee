"""Segments: MRR and its movements, customers, churn and revenue per plan, billing
interval, country, channel and custom customer attribute (``growthwatch.metrics.segments``).

A family with state between runs, like the subscription family: per-key totals that are
sums over customers (``growthwatch.metrics.segment_totals``), so an update recomputes only
the customers whose events arrived (their contribution as it was out, as it is in, read
from indexed per-customer copies: ``growthwatch.metrics.segment_events``) and assembles the
frames from the totals. Its rows depend on two portfolio-wide facts, handled so:

* which values keep their own series (``max_values`` folding ranks values by customers
  over every product): the totals keep the per-value customer counts, moved by the touched
  customers' before/after; when the kept set changes, the totals are rebuilt and every
  product is rewritten over its whole history (``Computed.all_products``);
* a customer's first known country or channel (a late event can carry an earlier one):
  just that customer's before/after, rewritten from the first day any total differs.

Otherwise the rewrite starts at the first day, period or month where the touched
customers' totals differ (a late event joining an earlier netting group moves that day),
and never later than the engine's start. A full run builds the totals product group by
product group (``MetricsSettings.chunk_events``) with the kept values counted in SQL
first (``sql/segment_values``), checked against the pandas counts. ``compute`` (frames
from every event at once) stays the reference the tests compare with.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import pandas as pd

from growthwatch.metrics import segment_events
from growthwatch.metrics.families.base import Computed, Family, Frames, LedgerView, Scope
from growthwatch.metrics.family_state import Kept
from growthwatch.metrics.segment_totals import (
    SegmentTotals,
    changed_from,
    difference,
    kept_from,
    segment_frames_from,
)
from growthwatch.metrics.segments import TYPES, segment_frames
from growthwatch.metrics.settings import MetricsSettings
from growthwatch.metrics.sql.segment_values import distinct_values, value_counts
from growthwatch.metrics.touched import (
    Group,
    max_seq,
    product_counts,
    product_groups,
    read_upto,
)

log = logging.getLogger(__name__)


class Segments(Family):
    name = "segments"
    columns = ("idempotency_key", "product", "type", "ts", "value", "currency", "subject",
               "mrr_before", "mrr_after", "plan", "channel", "metadata")  # fmt: skip
    measurements = ("mrr_segments_daily", "customers_segments_daily", "churn_segments_monthly",
                    "revenue_segments_daily")  # fmt: skip
    grid = True
    # a customer's segment, or a value's folding into ``other``, can change retroactively
    shrinking = frozenset(measurements)
    # An update costs the touched customers' events and the totals' keys x days: under a
    # second on a 10M ledger, not the tens of ms of a webhook's path, which it would
    # delay for every family after it (subscriptions: the churn alerts' series). So a
    # webhook's update leaves it to the catch-up once the events pause, now as cheap.
    live = False

    kept: Kept  # its totals between runs

    def __init__(self) -> None:
        self.kept = Kept(self.name)

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
        """From the kept totals, updated with the touched customers only; rebuilt product
        group by product group on a full run, a cold start without persisted totals, a
        ledger the totals do not cover, or when the kept values change."""
        settings = view.settings
        if not settings.segments.dimensions:
            return Computed({}, start)
        upto = max_seq(view)
        updated = None if start is None and products is None else self._updated(view, upto)
        if updated is None:
            totals = self._built(view, upto)
            self.kept.keep(view, upto, totals, built=True)
            # a rebuild inside an update does not know what moved: everything is rewritten
            everything = start is not None or products is not None
            return Computed(segment_frames_from(totals, settings, horizon), None,
                            all_products=everything)  # fmt: skip
        totals, moved_from = updated
        self.kept.keep(view, upto, totals, built=False)
        if start is not None and moved_from is not None:
            start = min(start, moved_from)
        # only the rows this update rewrites: of ``products`` and the portfolio
        return Computed(segment_frames_from(totals, settings, horizon, products, start), start)

    def _updated(
        self, view: LedgerView, upto: int
    ) -> tuple[SegmentTotals, pd.Timestamp | None] | None:
        """The kept totals moved to ``upto`` and the first instant they changed at (None:
        nothing kept that matches the ledger, an event without a customer, or the kept
        values changed: rebuild)."""
        settings = view.settings
        state = self.kept.current(view, upto)
        if state is None:
            return None
        old: SegmentTotals = state.totals
        got = segment_events.touched(view, self.columns, state.seq, upto)
        if got.pairs is None:  # an event without a customer: nothing to isolate it by
            return None
        if got.pairs.empty:
            return old, None
        kept = old.kept(settings)
        before, after = SegmentTotals.of_both(got.before, got.after, settings, kept)
        diff = difference(before, after)  # small: the touched customers' change
        totals = old.plus(diff)
        if kept_from(totals.counts, settings) != kept:
            log.info("segments: the kept values changed; rebuilding the totals")
            return None
        return totals, changed_from(before, after, settings, diff)

    def _built(self, view: LedgerView, upto: int) -> SegmentTotals:
        """The totals over the whole ledger up to ``upto``, product group by product group
        (at most ``chunk_events`` / dimensions events at once; a bigger product in parts
        of its customers, whose totals add up: ``touched.product_groups``),
        with the kept values counted in SQL first and checked against the pandas counts."""
        settings = view.settings
        segment_events.sync(view, upto)  # the indexed copies the next updates read from
        kept = self._sql_kept(view, upto)
        # the maths holds intermediates per dimension: about ``BYTES_PER_EVENT`` per event
        # and dimension (measured on the 10M demo: 1.9 GB for 840k events, 4 dimensions)
        per_group = max(1, settings.chunk_events // len(settings.segments.dimensions))
        groups = product_groups(product_counts(view, TYPES, upto), per_group)
        totals = self._groups(view, upto, groups, kept)
        exact = totals.kept(settings)
        if exact != _effective(kept, totals.counts):  # a guess; the pandas counts decide
            log.info("segments: the SQL value counts differ from the pandas ones; rebuilding")
            totals = self._groups(view, upto, groups, exact)
        return totals

    def _groups(
        self, view: LedgerView, upto: int, groups: list[Group], kept: dict[str, set[str]]
    ) -> SegmentTotals:
        settings = view.settings
        parts = []
        for group in groups:
            events = read_upto(view, TYPES, self.columns, group, upto, segment_events.SOURCE)
            parts.append((1, SegmentTotals.of(events, settings, kept)))
            del events
        return SegmentTotals.nothing().combined(parts)

    def _sql_kept(self, view: LedgerView, upto: int) -> dict[str, set[str]]:
        """The kept values' guess: every value of a dimension with at most ``max_values``
        (``sql/segment_values.distinct_values``), the counts' top values of the others."""
        settings = view.settings
        dims = settings.segments.dimensions
        cursor = view.ledger.connection
        try:
            rows = cursor.execute(distinct_values(dims, TYPES, upto, view.exclude)).fetchall()
        finally:
            cursor.close()
        found: dict[str, set[str]] = {dim: set() for dim in dims}
        for dim, value in rows:
            if value is not None:
                found[str(dim)].add(str(value))
        many = [d for d in dims if len(found[d]) > settings.segments.max_values]
        if many:
            counted = kept_from(self._sql_counts(view, upto, many), settings)
            found.update({d: counted[d] for d in many})
        return found

    def _sql_counts(
        self, view: LedgerView, upto: int, dims: Sequence[str] | None = None
    ) -> pd.Series:
        dims = view.settings.segments.dimensions if dims is None else dims
        sql = value_counts(dims, TYPES, upto, view.exclude)
        cursor = view.ledger.connection
        try:
            rows = cursor.execute(sql).fetchall()
        finally:
            cursor.close()
        if not rows:
            return pd.Series([], index=pd.MultiIndex.from_arrays([[], []]), dtype="int64")
        index = pd.MultiIndex.from_arrays([[str(r[0]) for r in rows], [str(r[1]) for r in rows]],
                                          names=["dim", "value"])  # fmt: skip
        return pd.Series([int(r[2]) for r in rows], index=index, dtype="int64")


def _effective(kept: dict[str, set[str]], counts: pd.Series) -> dict[str, set[str]]:
    """The values of ``kept`` that some customer counts for (``counts``): a kept value
    no one counts for is no one's segment (per-customer dimensions: no customer carried
    it first), so a build with ``kept`` is the build with these."""
    counted: dict[str, set[str]] = {dim: set() for dim in kept}
    for (dim, value), n in counts.items():
        if n > 0 and dim in counted:
            counted[dim].add(str(value))
    return {dim: values & counted[dim] for dim, values in kept.items()}
