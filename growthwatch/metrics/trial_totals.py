"""The trial family's state: per-product day totals that are sums over customers.

Why: a trial belongs to one customer (``trials.trial_table``: its start, conversion and end
come from that customer's events only), and ``trials_daily``/``trials_monthly`` are counts
of trials per (product, start day or month) plus the running sum of +1/-1 at each trial's
start and end day. So the same totals updated with the touched customers only (their
trials before the new events out, after them in) give the frames a full computation
gives, and the update's cost follows the customers touched and the products x days of
the grids, not the history.

Kept: per (product, local day number) ``started``, ``converted`` (by start day) and
``active`` (+1 at a trial's start day, -1 at its end day when it ends on a later day); per
product the first trial's day number (combined by minimum: trials are never removed).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import pandas as pd

from growthwatch.metrics._frame import (
    TIME_DTYPE,
    day_starts,
    local_day_numbers,
    local_month_numbers,
    month_starts,
)
from growthwatch.metrics.settings import MetricsSettings
from growthwatch.metrics.trials import (
    DAILY_COLUMNS,
    DAILY_COUNTS,
    MONTHLY_COLUMNS,
    MONTHLY_COUNTS,
    _finish,
    _rows,
    day_numbers_to_months,
    empty,
    month_first_day,
    trial_table,
)

_COLS = ("started", "converted", "active")


@dataclass(frozen=True)
class TrialTotals:
    counts: pd.DataFrame  # index (product, day), started/converted/active
    first: pd.Series  # product -> first start day number

    @classmethod
    def of(cls, events: pd.DataFrame, settings: MetricsSettings) -> TrialTotals:
        """The totals of the trials in ``events`` (any set of whole customers)."""
        tz = settings.timezone
        trials = trial_table(events, settings)
        if trials.empty:
            return cls.nothing()
        product = trials["product"].astype(object).to_numpy()
        s_day = local_day_numbers(trials["start"], tz)
        e_day = local_day_numbers(trials["end"], tz)
        conv = trials["converted_at"].notna().to_numpy().astype("int64")
        runs = e_day > s_day
        rows = pd.concat([
            pd.DataFrame({"product": product, "day": s_day, "started": 1, "converted": conv,
                          "active": runs.astype("int64")}),
            pd.DataFrame({"product": product[runs], "day": e_day[runs], "started": 0,
                          "converted": 0, "active": -1}),
        ], ignore_index=True)  # fmt: skip
        counts = rows.groupby(["product", "day"], sort=True)[list(_COLS)].sum().astype("int64")
        first = pd.Series(s_day, index=product).groupby(level=0).min().astype("int64")
        return cls(counts, first.sort_index())

    @classmethod
    def nothing(cls) -> TrialTotals:
        counts = pd.DataFrame({c: pd.Series(dtype="int64") for c in _COLS})
        counts.index = pd.MultiIndex.from_arrays([[], []], names=["product", "day"])
        return cls(counts, pd.Series(dtype="int64"))

    def split(self, tag: str) -> tuple[TrialTotals, TrialTotals]:
        """(the products named ``tag`` + name, renamed to name; the others): one
        ``of`` over two versions of the same customers, told apart by product, costs one
        call's overhead instead of two."""
        c_tagged = self.counts.index.get_level_values(0).astype(str).str.startswith(tag)
        f_tagged = self.first.index.astype(str).str.startswith(tag)
        mine = self.counts[np.asarray(c_tagged)]
        if len(mine):
            index = mine.index.remove_unused_levels()
            mine.index = index.set_levels(index.levels[0].astype(str).str.removeprefix(tag),
                                          level=0)  # fmt: skip
        first = self.first[np.asarray(f_tagged)]
        first.index = first.index.astype(str).str.removeprefix(tag)
        return (TrialTotals(mine, first),
                TrialTotals(self.counts[~np.asarray(c_tagged)], self.first[~np.asarray(f_tagged)]))  # fmt: skip

    def combined(self, parts: Iterable[tuple[int, TrialTotals]]) -> TrialTotals:
        """This state plus ``sign`` x each part."""
        counts, firsts = [self.counts], [self.first]
        for sign, part in parts:
            counts.append(part.counts * sign)
            if sign > 0:
                firsts.append(part.first)
        kept = [c for c in counts if len(c)]
        total = (pd.concat(kept).groupby(level=[0, 1], sort=True).sum().astype("int64")
                 if len(kept) > 1 else (kept[0] if kept else self.counts))  # fmt: skip
        total = total[(total.to_numpy() != 0).any(axis=1)]
        present = [f for f in firsts if len(f)]
        first = (pd.concat(present).groupby(level=0).min().astype("int64").sort_index()
                 if present else self.first)  # fmt: skip
        return TrialTotals(total, first)


def trial_frames_from(
    totals: TrialTotals, settings: MetricsSettings, until: pd.Timestamp,
    since: pd.Timestamp | None = None,
) -> dict[str, pd.DataFrame]:
    """``trials_daily`` and ``trials_monthly`` (as ``trials`` computes them over the whole
    history, with the grids to ``until``) from the totals; with ``since``, only the rows
    of its local day (month) on: what an update rewrites, without turning the whole day
    grid into rows first (the grids still sum all history)."""
    first = totals.first
    if first.empty:
        return {"trials_daily": empty(DAILY_COLUMNS), "trials_monthly": empty(MONTHLY_COLUMNS)}
    tz = settings.timezone
    days_n = settings.trial_conversion_days
    products = pd.Index(first.index)
    horizon_day = int(local_day_numbers(pd.Series([until]).astype(TIME_DTYPE), tz)[0])
    start_day = int(first.min())
    end_day = max(horizon_day, int(first.max()))
    n = end_day - start_day + 1
    c = totals.counts
    p = products.get_indexer(c.index.get_level_values("product"))
    day = c.index.get_level_values("day").to_numpy(dtype="int64") - start_day
    grid = np.zeros((len(products), n + 1, len(DAILY_COUNTS)), dtype="int64")
    inside = day <= n - 1  # an end after the grid: the reference clips it off the grid too
    np.add.at(grid, (p[inside], day[inside]), c[list(_COLS)].to_numpy()[inside])
    grid[:, :, 2] = np.cumsum(grid[:, :, 2], axis=1)
    k0 = 0  # the first grid day of the rows wanted
    if since is not None:
        since_day = int(local_day_numbers(pd.Series([since]).astype(TIME_DTYPE), tz)[0])
        k0 = min(max(since_day - start_day, 0), n)
    daily = _rows(grid[:, k0:n], DAILY_COUNTS, "_day", np.arange(start_day + k0, end_day + 1),
                  first)  # fmt: skip
    daily["time"] = day_starts(daily["_day"].to_numpy(), tz).to_numpy()
    closes = day_starts(daily["_day"].to_numpy() + days_n + 1, tz)
    daily = _finish(daily, closes, until, DAILY_COLUMNS)

    first_m = pd.Series(day_numbers_to_months(first.to_numpy(dtype="int64")), index=first.index)
    start_m = int(first_m.min())
    end_m = max(int(day_numbers_to_months(np.array([horizon_day]))[0]), int(first_m.max()))
    months = day_numbers_to_months(day[inside] + start_day) - start_m
    grid_m = np.zeros((len(products), end_m - start_m + 1, len(MONTHLY_COUNTS)), dtype="int64")
    starts = c[["started", "converted"]].to_numpy()[inside]
    np.add.at(grid_m, (p[inside], months), starts)
    j0 = 0
    if since is not None:
        since_m = int(local_month_numbers(pd.Series([since]).astype(TIME_DTYPE), tz)[0])
        j0 = min(max(since_m - start_m, 0), end_m - start_m + 1)
    monthly = _rows(grid_m[:, j0:], MONTHLY_COUNTS, "_month", np.arange(start_m + j0, end_m + 1),
                    first_m)  # fmt: skip
    monthly["time"] = month_starts(monthly["_month"].to_numpy(), tz).to_numpy()
    last_day = month_first_day(monthly["_month"].to_numpy() + 1) - 1
    closes_m = day_starts(last_day + days_n + 1, tz)
    monthly = _finish(monthly, closes_m, until, MONTHLY_COLUMNS)
    return {"trials_daily": daily, "trials_monthly": monthly}
