"""User lifecycle per day and per ISO week: new, returning, resurrected, dormant users.

Definitions (PostHog's and Amplitude's lifecycle; docs/metrics.md, "Lifecycle"):

* Activity is what DAU counts: ``active_use`` events with a subject (engagement.py).
  Periods are local days, or ISO weeks (Monday to Sunday), of the reporting timezone.
* Each user active in period t is exactly one of: ``new`` (their first activity ever is
  in t), ``returning`` (active in t - 1 too) or ``resurrected`` (not active in t - 1, but
  active at some time before it). So new + returning + resurrected = ``active`` (the
  period's distinct active users).
* ``dormant`` in t: users active in t - 1 and not in t, so dormant(t) = active(t - 1) -
  returning(t). PostHog draws it as a negative bar; it is stored as a positive count.
* Per product; the ``all`` rows sum the products (a user of two products counts in each,
  as ``product_daily``'s portfolio DAU does).
* Rows run from the product's first active period to the period holding ``until``; a
  period without activity still has its row (all zeros, or only dormant users).

``firsts`` (per product and subject, the first activity instant in the whole history) lets
a caller pass only the events from one period before the buckets it wants: "active before
t - 1" then comes from ``firsts`` instead of the full history. Computed in one pass over
the distinct (product, user, period) triples sorted by user: the previous triple of the
same user says returning or resurrected, the next one says whether they go dormant.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from growthwatch.events import EventType
from growthwatch.metrics._frame import (
    TIME_DTYPE,
    clean,
    day_starts,
    empty,
    local_day_numbers,
    with_portfolio,
)
from growthwatch.metrics.settings import MetricsSettings

TYPES = (EventType.ACTIVE_USE.value,)
COUNTS = ("active", "new", "returning", "resurrected", "dormant")
COLUMNS = {"time": TIME_DTYPE, "product": "str", **dict.fromkeys(COUNTS, "int64")}
PERIODS = ("day", "week")
# 1970-01-01 was a Thursday: day + 3 counts from the Monday before it.
_MONDAY_SHIFT = 3


def period_numbers(day_numbers: np.ndarray, period: str) -> np.ndarray:
    """Local day numbers to period numbers: days stay, weeks are ISO (Monday) weeks."""
    days = np.asarray(day_numbers, dtype="int64")
    if period == "day":
        return days
    if period == "week":
        return (days + _MONDAY_SHIFT) // 7
    raise ValueError(f"unknown lifecycle period {period!r} (one of {', '.join(PERIODS)})")


def period_first_days(periods: np.ndarray, period: str) -> np.ndarray:
    """The first local day number of each period number."""
    p = np.asarray(periods, dtype="int64")
    return p if period == "day" else p * 7 - _MONDAY_SHIFT


def lifecycle(
    events: pd.DataFrame,
    settings: MetricsSettings,
    period: str = "day",
    until: pd.Timestamp | None = None,
    firsts: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """Per product (and ``all``) and period: active, new, returning, resurrected, dormant.

    ``firsts``: columns product, subject, first (the first activity instant in the whole
    history); without it the first activity is taken from ``events``. It also starts each
    product's rows at its first period in the whole history, as a full computation would.
    """
    tz = settings.timezone
    ev = clean(events, TYPES, ordered=False)  # distinct user-periods: order is irrelevant
    ev = ev[ev["subject"].notna()]
    has_firsts = firsts is not None and len(firsts) > 0
    if ev.empty and not has_firsts:
        return empty(COLUMNS)
    k = period_numbers(local_day_numbers(ev["ts"].astype(TIME_DTYPE), tz), period)
    triples = pd.DataFrame(
        {"product": ev["product"].astype(str).to_numpy(dtype=object),
         "subject": ev["subject"].astype(str).to_numpy(dtype=object), "k": k}
    ).drop_duplicates()  # fmt: skip
    known_start = pd.Series(dtype="int64")
    if firsts is not None and has_firsts:
        known = pd.DataFrame(
            {"product": firsts["product"].astype(str).to_numpy(dtype=object),
             "subject": firsts["subject"].astype(str).to_numpy(dtype=object),
             "_first": period_numbers(local_day_numbers(
                 pd.Series(firsts["first"].to_numpy()).astype(TIME_DTYPE), tz), period)}
        )  # fmt: skip
        triples = triples.merge(known, on=["product", "subject"], how="left")
        known_start = known.groupby("product")["_first"].min()
    else:
        triples["_first"] = np.nan
    own_first = triples.groupby(["product", "subject"])["k"].transform("min")
    triples["_first"] = np.fmin(triples["_first"].to_numpy(dtype="float64"), own_first)
    triples = triples.sort_values(["product", "subject", "k"], kind="stable")
    products = pd.Index(sorted({*triples["product"].unique(), *known_start.index}))
    p = products.get_indexer(triples["product"])
    user = pd.factorize(triples["subject"])[0]
    kk = triples["k"].to_numpy(dtype="int64")
    first = triples["_first"].to_numpy(dtype="int64")
    same_prev = np.zeros(len(kk), dtype=bool)
    same_prev[1:] = (p[1:] == p[:-1]) & (user[1:] == user[:-1])
    prev = np.full(len(kk), np.iinfo("int64").min)
    prev[1:][same_prev[1:]] = kk[:-1][same_prev[1:]]
    same_next = np.zeros(len(kk), dtype=bool)
    same_next[:-1] = same_prev[1:]
    nxt = np.full(len(kk), np.iinfo("int64").max)
    nxt[:-1][same_next[:-1]] = kk[1:][same_next[:-1]]

    is_new = kk == first
    returning = prev == kk - 1
    resurrected = ~is_new & ~returning
    dormant_next = nxt != kk + 1  # not active in the next period: dormant there
    flags = pd.DataFrame({"product": products[p], "k": kk, "active": 1,
                          "new": is_new.astype("int64"), "returning": returning.astype("int64"),
                          "resurrected": resurrected.astype("int64"), "dormant": 0})  # fmt: skip
    gone = pd.DataFrame({"product": products[p][dormant_next], "k": kk[dormant_next] + 1,
                         **dict.fromkeys(COUNTS, 0), "dormant": 1})  # fmt: skip
    counts = pd.concat([flags, gone[flags.columns]], ignore_index=True)
    counts = counts.groupby(["product", "k"], as_index=False, sort=True)[list(COUNTS)].sum()
    return from_counts(counts, known_start, settings, period, until)


def from_counts(
    counts: pd.DataFrame,
    known_start: pd.Series,
    settings: MetricsSettings,
    period: str,
    until: pd.Timestamp | None,
) -> pd.DataFrame:
    """The rows from per (product, period number ``k``) counts: ``COUNTS``' columns, a
    user's dormancy counted in the period after their last active one (as
    ``sql/activity.lifecycle_counts`` returns them). Each product's rows run from its first
    active period (``known_start``: product -> period number, over the whole history; or
    its first counted one) to the period holding ``until`` (or the last active one)."""
    tz = settings.timezone
    active = counts[counts["active"] > 0]
    if active.empty and known_start.empty:
        return empty(COLUMNS)
    ends = [int(active["k"].max())] if len(active) else []
    if until is not None:
        until_day = local_day_numbers(pd.Series([until]).astype(TIME_DTYPE), tz)
        ends.append(int(period_numbers(until_day, period)[0]))
    start_of = pd.concat([active.groupby("product")["k"].min(), known_start]).groupby(level=0).min()
    products = pd.Index(sorted({*active["product"].unique(), *start_of.index}))
    starts = start_of.reindex(products).to_numpy(dtype="int64")
    horizon = max([*ends, int(starts.max())])
    lo = int(starts.min())
    n = horizon - lo + 1
    grid = np.zeros((len(products), n, len(COUNTS)), dtype="int64")
    inside = counts[(counts["k"] >= lo) & (counts["k"] <= horizon)
                    & counts["product"].isin(products)]  # fmt: skip
    rows = products.get_indexer(inside["product"])
    cols = inside["k"].to_numpy(dtype="int64") - lo
    grid[rows, cols, :] = inside[list(COUNTS)].to_numpy(dtype="int64")
    numbers = np.arange(lo, horizon + 1)
    out = pd.DataFrame(grid.reshape(-1, len(COUNTS)), columns=list(COUNTS)).assign(
        _k=np.tile(numbers, len(products)),
        product=np.repeat(np.asarray(products, dtype=object), n),
        _start=np.repeat(starts, n),
    )
    out = out[out["_k"] >= out["_start"]].drop(columns="_start")
    out = with_portfolio(out, ["_k"], list(COUNTS))
    out["time"] = day_starts(period_first_days(out["_k"].to_numpy(), period), tz).array
    out = out.sort_values(["product", "time"], kind="stable")
    return out[list(COLUMNS)].astype(COLUMNS).reset_index(drop=True)
