"""The subscription family's state: per-product totals that are sums over customers.

Why: every number the subscription family writes (MRR and its movements per day,
customers, churn per day/month/year, trailing-12-month NRR/GRR, revenue cohorts) is built
from each customer's own netting groups (``growthwatch.metrics.mrr``: customers are
independent within a product) and then added up per product and bucket. So a state made
of those per-bucket sums can be updated by taking the touched customers' old contribution
out and their new one in (``MrrTotals.updated``), without reading anyone else's history,
and a full run can build it product group by product group in bounded memory. The frames
are then assembled from the totals (``subscription_frames_from``): the cost follows the
number of products x days, not the number of events.

What is kept, all int64 micro-units or counts, sparse (zero rows dropped):

* ``flows``: per (product, local day number) the daily movement sums and counts of
  ``mrr._daily``, with its stocks (MRR, active, paused, paused MRR) as their day-to-day
  changes, so ``_daily``'s frame is their running sums over the day grid;
* ``churned``: per frequency (D, MS, YS) and (product, period), the customers paying at the
  period start who churned in it (``customers._churned_from_start``);
* ``trailing``: per (product, month), the month-to-month change of the trailing-12-month
  cohort sums (MRR then of customers paying then, their MRR 12 months later, capped);
  a customer's contribution is constant after its last change, so the changes are finite;
* ``cohort_size``/``cohort_mrr``/``cohort_paying``: revenue cohorts (first paid month) per
  (product, cohort[, month]): members, their MRR changes and paying-state changes;
* ``first``: per product, the local day number of its first subscription event (it can only
  move earlier: combined by minimum).

``growthwatch.metrics.families.subscriptions`` keeps the reference (``compute``: frames from
``compute_mrr`` over the whole history) and the property tests compare the two.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from growthwatch.metrics import cohorts
from growthwatch.metrics._frame import (
    PORTFOLIO,
    TIME_DTYPE,
    day_starts,
    empty,
    local_day_numbers,
    local_floor_at,
    local_month_numbers,
    month_starts,
    ratio,
    units,
    with_portfolio,
)
from growthwatch.metrics.customers import SMALL_MOVEMENTS, _churned_from_start, churn_periods
from growthwatch.metrics.mrr import COUNTS, MONEY, MrrResult
from growthwatch.metrics.settings import MetricsSettings

FLOW_COLUMNS = (*MONEY, *COUNTS)
# columns of ``mrr._daily`` that are stocks: kept as their changes, summed back on assembly
STOCKS = ("mrr", "paused_mrr", "active", "paused_customers")
FREQS = ("D", "MS", "YS")
_TRAILING = ("den", "num", "cap")


def _empty_series(names: list[str]) -> pd.Series:
    index = pd.MultiIndex.from_arrays([[] for _ in names], names=names)
    return pd.Series([], index=index, dtype="int64")


@dataclass(frozen=True)
class MrrTotals:
    """Per-product sums over customers (see the module doc)."""

    flows: pd.DataFrame  # index (product, day), FLOW_COLUMNS
    churned: dict[str, pd.Series]  # freq -> (product, period instant) count
    trailing: pd.DataFrame  # index (product, month), den/num/cap month-to-month changes
    cohort_size: pd.Series  # (product, cohort)
    cohort_mrr: pd.Series  # (product, cohort, month)
    cohort_paying: pd.Series  # (product, cohort, month)
    first: pd.Series  # product -> first local day number
    breaks: pd.Series = field(
        default_factory=lambda: pd.Series(dtype="int64")
    )  # product -> chain breaks
    # netting groups of more than one event (product, start, end) of the customers this
    # state was last updated with (a late event joining one moves that movement)
    netted: pd.DataFrame = field(default_factory=lambda: pd.DataFrame())

    @classmethod
    def of(cls, result: MrrResult, tz: str) -> MrrTotals:
        """The totals of one ``compute_mrr`` result (any set of whole customers)."""
        daily = result.daily
        day = local_day_numbers(daily["time"], tz)
        flows = daily[list(FLOW_COLUMNS)].astype("int64").copy()
        first_row = np.ones(len(daily), dtype=bool)
        if len(daily):
            product = daily["product"].astype(object).to_numpy()
            first_row[1:] = product[1:] != product[:-1]
        for col in STOCKS:  # stocks as changes: the first row of a product keeps its level
            values = flows[col].to_numpy()
            change = np.diff(values, prepend=0)
            flows[col] = np.where(first_row, values, change)
        flows.index = pd.MultiIndex.from_arrays(
            [daily["product"].astype(object).to_numpy(), day], names=["product", "day"]
        )
        flows = flows[(flows.to_numpy() != 0).any(axis=1)]
        first = pd.Series(
            day[first_row], index=daily["product"].astype(object).to_numpy()[first_row]
        )
        churned = {}
        for freq in FREQS:
            got = _churned_from_start(result.movements, freq, tz)
            if got.empty:
                got = _empty_series(["product", "period"])
            churned[freq] = got.astype("int64")
        size, mrr, paying = _cohort_parts(result, tz)
        breaks = pd.Series(result.breaks_by_product, dtype="int64")
        return cls(flows, churned, _trailing_parts(result, tz), size, mrr, paying,
                   first.sort_index(), breaks, result.netted)  # fmt: skip

    @classmethod
    def nothing(cls) -> MrrTotals:
        flows = pd.DataFrame({c: pd.Series(dtype="int64") for c in FLOW_COLUMNS})
        flows.index = pd.MultiIndex.from_arrays([[], []], names=["product", "day"])
        trailing = pd.DataFrame({c: pd.Series(dtype="int64") for c in _TRAILING})
        trailing.index = pd.MultiIndex.from_arrays([[], []], names=["product", "month"])
        return cls(flows, {f: _empty_series(["product", "period"]) for f in FREQS}, trailing,
                   _empty_series(["product", "cohort"]),
                   _empty_series(["product", "cohort", "month"]),
                   _empty_series(["product", "cohort", "month"]),
                   pd.Series(dtype="int64"))  # fmt: skip

    @property
    def chain_breaks(self) -> int:
        return int(self.breaks.sum())

    def split(self, tag: str) -> tuple[MrrTotals, MrrTotals]:
        """(the products named ``tag`` + name, renamed to name; the others): one
        ``compute_mrr`` over two versions of the same customers, told apart by product
        (products are independent), costs one call's overhead instead of two."""

        def part(obj: Any, tagged: bool) -> Any:
            if len(obj) == 0:
                return obj
            names = (obj.index.get_level_values(0) if isinstance(obj.index, pd.MultiIndex)
                     else obj.index).astype(str)  # fmt: skip
            mine = names.str.startswith(tag) if tagged else ~names.str.startswith(tag)
            out = obj[np.asarray(mine)]
            if tagged and len(out):
                renamed = [n[len(tag) :] for n in names[np.asarray(mine)]]
                if isinstance(out.index, pd.MultiIndex):
                    index = out.index.remove_unused_levels()
                    out.index = index.set_levels(
                        index.levels[0].astype(str).str.removeprefix(tag), level=0
                    )
                else:
                    out.index = pd.Index(renamed)
            return out

        def netted(tagged: bool) -> pd.DataFrame:
            n = self.netted
            if n.empty:
                return n
            mine = n["product"].astype(str).str.startswith(tag).to_numpy()
            out = n[mine if tagged else ~mine].copy()
            if tagged:
                out["product"] = out["product"].astype(str).str.removeprefix(tag)
            return out

        halves = []
        for tagged in (True, False):
            halves.append(MrrTotals(
                part(self.flows, tagged), {f: part(v, tagged) for f, v in self.churned.items()},
                part(self.trailing, tagged), part(self.cohort_size, tagged),
                part(self.cohort_mrr, tagged), part(self.cohort_paying, tagged),
                part(self.first, tagged), part(self.breaks, tagged), netted(tagged),
            ))  # fmt: skip
        return halves[0], halves[1]

    def combined(self, parts: Iterable[tuple[int, MrrTotals]]) -> MrrTotals:
        """This state plus ``sign`` x each part (their netting groups replace this one's;
        first days combine by minimum: a customer's removal never moves them later, since
        the same customer's events come back with the other sign)."""
        flows, trailing = [self.flows], [self.trailing]
        churned = {f: [s] for f, s in self.churned.items()}
        size, mrr, paying = [self.cohort_size], [self.cohort_mrr], [self.cohort_paying]
        firsts, netted, breaks = [self.first], [], [self.breaks]
        for sign, part in parts:
            flows.append(part.flows * sign)
            trailing.append(part.trailing * sign)
            for f in FREQS:
                churned[f].append(part.churned[f] * sign)
            size.append(part.cohort_size * sign)
            mrr.append(part.cohort_mrr * sign)
            paying.append(part.cohort_paying * sign)
            if sign > 0:
                firsts.append(part.first)
            netted.append(part.netted)
            breaks.append(part.breaks * sign)
        first = (
            pd.concat([f for f in firsts if len(f)]) if any(len(f) for f in firsts) else self.first
        )
        return MrrTotals(
            _summed(flows), {f: _summed(v) for f, v in churned.items()}, _summed(trailing),
            _summed(size), _summed(mrr), _summed(paying),
            first.groupby(level=0).min().astype("int64").sort_index(), _summed(breaks),
            pd.concat([n for n in netted if len(n)], ignore_index=True)
            if any(len(n) for n in netted) else pd.DataFrame(),
        )  # fmt: skip


def _summed(parts: list[Any]) -> Any:
    """Sum of aligned sparse tables (zero rows dropped)."""
    kept = [p for p in parts if len(p)]
    if not kept:
        return parts[0]
    if len(kept) == 1:
        return kept[0]
    total = pd.concat(kept).groupby(level=list(range(kept[0].index.nlevels)), sort=True).sum()
    total = total.astype("int64")
    values = total.to_numpy()
    nonzero = (values != 0).any(axis=1) if values.ndim == 2 else values != 0
    return total[nonzero]


# -- parts of one compute_mrr result --------------------------------------------------------


def _trailing_parts(result: MrrResult, tz: str) -> pd.DataFrame:
    """``trailing_parts`` of one ``compute_mrr`` result's changes."""
    return trailing_parts(result.changes, tz)


def trailing_parts(changes: pd.DataFrame, tz: str, cells: int = 4_000_000) -> pd.DataFrame:
    """Per (product, month) of MRR ``changes`` (``product``, ``customer``, ``time``,
    ``delta``): the change from the previous month of the trailing-12-month cohort sums
    (``customers._trailing_12m``: MRR at month m of the customers paying at m, their MRR
    at m + 12, and the same capped at the MRR at m). The segment family passes its
    segment keys as ``product``.

    Why one grid: a loop over products costs per-call overhead for each, and the segments
    have hundreds of keys (product x dimension x segment), which an update pays for a
    handful of customers. One grid of
    (key, customer) pairs x months over the span of all keys gives the same rows: before a
    key's first month its pairs hold nothing (no change to emit), after its last month
    their stock stays (the sums stay: no change either), and the 12-months-later stock,
    clamped to the grid's last month, is the one clamped to the key's last month because
    nothing moves in between. ``cells`` bounds the grid (pairs x months) per batch of keys.
    """
    if changes.empty:
        return MrrTotals.nothing().trailing
    month = local_month_numbers(changes["time"], tz)
    m0 = int(month.min())
    n = int(month.max()) - m0 + 1
    key_codes, key_names = pd.factorize(np.asarray(changes["product"], dtype=object), sort=True)
    who = pd.factorize(np.asarray(changes["customer"], dtype=object))[0].astype("int64")
    pair_ids, pair = np.unique(key_codes.astype("int64") * (int(who.max()) + 1) + who,
                               return_inverse=True)  # fmt: skip
    pair = pair.reshape(-1)
    pair_key = pair_ids // (int(who.max()) + 1)  # sorted: pairs come ordered by key
    delta = changes["delta"].to_numpy().astype("int64")
    col = month - m0
    order = np.argsort(pair, kind="stable")
    pair, col, delta = pair[order], col[order], delta[order]
    bounds = np.searchsorted(pair_key, np.arange(len(key_names) + 1))  # pairs of key k
    later = np.minimum(np.arange(n) + 12, n - 1)
    sums = np.zeros((len(key_names), n, 3), dtype="int64")
    k = 0
    while k < len(key_names):  # batches of whole keys within ``cells``
        j = k + 1
        while j < len(key_names) and (bounds[j + 1] - bounds[k]) * n <= cells:
            j += 1
        lo, hi = bounds[k], bounds[j]
        rows = slice(*np.searchsorted(pair, [lo, hi]))
        grid = np.zeros((hi - lo, n), dtype="int64")
        np.add.at(grid, (pair[rows] - lo, col[rows]), delta[rows])
        stock = np.cumsum(grid, axis=1)
        now = stock[:, later]
        paying = stock > 0
        starts = bounds[k:j] - lo  # every key has a pair: no empty segment
        for i, part in enumerate((stock, now, np.minimum(now, stock))):
            sums[k:j, :, i] = np.add.reduceat(np.where(paying, part, 0), starts, axis=0)
        k = j
    change = np.diff(sums, axis=1, prepend=0)
    hit_key, hit_month = np.nonzero((change != 0).any(axis=2))
    frame = pd.DataFrame(change[hit_key, hit_month], columns=list(_TRAILING))
    frame.index = pd.MultiIndex.from_arrays(
        [np.asarray(key_names, dtype=object)[hit_key], (hit_month + m0).astype("int64")],
        names=["product", "month"],
    )
    return frame.astype("int64")


def _cohort_parts(result: MrrResult, tz: str) -> tuple[pd.Series, pd.Series, pd.Series]:
    """Revenue cohorts (``cohorts.revenue_retention``): members per (product, cohort) and,
    per (product, cohort, month), their MRR changes and paying-state changes (from the
    cohort month on, as the reference's triangle reads them). Two ways to the same
    series, chosen by size (``customers.SMALL_MOVEMENTS``)."""
    mv = result.movements
    if not (mv["kind"] == "new").any():
        return (_empty_series(["product", "cohort"]),
                _empty_series(["product", "cohort", "month"]),
                _empty_series(["product", "cohort", "month"]))  # fmt: skip
    if len(mv) + len(result.changes) < SMALL_MOVEMENTS:
        got = _cohort_small(result, tz)
        if got is not None:
            return got
    return _cohort_grouped(result, tz)


def _cohort_grouped(result: MrrResult, tz: str) -> tuple[pd.Series, pd.Series, pd.Series]:
    """``_cohort_parts`` by merges and grouped aggregations (the faster on many rows)."""
    mv = result.movements
    firsts = mv[mv["kind"] == "new"]
    members = (
        firsts.assign(cohort=local_month_numbers(firsts["time"], tz))
        .groupby(["product", "customer"], as_index=False)["cohort"].min()
    )  # fmt: skip
    size = members.groupby(["product", "cohort"]).size().astype("int64")
    ch = result.changes.assign(month=local_month_numbers(result.changes["time"], tz))
    ch = ch.merge(members, on=["product", "customer"])
    mrr = ch.groupby(["product", "cohort", "month"])["delta"].sum().astype("int64")
    m = mv.merge(members, on=["product", "customer"])
    m = m.assign(month=local_month_numbers(m["time"], tz))
    state = m.groupby(["product", "customer", "month"], sort=True).agg(
        cohort=("cohort", "first"), paying=("paid_after", "last")
    )
    state["change"] = state["paying"].astype("int64") - state.groupby(level=[0, 1])["paying"].shift(
        1, fill_value=False
    ).astype("int64")
    state = state[state.index.get_level_values("month") >= state["cohort"].to_numpy()]
    paying = state.groupby(["product", "cohort", "month"])["change"].sum().astype("int64")
    return size, mrr[mrr != 0], paying[paying != 0]


def _cohort_small(result: MrrResult, tz: str) -> tuple[pd.Series, pd.Series, pd.Series] | None:
    """``_cohort_parts`` by integer codes and sorts (None with a customer or product
    missing: the grouped way's NA rules apply then). The merges and named aggregations
    of the grouped way cost about 15 ms of fixed cost, most of a webhook's update of one
    customer's cohort sums."""
    mv, ch = result.movements, result.changes
    n_mv = len(mv)
    products = np.concatenate([mv["product"].to_numpy(dtype=object),
                               ch["product"].to_numpy(dtype=object)])  # fmt: skip
    customers = np.concatenate([mv["customer"].to_numpy(dtype=object),
                                ch["customer"].to_numpy(dtype=object)])  # fmt: skip
    p_code, p_names = pd.factorize(products, sort=True)
    c_code = pd.factorize(customers)[0]
    if (p_code < 0).any() or (c_code < 0).any():
        return None
    n_customers = int(c_code.max()) + 1
    pair = p_code.astype("int64") * n_customers + c_code
    ch_pair, mv_pair = pair[n_mv:], pair[:n_mv]
    mv_month = local_month_numbers(mv["time"], tz)
    new = (mv["kind"] == "new").to_numpy()
    # members: the pairs with a new movement, their cohort its earliest month
    members, member_of = np.unique(mv_pair[new], return_inverse=True)
    cohort = np.full(len(members), np.iinfo("int64").max, dtype="int64")
    np.minimum.at(cohort, member_of.reshape(-1), mv_month[new])
    size = _sums(p_names, {"product": members // n_customers, "cohort": cohort},
                 np.ones(len(members), dtype="int64"), None, keep_zero=True)  # fmt: skip

    def cohort_of(pairs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        at = np.minimum(np.searchsorted(members, pairs), len(members) - 1)
        return members[at] == pairs, cohort[at]

    hit, ch_cohort = cohort_of(ch_pair)
    mrr = _sums(p_names, {"product": p_code[n_mv:][hit], "cohort": ch_cohort[hit],
                          "month": local_month_numbers(ch["time"], tz)[hit]},
                ch["delta"].to_numpy().astype("int64")[hit], "delta")  # fmt: skip
    # paying state per (member, month): the month's last movement's, as a change from the
    # member's previous month with movements (rows in ledger order within a month)
    hit, mv_cohort = cohort_of(mv_pair)
    rows = np.nonzero(hit)[0]
    rows = rows[np.lexsort((mv_month[rows], mv_pair[rows]))]  # stable: ledger order kept
    who, month = mv_pair[rows], mv_month[rows]
    last = np.ones(len(rows), dtype=bool)
    last[:-1] = (who[1:] != who[:-1]) | (month[1:] != month[:-1])
    rows, who, month = rows[last], who[last], month[last]
    paying = mv["paid_after"].to_numpy(dtype=bool)[rows].astype("int64")
    before = np.zeros(len(rows), dtype="int64")
    same = who[1:] == who[:-1]
    before[1:][same] = paying[:-1][same]
    from_cohort = month >= mv_cohort[rows]
    paid = _sums(p_names, {"product": p_code[:n_mv][rows][from_cohort],
                           "cohort": mv_cohort[rows][from_cohort], "month": month[from_cohort]},
                 (paying - before)[from_cohort], "change")  # fmt: skip
    return size, mrr, paid


def _sums(
    names: np.ndarray,
    keys: dict[str, np.ndarray],
    values: np.ndarray,
    name: str | None,
    *,
    keep_zero: bool = False,
) -> pd.Series:
    """``values`` summed per distinct key tuple (``keys``' first is a code into ``names``),
    sorted by the keys like a ``groupby`` (zero sums dropped unless ``keep_zero``)."""
    cols = list(keys.values())
    order = np.lexsort(cols[::-1])
    cols = [c[order] for c in cols]
    values = values[order]
    start = np.zeros(len(values), dtype=bool)  # the first row of each key tuple
    start[:1] = True
    for c in cols:
        start[1:] |= c[1:] != c[:-1]
    firsts = np.nonzero(start)[0]
    total = np.add.reduceat(values, firsts) if len(values) else values
    keep = slice(None) if keep_zero else total != 0
    # the names' own index dtype even when nothing is left (a grouped sum keeps it)
    first_level = pd.Index(np.asarray(names, dtype=object)[cols[0][firsts]][keep],
                           dtype=pd.Index(names).dtype)  # fmt: skip
    levels = [first_level, *(c[firsts].astype("int64")[keep] for c in cols[1:])]
    index = pd.MultiIndex.from_arrays(levels, names=list(keys))
    return pd.Series(total[keep].astype("int64"), index=index, name=name)


# -- the frames from the totals ---------------------------------------------------------------


def daily_from(
    totals: MrrTotals, until: pd.Timestamp, tz: str, from_day: int | None = None
) -> pd.DataFrame:
    """``mrr._daily``'s frame from the totals: per product from its first day to ``until``
    (or the last flow day), flows as they are and stocks as running sums; only the rows
    from local day number ``from_day`` on when given (the stocks still sum all history)."""
    first = totals.first
    if first.empty:
        return empty({"time": TIME_DTYPE, "product": "str",
                      **dict.fromkeys(FLOW_COLUMNS, "int64")})  # fmt: skip
    products = pd.Index(sorted(first.index))
    flows = totals.flows
    f_days = flows.index.get_level_values("day").to_numpy(dtype="int64")
    end_day = int(local_day_numbers(pd.Series([until]).astype(TIME_DTYPE), tz)[0])
    if len(f_days):
        end_day = max(end_day, int(f_days.max()))
    end_day = max(end_day, int(first.max()))
    start_day = int(first.min())
    n = end_day - start_day + 1
    grid = np.zeros((len(products), n, len(FLOW_COLUMNS)), dtype="int64")
    if len(flows):
        p = products.get_indexer(flows.index.get_level_values("product"))
        np.add.at(grid, (p, f_days - start_day), flows[list(FLOW_COLUMNS)].to_numpy())
    for col in STOCKS:
        k = FLOW_COLUMNS.index(col)
        grid[:, :, k] = np.cumsum(grid[:, :, k], axis=1)
    firsts = first.reindex(products).to_numpy(dtype="int64") - start_day
    keep = np.arange(n)[None, :] >= firsts[:, None]
    if from_day is not None:
        keep &= np.arange(n)[None, :] >= from_day - start_day
    rows = grid[keep]
    day_no = np.broadcast_to(np.arange(start_day, end_day + 1), (len(products), n))[keep]
    names = np.broadcast_to(np.asarray(products, dtype=object)[:, None], (len(products), n))[keep]
    out = pd.DataFrame(rows, columns=list(FLOW_COLUMNS))
    out.insert(0, "product", pd.array(names, dtype="str"))
    out.insert(0, "time", day_starts(day_no, tz).to_numpy())
    out["time"] = pd.to_datetime(out["time"], utc=True).astype(TIME_DTYPE)
    return out


def _trailing_fn(totals: MrrTotals, tz: str) -> object:
    """``churn_periods``' trailing-12-month hook over the totals."""
    parts = totals.trailing

    def trailing(
        out: pd.DataFrame, freq: str, daily: pd.DataFrame
    ) -> tuple[np.ndarray, np.ndarray]:
        nrr = np.full(len(out), np.nan)
        grr = np.full(len(out), np.nan)
        if parts.empty or out.empty:
            return nrr, grr
        m1 = int(local_month_numbers(daily["time"], tz).max())
        months = parts.index.get_level_values("month").to_numpy(dtype="int64")
        m0 = int(months.min())
        m1 = max(m1, int(months.max()))
        n = m1 - m0 + 1
        products = pd.Index(sorted(set(parts.index.get_level_values("product"))))
        grid = np.zeros((len(products) + 1, n, 3), dtype="int64")
        np.add.at(grid, (products.get_indexer(parts.index.get_level_values("product")),
                         months - m0), parts[list(_TRAILING)].to_numpy())  # fmt: skip
        grid[-1] = grid[:-1].sum(axis=0)  # the portfolio
        level = np.cumsum(grid, axis=1)
        period_month = local_month_numbers(out["time"], tz)
        if freq == "YS":
            period_month = period_month + 11
        then = np.minimum(period_month, m1) - 12 - m0
        row = products.get_indexer(out["product"].astype(object))
        row = np.where(out["product"].astype(object).to_numpy() == PORTFOLIO, len(products), row)
        ok = (row >= 0) & (then >= 0)
        den = np.zeros(len(out), dtype="int64")
        num = np.zeros(len(out), dtype="int64")
        cap = np.zeros(len(out), dtype="int64")
        den[ok], num[ok], cap[ok] = (level[row[ok], then[ok], k] for k in range(3))
        good = ok & (den > 0)
        nrr[good] = num[good] / den[good]
        grr[good] = cap[good] / den[good]
        return nrr, grr

    return trailing


def revenue_retention_from(totals: MrrTotals, until: pd.Timestamp, tz: str) -> pd.DataFrame:
    """``cohorts.revenue_retention`` from the totals."""
    sizes = totals.cohort_size.sort_index()
    if sizes.empty:
        return empty(cohorts.COLUMNS)
    mrr = totals.cohort_mrr
    last = int(local_month_numbers(pd.Series([until]).astype(TIME_DTYPE), tz)[0])
    if len(mrr):
        last = max(last, int(mrr.index.get_level_values("month").max()))
    p, c, a = cohorts._triangle(sizes.index.get_level_values(0).to_numpy(),
                                sizes.index.get_level_values(1).to_numpy(), last)  # fmt: skip
    paying_grid = (
        totals.cohort_paying.reindex(pd.MultiIndex.from_arrays([p, c, c + a]), fill_value=0)
        .groupby(level=[0, 1]).cumsum()
    )  # fmt: skip
    keys = (
        mrr.index.droplevel("month").unique() if len(mrr) else pd.MultiIndex.from_arrays([[], []])
    )
    # every member has a change (its new movement), so every cohort has a level: 0 by default
    mrr_cells = np.zeros(len(p), dtype="int64")
    if len(mrr):
        base = int(min(mrr.index.get_level_values("month").min(), c.min()))
        grid = np.zeros((len(keys), last - base + 1), dtype="int64")
        np.add.at(grid, (keys.get_indexer(mrr.index.droplevel("month")),
                         mrr.index.get_level_values("month").to_numpy() - base), mrr.to_numpy())  # fmt: skip
        level = np.cumsum(grid, axis=1)
        row = keys.get_indexer(pd.MultiIndex.from_arrays([p, c]))
        has = row >= 0
        mrr_cells[has] = level[row[has], (c + a)[has] - base]
    out = pd.DataFrame(
        {
            "product": p,
            "cohort": c,
            "age": a,
            "cohort_size": sizes.reindex(pd.MultiIndex.from_arrays([p, c])).to_numpy(),
            "retained": paying_grid.to_numpy(),
            "mrr": mrr_cells,
        }
    )
    out = with_portfolio(out, ["cohort", "age"], ["cohort_size", "retained", "mrr"])
    initial_rows = out[out["age"] == 0].set_index(["product", "cohort"])["mrr"]
    initial = initial_rows.reindex(pd.MultiIndex.from_arrays([out["product"], out["cohort"]]))
    out["rate"] = ratio(out["mrr"], initial.to_numpy())
    out["mrr"] = units(out["mrr"].to_numpy())
    return cohorts._finish(out, "revenue", tz)


def _reach_back(since: pd.Timestamp, ltv_months: int, tz: str) -> dict[str, int]:
    """Per period frequency, the first local day number ``churn_periods`` needs for its
    rows from ``since``'s period on to come out as over all history: the day before that
    period (its ``mrr_start``/``customers_start`` are the previous period's last day), for
    months the ``ltv_months`` months before too (LTV averages their churn rates)."""
    at = pd.Series([since]).astype(TIME_DTYPE)
    day = int(local_day_numbers(at, tz)[0])
    month = int(local_month_numbers(at, tz)[0])
    year_first_month = month - month % 12
    first_day = local_day_numbers(
        month_starts(np.array([month - ltv_months, year_first_month]), tz).astype(TIME_DTYPE), tz
    )
    return {"D": day - 1, "MS": int(first_day[0]) - 1, "YS": int(first_day[1]) - 1}


def subscription_frames_from(
    totals: MrrTotals,
    settings: MetricsSettings,
    until: pd.Timestamp,
    since: pd.Timestamp | None = None,
) -> dict[str, pd.DataFrame]:
    """The subscription family's frames from its totals: what
    ``families.subscriptions.subscription_frames`` makes of ``compute_mrr`` over all history.

    ``since``: only the rows of the periods from ``since``'s on (of each frame's
    frequency; revenue cohorts whole), which is what an update rewrites: the period
    aggregations then run over the days they need only, not the whole day grid."""  # fmt: skip
    tz = settings.timezone
    reach = None if since is None else _reach_back(since, settings.ltv_months, tz)
    daily = daily_from(totals, until, tz, None if reach is None else min(reach.values()))
    trailing = _trailing_fn(totals, tz)

    def state(freq: str) -> MrrResult:
        part = daily
        if reach is not None:
            part = daily[local_day_numbers(daily["time"], tz) >= reach[freq]].reset_index(drop=True)
        return MrrResult(pd.DataFrame(), part, pd.DataFrame())

    def trimmed(frame: pd.DataFrame, freq: str) -> pd.DataFrame:
        if since is None or frame.empty:
            return frame
        floor = local_floor_at(since, freq, tz)
        return frame[(frame["time"] >= floor).to_numpy()].reset_index(drop=True)

    def churned(freq: str, _tz: str) -> pd.Series:
        got = totals.churned[freq]
        got.index = got.index.set_names(["product", "period"])
        return got

    def periods(freq: str, *args: int) -> pd.DataFrame:
        got = churn_periods(state(freq), freq, *args, tz=tz, until=until,
                            churned_from_start=churned, trailing=trailing)  # type: ignore[arg-type]  # fmt: skip
        return trimmed(got, freq)

    out = periods("D")
    if not out.empty:
        out["net_change"] = np.round(out["mrr_end"] - out["mrr_start"], 6)
    return {
        "mrr_daily": out,
        "customers_daily": out,
        "churn_monthly": periods("MS", settings.ltv_months),
        "churn_yearly": periods("YS"),
        "cohort_retention": revenue_retention_from(totals, until, tz),
    }
