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
  cohort sums (``mrr_totals.trailing_parts`` with keys for products);
* ``revenue``: per (day, key, currency) the native money sums and counts, the product's
  own rows under key = product (``segments.revenue_sums``);
* ``first``: per product, the day of its first subscription event (combined by minimum:
  the ledger only grows);
* ``counts``: per (dimension, value) the customers that folding ranks by.

``segments.segment_frames`` (every event at once) stays the reference the property tests
compare with.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import pandas as pd

from growthwatch.metrics._frame import (
    LEDGER_ORDER,
    PORTFOLIO,
    TIME_DTYPE,
    clean,
    local_floor_at,
    local_month_numbers,
    month_starts,
    naive_utc,
)
from growthwatch.metrics.mrr import _netted_groups
from growthwatch.metrics.mrr_totals import MrrTotals, _summed, _trailing_fn, trailing_parts
from growthwatch.metrics.segments import (
    _FLOW_COLS,
    _SEP,
    PER_SUBSCRIPTION,
    _churned_from_start,
    _no_revenue_sums,
    _raw_values,
    _subscription_parts,
    _to_portfolio,
    _value_counts,
    assembled,
    customer_attributes,
    kept_values,
    revenue_from_sums,
    revenue_sums,
)
from growthwatch.metrics.settings import MetricsSettings

FREQS = ("D", "MS")
_OLD = "\x00old\x00"  # product name prefix of the touched customers' events as they were
_FLOWS = (*_FLOW_COLS, "rows")
_NO_MRR = MrrTotals.nothing()  # read only: its empty tables, copied where kept
_NOTHING: SegmentTotals | None = None  # ``SegmentTotals.nothing``'s prototype


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
        """Empty totals (copies of one prototype: building the empty indexes costs
        milliseconds, which an update pays several times)."""
        global _NOTHING
        if _NOTHING is None:
            _NOTHING = cls(_no_flows(), {f: _empty_series(["key", "period"]) for f in FREQS},
                           _NO_MRR.trailing, _no_revenue_sums(), pd.Series(dtype=object),
                           _empty_series(["dim", "value"]))  # fmt: skip
        p = _NOTHING
        return cls(p.flows.copy(), {f: v.copy() for f, v in p.churned.items()},
                   p.trailing.copy(), p.revenue.copy(), p.first.copy(), p.counts.copy())  # fmt: skip

    @classmethod
    def of(
        cls, events: pd.DataFrame, settings: MetricsSettings, kept: dict[str, set[str]]
    ) -> SegmentTotals:
        """The totals of the customers in ``events`` (all events of whole customers of the
        segment family's types) with the values ``kept`` of the whole portfolio."""
        events = clean(events)
        if events.empty or not settings.segments.dimensions:
            return cls.nothing()
        attrs, counts = attributes(events, settings.segments.dimensions)
        part = cls._products(events, attrs, settings, kept)
        return replace(part, counts=counts)._with_portfolio()

    @classmethod
    def of_both(
        cls,
        before: pd.DataFrame,
        after: pd.DataFrame,
        settings: MetricsSettings,
        kept: dict[str, set[str]],
    ) -> tuple[SegmentTotals, SegmentTotals]:
        """``of(before)`` and ``of(after)`` (two versions of the same customers) from one
        computation, the old version under tagged product names (products are
        independent): one pass's fixed cost instead of two."""
        dims = settings.segments.dimensions
        if not dims:
            return cls.nothing(), cls.nothing()
        old = before.assign(product=_OLD + before["product"].astype(str))
        both = pd.concat([old, after], ignore_index=True)
        both = both.sort_values(["ts", "idempotency_key"], kind="stable").reset_index(drop=True)
        both.attrs[LEDGER_ORDER] = True
        if both.empty:
            return cls.nothing(), cls.nothing()
        attrs = customer_attributes(both, dims)
        tagged, fresh = cls._products(both, attrs, settings, kept)._split(_OLD)
        tagged_rows = both["product"].astype(str).str.startswith(_OLD).to_numpy()
        tagged_attrs = np.asarray(attrs.index.get_level_values(0).astype(str).str.startswith(_OLD))
        out = []
        for part, rows, mine in ((tagged, tagged_rows, tagged_attrs),
                                 (fresh, ~tagged_rows, ~tagged_attrs)):  # fmt: skip
            mine_rows = both[rows].reset_index(drop=True)  # json_key aligns by label
            counts = value_counts(mine_rows, attrs[mine], dims)
            out.append(replace(part, counts=counts)._with_portfolio())
        return out[0], out[1]

    @classmethod
    def _products(
        cls,
        events: pd.DataFrame,
        attrs: pd.DataFrame,
        settings: MetricsSettings,
        kept: dict[str, set[str]],
    ) -> SegmentTotals:
        """The per-product keys' totals of ``events`` (cleaned), without the portfolio's
        keys and the counts."""
        tz = settings.timezone
        flows, trailing, first = _no_flows(), _NO_MRR.trailing.copy(), pd.Series(dtype=object)
        churned = {f: _empty_series(["key", "period"]) for f in FREQS}
        g = _netted_groups(events, settings)
        if g is not None:
            flow, move, change, first = _subscription_parts(g, settings, attrs, kept,
                                                            portfolio=False)  # fmt: skip
            if not flow.empty:
                flow = flow.fillna(0)
                for col in _FLOW_COLS:
                    if col not in flow:
                        flow[col] = 0
                flow["rows"] = 1
                flows = flow.groupby(["key", "time"], sort=True)[list(_FLOWS)].sum().astype("int64")
                for freq in FREQS:
                    got = _churned_from_start(move, freq, tz, portfolio=False)
                    churned[freq] = (_empty_series(["key", "period"]) if got.empty
                                     else got.astype("int64"))  # fmt: skip
                changes = change.rename(columns={"key": "product"})
                trailing = trailing_parts(changes, tz)
        revenue = revenue_sums(events, settings, attrs, kept)
        return cls(flows, churned, trailing, revenue, first, _empty_series(["dim", "value"]))

    def _with_portfolio(self) -> SegmentTotals:
        """The portfolio's keys added: the sums of the products' (customers stay per
        product, so every total adds up across products)."""

        def add(table: Any) -> Any:
            if not len(table):
                return table
            keys = table.index.get_level_values(0)
            mapped = _to_portfolio(pd.Series(np.asarray(keys, dtype=object)))
            levels = [
                mapped,
                *(table.index.get_level_values(i) for i in range(1, table.index.nlevels)),
            ]
            extra = table.copy()
            extra.index = pd.MultiIndex.from_arrays(levels, names=table.index.names)
            extra = extra.groupby(level=list(range(table.index.nlevels)), sort=True).sum()
            return pd.concat([table, extra]).sort_index()

        return SegmentTotals(add(self.flows), {f: add(v) for f, v in self.churned.items()},
                             add(self.trailing), self.revenue, self.first, self.counts)  # fmt: skip

    def _split(self, tag: str) -> tuple[SegmentTotals, SegmentTotals]:
        """(the products named ``tag`` + name, renamed to name; the others)."""

        def part(obj: Any, level: int, tagged: bool) -> Any:
            if len(obj) == 0:
                return obj
            index = obj.index
            names = (index.get_level_values(level) if isinstance(index, pd.MultiIndex)
                     else index).astype(str)  # fmt: skip
            marked = np.asarray(names.str.startswith(tag))
            out = obj[marked if tagged else ~marked]
            if tagged and len(out):
                if isinstance(out.index, pd.MultiIndex):
                    arrays = [out.index.get_level_values(i) for i in range(out.index.nlevels)]
                    arrays[level] = arrays[level].astype(str).str.removeprefix(tag)
                    out = out.copy()
                    out.index = pd.MultiIndex.from_arrays(arrays, names=out.index.names)
                else:
                    out = out.copy()
                    out.index = out.index.astype(str).str.removeprefix(tag)
            return out

        halves = []
        for tagged in (True, False):
            halves.append(SegmentTotals(
                part(self.flows, 0, tagged), {f: part(v, 0, tagged) for f, v in self.churned.items()},
                part(self.trailing, 0, tagged), part(self.revenue, 1, tagged),
                part(self.first, 0, tagged), self.counts,
            ))  # fmt: skip
        return halves[0], halves[1]

    def combined(self, parts: Iterable[tuple[int, SegmentTotals]]) -> SegmentTotals:
        """This state plus ``sign`` x each part (first days combine by minimum)."""
        flows, trailing, revenue, counts = (
            [self.flows],
            [self.trailing],
            [self.revenue],
            [self.counts],
        )
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

    def plus(self, diff: SegmentTotals) -> SegmentTotals:
        """``combined([(1, diff)])`` for a small ``diff`` (an update's after - before): its
        rows added in place instead of a sort of the whole state with them."""
        present = [f for f in (self.first, diff.first) if len(f)]
        first = (pd.concat(present).groupby(level=0).min().sort_index() if len(present) > 1
                 else present[0] if present else self.first)  # fmt: skip
        return SegmentTotals(_added(self.flows, diff.flows),
                             {f: _added(v, diff.churned[f]) for f, v in self.churned.items()},
                             _added(self.trailing, diff.trailing), _added(self.revenue, diff.revenue),
                             first, _added(self.counts, diff.counts))  # fmt: skip

    def kept(self, settings: MetricsSettings) -> dict[str, set[str]]:
        """The values each dimension keeps (its own series), from the counts."""
        return kept_from(self.counts, settings)


def _added(big: Any, small: Any) -> Any:
    """``_summed([big, small])`` of sparse tables (unique sorted index, int64): the rows of
    ``small`` that ``big`` has are added where they are, the others inserted, zero rows
    dropped. Falls back to ``_summed`` where the lookup does not apply."""
    if not len(small) or not len(big) or big.index.nlevels != small.index.nlevels:
        return _summed([big, small])
    pos = big.index.get_indexer(small.index)
    hit = pos >= 0
    values = big.to_numpy().copy()
    values[pos[hit]] += small.to_numpy()[hit]
    out = big._constructor(values, index=big.index, **(
        {"columns": big.columns} if values.ndim == 2 else {"name": big.name}))  # fmt: skip
    if not hit.all():
        out = pd.concat([out, small[~hit]]).sort_index()
        if not out.index.is_unique:  # levels of other dtypes: no match found
            return _summed([big, small])
    out = out.astype("int64")
    nonzero = out.to_numpy()
    nonzero = (nonzero != 0).any(axis=1) if nonzero.ndim == 2 else nonzero != 0
    return out if nonzero.all() else out[nonzero]


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


def attributes(events: pd.DataFrame, dims: Sequence[str]) -> tuple[pd.DataFrame, pd.Series]:
    """``segments.customer_attributes`` and ``value_counts`` of cleaned ``events`` from
    one factorization of the (product, subject) pairs.

    Why: the references build a MultiIndex of every event's pair, de-duplicate frames of
    strings and group by them, once per dimension: over a product group of a full run
    (hundreds of thousands of events) that is most of their cost; integer pair codes give
    the same first values (first known value in ledger order) and distinct triples."""
    # factorized as they are (Arrow strings: no Python object per event), pairs in order
    # of appearance among the events with a customer, as the references list them
    known_subject = events["subject"].notna().to_numpy()
    p_codes, p_names = pd.factorize(events["product"])
    s_codes, s_names = pd.factorize(events["subject"])
    width = max(len(s_names), 1)
    pair = np.full(len(events), -1, dtype="int64")
    pair[known_subject], firsts = pd.factorize(
        p_codes[known_subject].astype("int64") * width + s_codes[known_subject])
    index = pd.MultiIndex.from_arrays(
        [np.asarray(p_names, dtype=object)[firsts // width],
         np.asarray(s_names, dtype=object)[firsts % width]],
        names=["product", "subject"],
    )  # fmt: skip
    attrs = pd.DataFrame(index=index)
    parts = []
    for dim in dims:
        v_all, v_names = pd.factorize(_raw_values(events, dim))
        known = (v_all >= 0) & known_subject
        codes, v_codes = pair[known], v_all[known]
        names = np.asarray(v_names, dtype=object)
        width_v = max(len(names), 1)
        if dim in PER_SUBSCRIPTION:  # distinct (pair, value) triples per value
            triples = np.unique(codes * width_v + v_codes)
            n = np.bincount(triples % width_v, minlength=len(names))
        else:  # the first known value of each pair
            first = np.flatnonzero(~pd.Series(codes).duplicated().to_numpy())
            column = np.full(len(index), np.nan, dtype=object)
            column[codes[first]] = names[v_codes[first]]
            attrs[dim] = column
            n = np.bincount(v_codes[first], minlength=len(names))
        keep = n > 0
        if keep.any():
            parts.append(pd.Series(n[keep].astype("int64"), index=pd.MultiIndex.from_arrays(
                [np.full(int(keep.sum()), dim, dtype=object),
                 np.array([str(v) for v in names[keep]], dtype=object)],
                names=["dim", "value"])))  # fmt: skip
    if not parts:
        return attrs, _empty_series(["dim", "value"])
    counts = pd.concat(parts).groupby(level=[0, 1], sort=True).sum().astype("int64")
    return attrs, counts


def kept_from(counts: pd.Series, settings: MetricsSettings) -> dict[str, set[str]]:
    """Per configured dimension, the values that keep their own series."""
    spec = settings.segments
    out = {}
    for dim in spec.dimensions:
        mine = counts[counts.index.get_level_values(0) == dim] if len(counts) else counts
        mine = mine[mine.to_numpy() > 0]
        ranked = (
            pd.Series(mine.to_numpy(), index=mine.index.get_level_values(-1))
            if len(mine)
            else pd.Series(dtype="int64")
        )
        out[dim] = kept_values(ranked, spec.max_values)
    return out


def segment_frames_from(
    totals: SegmentTotals,
    settings: MetricsSettings,
    until: pd.Timestamp,
    products: set[str] | None = None,
    since: pd.Timestamp | None = None,
) -> dict[str, pd.DataFrame]:
    """Every segment measurement from the totals: what ``segments.segment_frames`` makes
    of the whole history. ``products``: only their rows and the portfolio's are needed
    (what an update rewrites), ``since``: only the revenue rows from that instant's day
    on (a day's revenue depends on that day alone); the other rows may be left out."""
    out: dict[str, pd.DataFrame] = {}
    flows, churned, trailing = totals.flows, totals.churned, totals.trailing
    if products is not None:
        wanted = {*products, PORTFOLIO}
        flows, trailing = _of_products(flows, wanted), _of_products(trailing, wanted)
        churned = {f: _of_products(v, wanted) for f, v in churned.items()}
    flows = flows[flows["rows"].to_numpy() > 0]
    cut = None if since is None or not len(flows) else _cut(since, settings)
    coarse = None
    if cut is not None:
        flows, coarse = _carried(flows, cut[0], cut[1], settings.timezone)
    if len(flows):
        flow = flows.drop(columns=["rows"]).reset_index()

        def from_start(freq: str, _tz: str) -> pd.Series:
            return churned[freq]

        hook = _trailing_fn(replace(_NO_MRR, trailing=trailing), settings.timezone)
        got = assembled(flow, from_start, hook, None,  # type: ignore[arg-type]
                        totals.first, settings, until, coarse)  # fmt: skip
        if cut is not None:  # the carried rows' own periods are not the reference's
            got = {name: frame[(frame["time"] >= cut[1 if name == "churn_segments_monthly"
                                                     else 2]).to_numpy()].reset_index(drop=True)
                   for name, frame in got.items()}  # fmt: skip
        out.update(got)
    revenue = totals.revenue
    if since is not None and len(revenue):
        floor = since - pd.Timedelta(days=1)  # a local day starts within a day of UTC's
        revenue = revenue[revenue.index.get_level_values("time") >= floor]
    rev = revenue_from_sums(revenue, settings)
    if not rev.empty:
        out["revenue_segments_daily"] = rev
    return out


def _cut(
    since: pd.Timestamp, settings: MetricsSettings
) -> tuple[pd.Timestamp, pd.Timestamp, pd.Timestamp]:
    """Where an update's assembly may start (``_carried``): the local month start
    ``ltv_months`` months before ``since``'s month (a month's LTV averages the churn rates
    of the months before it), then the first monthly and the first daily row it needs."""
    tz = settings.timezone
    month = local_floor_at(since, "MS", tz)
    number = local_month_numbers(pd.Series([month]).astype(TIME_DTYPE), tz)[0]
    cut = pd.Timestamp(month_starts(np.array([number - settings.ltv_months]), tz).iloc[0])
    return cut, month, local_floor_at(since, "D", tz)


def _carried(
    flows: pd.DataFrame, cut: pd.Timestamp, month: pd.Timestamp, tz: str
) -> tuple[pd.DataFrame, np.ndarray]:
    """The flow sums with every key's rows before ``cut`` (a local month start) added up
    into one row on the day before it, and those from ``cut`` to ``month`` (the local
    month start of the update's start) into one row per month on its first day; with the
    grid times that stand for them (``segments._daily``'s ``coarse``: that day, the month
    starts, then ``month``).

    Why: an update rewrites from its start, yet ``assembled`` builds every key's whole
    history (stocks are running sums, a month's start is the previous month's end). From
    the carried row on, the running sums are the same (sums are sums), so every row from
    ``cut`` on is the reference's. The months between ``cut`` and ``month`` are needed only
    as months (a month's LTV averages the churn rates of the months before it): a month's
    sums and end stocks are those of its one row, so they cost one grid row per key, not
    one per day (the grid is every key x every time: ``ltv_months`` x 30 rows per key for
    an update of a few customers). The carried day's rows, its month's and the coarse
    months' daily rows are not the reference's and are dropped (``segment_frames_from``)."""
    times = flows.index.get_level_values("time")
    naive = times if times.tz is None else times.tz_convert("UTC").tz_localize(None)
    at = np.asarray(naive, dtype="datetime64[us]")
    bound = np.datetime64(cut.tz_convert("UTC").tz_localize(None), "us")
    dense = np.datetime64(month.tz_convert("UTC").tz_localize(None), "us")
    numbers = local_month_numbers(pd.Series([cut, month]).astype(TIME_DTYPE), tz)
    starts = naive_utc(pd.DatetimeIndex(month_starts(np.arange(numbers[0], numbers[1] + 1), tz)))
    day = local_floor_at(cut - pd.Timedelta(microseconds=1), "D", tz)
    coarse = np.concatenate([naive_utc(pd.DatetimeIndex([day])), starts])
    early = at < bound
    middle = ~early & (at < dense)
    if not early.any() and not middle.any():
        return flows, coarse
    keys = np.asarray(flows.index.get_level_values("key"), dtype=object)
    # each early row to the carried day, each middle row to its month's start (the last
    # coarse start at or before it), the others where they are
    stamp = at.copy()
    stamp[early] = coarse[0]
    stamp[middle] = starts[np.searchsorted(starts, at[middle], side="right") - 1]
    moved = early | middle
    summed = flows[moved].groupby([keys[moved], stamp[moved]], sort=True).sum()
    rest = flows[~moved]
    index = pd.MultiIndex.from_arrays(
        [np.concatenate([summed.index.get_level_values(0).to_numpy(dtype=object), keys[~moved]]),
         np.concatenate([np.asarray(summed.index.get_level_values(1), dtype="datetime64[us]"),
                         stamp[~moved]])], names=["key", "time"])  # fmt: skip
    got = pd.DataFrame(np.concatenate([summed.to_numpy(), rest.to_numpy()]),
                       index=index, columns=flows.columns).astype(flows.dtypes.to_dict())  # fmt: skip
    if times.tz is not None:  # back to the level's own zone
        got.index = got.index.set_levels(
            got.index.levels[1].tz_localize("UTC").tz_convert(times.tz), level=1)
    return got.sort_index(), coarse


def _of_products(table: Any, wanted: set[str]) -> Any:
    """The rows of ``table`` (keys in its first index level) of the ``wanted`` products."""
    if not len(table):
        return table
    keys = table.index.get_level_values(0)
    codes, uniques = pd.factorize(np.asarray(keys, dtype=object))
    mine = np.array([str(k).split(_SEP, 1)[0] in wanted for k in uniques], dtype=bool)
    return table[mine[codes]]


def difference(before: SegmentTotals, after: SegmentTotals) -> SegmentTotals:
    """``after - before`` (first days: ``after``'s), what an update adds to the state."""
    return SegmentTotals.nothing().combined([(-1, before), (1, after)])


def changed_from(
    before: SegmentTotals,
    after: SegmentTotals,
    settings: MetricsSettings,
    diff: SegmentTotals | None = None,
) -> pd.Timestamp | None:
    """The earliest instant whose rows the change from ``before`` to ``after`` (the
    touched customers as they were and as they are) can move: the first day where a
    daily total differs, or the last day of a month whose monthly total differs (the
    engine rewrites a monthly measurement from the month of its start: a monthly
    difference needs no daily rows rewritten from the month's first day); a
    trailing-12-month sum at month m is read 12 months later. None: nothing differs.
    ``diff``: ``difference(before, after)``, when the caller has it."""
    if diff is None:
        diff = difference(before, after)
    tz = settings.timezone
    found: list[pd.Timestamp] = []
    months: list[int] = []
    if len(diff.flows):
        t = pd.Timestamp(diff.flows.index.get_level_values("time").min())
        found.append(t.tz_localize("UTC") if t.tzinfo is None else t.tz_convert("UTC"))
    daily = diff.churned["D"]
    if len(daily):
        found.append(pd.Timestamp(daily.index.get_level_values(-1).min()).tz_convert("UTC"))
    monthly = diff.churned["MS"]
    if len(monthly):
        first = pd.Series([monthly.index.get_level_values(-1).min()]).astype(TIME_DTYPE)
        months.append(int(local_month_numbers(first, tz)[0]))
    if len(diff.trailing):
        months.append(int(diff.trailing.index.get_level_values("month").min()) + 12)
    if len(diff.revenue):
        t = pd.Timestamp(diff.revenue.index.get_level_values("time").min())
        found.append(t.tz_localize("UTC") if t.tzinfo is None else t.tz_convert("UTC"))
    old = before.first
    for product, day in after.first.items():
        if product not in old.index or day < old[product]:
            found.append(pd.Timestamp(day).tz_convert("UTC"))
    if months:  # the month's last day: within the month, rewriting one day of daily rows
        end = pd.Timestamp(month_starts(np.array([min(months) + 1]), tz).iloc[0])
        found.append(local_floor_at(end - pd.Timedelta(microseconds=1), "D", tz))
    return min(found) if found else None
