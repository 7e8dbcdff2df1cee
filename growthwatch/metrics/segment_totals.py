"""The segment family's state: per-key totals that are sums over customers.

Why: every segment number (``growthwatch.metrics.segments``) is built from each customer's
own events (their netting groups, their first known country or channel, their plans) and
one portfolio-wide fact, which values each dimension keeps (``max_values`` folding ranks
values by customers over every product). With the kept values fixed, the segment frames
are sums over customers of per-customer contributions, per ``product|dimension|segment``
key and day or month, then assembled (``segments.assembled``, ``revenue_from_sums``). So a
state made of those sums is updated by taking the touched customers' contribution as it
was out and as it is in, without reading anyone else's history, and a full run builds it
product group by product group in bounded memory. The kept values themselves come from
per-value customer counts, also sums over customers, kept in the state: an update moves
them by the touched customers' before/after and a change of the kept set rebuilds.

What is kept, all int64 micro-units or counts, sparse (zero rows dropped):

* ``flows``: per (key, local day start) the sums of the flow rows ``segments._flows``
  makes (movements, counts, stock changes) and ``rows``, how many rows there were (a key's
  series starts on its first day with a row, even when the row's values add up to 0);
* ``churned``: per frequency (D, MS) and (key, period) the customers paying at the period
  start who churned in it;
* ``trailing``: per (key, month) the month-to-month change of the trailing-12-month
  cohort sums (``mrr_totals._trailing_parts`` with keys for products);
* ``revenue``: per (day, key, currency) the native money sums and counts, the product's
  own rows under key = product (``segments.revenue_sums``);
* ``first``: per product, the day of its first subscription event (combined by minimum:
  the ledger only grows);
* ``counts``: per (dimension, value) the customers that folding ranks by.

``segments.segment_frames`` (every event at once) stays the reference the property tests
compare with.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace

import numpy as np
import pandas as pd

from growthwatch.metrics._frame import clean, month_starts
from growthwatch.metrics.mrr import MrrResult, _netted_groups
from growthwatch.metrics.mrr_totals import MrrTotals, _summed, _trailing_fn, _trailing_parts
from growthwatch.metrics.segments import (
    _FLOW_COLS,
    _churned_from_start,
    _no_revenue_sums,
    _subscription_parts,
    _value_counts,
    assembled,
    customer_attributes,
    kept_values,
    revenue_from_sums,
    revenue_sums,
)
from growthwatch.metrics.settings import MetricsSettings

FREQS = ("D", "MS")
_FLOWS = (*_FLOW_COLS, "rows")


def _empty_series(names: list[str]) -> pd.Series:
    index = pd.MultiIndex.from_arrays([[] for _ in names], names=names)
    return pd.Series([], index=index, dtype="int64")


def _no_flows() -> pd.DataFrame:
    flows = pd.DataFrame({c: pd.Series(dtype="int64") for c in _FLOWS})
    flows.index = pd.MultiIndex.from_arrays([[], []], names=["key", "time"])
    return flows


@dataclass(frozen=True)
class SegmentTotals:
    """Per-key sums over customers (see the module doc)."""

    flows: pd.DataFrame  # index (key, time), _FLOW_COLS + rows
    churned: dict[str, pd.Series]  # freq -> (key, period) count
    trailing: pd.DataFrame  # index (product = key, month), den/num/cap changes
    revenue: pd.DataFrame  # index (time, key, currency), REVENUE_SUMS + rows
    first: pd.Series  # product -> first day (local day start)
    counts: pd.Series  # (dim, value) -> customers

    @classmethod
    def nothing(cls) -> SegmentTotals:
        return cls(_no_flows(), {f: _empty_series(["key", "period"]) for f in FREQS},
                   MrrTotals.nothing().trailing, _no_revenue_sums(), pd.Series(dtype=object),
                   _empty_series(["dim", "value"]))  # fmt: skip

    @classmethod
    def of(
        cls, events: pd.DataFrame, settings: MetricsSettings, kept: dict[str, set[str]]
    ) -> SegmentTotals:
        """The totals of the customers in ``events`` (all events of whole customers of the
        segment family's types) with the values ``kept`` of the whole portfolio."""
        events = clean(events)
        if events.empty or not settings.segments.dimensions:
            return cls.nothing()
        tz = settings.timezone
        dims = settings.segments.dimensions
        attrs = customer_attributes(events, dims)
        counts = value_counts(events, attrs, dims)
        flows, trailing, first = _no_flows(), MrrTotals.nothing().trailing, pd.Series(dtype=object)
        churned = {f: _empty_series(["key", "period"]) for f in FREQS}
        g = _netted_groups(events, settings)
        if g is not None:
            flow, move, change, first = _subscription_parts(g, settings, attrs, kept)
            if not flow.empty:
                flow = flow.fillna(0)
                for col in _FLOW_COLS:
                    if col not in flow:
                        flow[col] = 0
                flow["rows"] = 1
                flows = flow.groupby(["key", "time"], sort=True)[list(_FLOWS)].sum().astype("int64")
                for freq in FREQS:
                    got = _churned_from_start(move, freq, tz)
                    churned[freq] = (_empty_series(["key", "period"]) if got.empty
                                     else got.astype("int64"))  # fmt: skip
                changes = change.rename(columns={"key": "product"})
                changes = changes[["time", "product", "customer", "delta"]].reset_index(drop=True)
                trailing = _trailing_parts(MrrResult(pd.DataFrame(), pd.DataFrame(), changes), tz)
        revenue = revenue_sums(events, settings, attrs, kept)
        return cls(flows, churned, trailing, revenue, first, counts)

    def combined(self, parts: Iterable[tuple[int, SegmentTotals]]) -> SegmentTotals:
        """This state plus ``sign`` x each part (first days combine by minimum)."""
        flows, trailing, revenue, counts = [self.flows], [self.trailing], [self.revenue], [self.counts]
        churned = {f: [s] for f, s in self.churned.items()}
        firsts = [self.first]
        for sign, part in parts:
            flows.append(part.flows * sign)
            trailing.append(part.trailing * sign)
            revenue.append(part.revenue * sign)
            counts.append(part.counts * sign)
            for f in FREQS:
                churned[f].append(part.churned[f] * sign)
            if sign > 0:
                firsts.append(part.first)
        present = [f for f in firsts if len(f)]
        first = (pd.concat(present).groupby(level=0).min().sort_index() if present
                 else self.first)  # fmt: skip
        return SegmentTotals(_summed(flows), {f: _summed(v) for f, v in churned.items()},
                             _summed(trailing), _summed(revenue), first, _summed(counts))  # fmt: skip

    def kept(self, settings: MetricsSettings) -> dict[str, set[str]]:
        """The values each dimension keeps (its own series), from the counts."""
        return kept_from(self.counts, settings)


def value_counts(events: pd.DataFrame, attrs: pd.DataFrame, dims: Iterable[str]) -> pd.Series:
    """Customers per (dimension, value): what folding ranks (a sum over customers)."""
    parts = []
    for dim in dims:
        got = _value_counts(events, attrs, dim)
        if len(got):
            parts.append(pd.Series(got.to_numpy(dtype="int64"), index=pd.MultiIndex.from_arrays(
                [np.full(len(got), dim, dtype=object), got.index.astype(str).to_numpy(dtype=object)],
                names=["dim", "value"])))  # fmt: skip
    if not parts:
        return _empty_series(["dim", "value"])
    return pd.concat(parts).groupby(level=[0, 1], sort=True).sum().astype("int64")


def kept_from(counts: pd.Series, settings: MetricsSettings) -> dict[str, set[str]]:
    """Per configured dimension, the values that keep their own series."""
    spec = settings.segments
    out = {}
    for dim in spec.dimensions:
        mine = counts[counts.index.get_level_values(0) == dim] if len(counts) else counts
        mine = mine[mine.to_numpy() > 0]
        ranked = pd.Series(mine.to_numpy(), index=mine.index.get_level_values(-1)) if len(mine) \
            else pd.Series(dtype="int64")
        out[dim] = kept_values(ranked, spec.max_values)
    return out


def segment_frames_from(
    totals: SegmentTotals, settings: MetricsSettings, until: pd.Timestamp
) -> dict[str, pd.DataFrame]:
    """Every segment measurement from the totals: what ``segments.segment_frames`` makes
    of the whole history."""
    out: dict[str, pd.DataFrame] = {}
    flows = totals.flows
    flows = flows[flows["rows"].to_numpy() > 0]
    if len(flows):
        flow = flows.drop(columns=["rows"]).reset_index()
        churned = totals.churned

        def from_start(freq: str, _tz: str) -> pd.Series:
            return churned[freq]

        trailing = _trailing_fn(replace(MrrTotals.nothing(), trailing=totals.trailing),
                                settings.timezone)  # fmt: skip
        out.update(assembled(flow, from_start, trailing, None,  # type: ignore[arg-type]
                             totals.first, settings, until))  # fmt: skip
    rev = revenue_from_sums(totals.revenue, settings)
    if not rev.empty:
        out["revenue_segments_daily"] = rev
    return out


def changed_from(
    before: SegmentTotals, after: SegmentTotals, settings: MetricsSettings
) -> pd.Timestamp | None:
    """The earliest instant whose rows the change from ``before`` to ``after`` (the
    touched customers as they were and as they are) can move: the first day, period or
    month where any total differs (a trailing-12-month sum at month m is read 12 months
    later). None: nothing differs."""
    diff = SegmentTotals.nothing().combined([(-1, before), (1, after)])
    tz = settings.timezone
    found: list[pd.Timestamp] = []
    if len(diff.flows):
        t = diff.flows.index.get_level_values("time").min()
        found.append(pd.Timestamp(t, tz="UTC") if pd.Timestamp(t).tzinfo is None
                     else pd.Timestamp(t).tz_convert("UTC"))  # fmt: skip
    for series in diff.churned.values():
        if len(series):
            found.append(pd.Timestamp(series.index.get_level_values(-1).min()).tz_convert("UTC"))
    if len(diff.trailing):
        month = int(diff.trailing.index.get_level_values("month").min())
        found.append(pd.Timestamp(month_starts(np.array([month + 12]), tz).iloc[0]).tz_convert("UTC"))
    if len(diff.revenue):
        t = pd.Timestamp(diff.revenue.index.get_level_values("time").min())
        found.append(t.tz_localize("UTC") if t.tzinfo is None else t.tz_convert("UTC"))
    old = before.first
    for product, day in after.first.items():
        if product not in old.index or day < old[product]:
            found.append(pd.Timestamp(day).tz_convert("UTC"))
    return min(found) if found else None

