"""Cohort retention matrices: logo retention by signup month, revenue retention by
first-payment month.

* Logo: the cohort is the month of a user's first ``signup``; a member counts at age k if
  they have an ``active_use`` event in calendar month cohort + k ("on" counting, as
  Mixpanel and Amplitude do), so a user who skips a month and returns counts again.
* Revenue: the cohort is the month of a customer's first paid MRR (a ``new`` movement);
  at age k, the cohort's MRR at the end of month cohort + k (reporting currency, valued as
  ``mrr_daily`` values it) over its MRR at the end of the cohort month, plus how many members are
  still paying. Expansion can push it above 1 (net revenue retention of a cohort).

Matrix shape for stores and the dashboard: one row per (product, basis, cohort month, age)
with ``time`` = cohort month and ``age`` (months, a tag of at most a few dozen values), so
the heatmap panel reads ``SELECT rate FROM cohort_retention WHERE product='x' AND
basis='logo' GROUP BY age``. Every cell of the triangle up to the last month is present
(zeros included), so a recompute always overwrites every cell it owns.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from growthwatch.events import EventType
from growthwatch.metrics._frame import (
    TIME_DTYPE,
    clean,
    empty,
    local_month_numbers,
    month_starts,
    ratio,
    units,
    with_portfolio,
)
from growthwatch.metrics.mrr import MrrResult

COLUMNS = {
    "time": TIME_DTYPE,  # cohort month
    "period": TIME_DTYPE,  # calendar month of the cell (cohort + age), for incremental updates
    "product": "str",
    "basis": "str",
    "age": "str",
    "cohort_size": "int64",
    "retained": "int64",
    "mrr": "float64",
    "rate": "float64",
}


def _month_numbers(ts: pd.Series, tz: str = "UTC") -> np.ndarray:
    """Calendar months (of the reporting timezone) since 1970-01."""
    return local_month_numbers(ts, tz)


def _triangle(
    products: np.ndarray, cohorts: np.ndarray, last: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """All (product, cohort, age) cells with cohort + age <= last."""
    ages = np.maximum(last - cohorts + 1, 0)
    p = np.repeat(products, ages)
    c = np.repeat(cohorts, ages)
    starts = np.repeat(np.cumsum(ages) - ages, ages)
    a = np.arange(int(ages.sum())) - starts
    return p, c, a


def logo_retention(
    events: pd.DataFrame, until: pd.Timestamp | None = None, tz: str = "UTC"
) -> pd.DataFrame:
    """Signup-month cohorts x months since signup: members active that month."""
    types = (EventType.SIGNUP.value, EventType.ACTIVE_USE.value)
    ev = clean(events, types, ordered=False)  # membership and activity: order is irrelevant
    ev = ev[ev["subject"].notna()]
    signups = ev[ev["type"] == EventType.SIGNUP.value]
    if signups.empty:
        return empty(COLUMNS)
    month = _month_numbers(ev["ts"], tz)
    last = int(month.max())
    if until is not None:
        last = max(last, int(_month_numbers(pd.Series([until]).astype(TIME_DTYPE), tz)[0]))
    is_signup = (ev["type"] == EventType.SIGNUP.value).to_numpy()
    product_codes, product_names = pd.factorize(ev["product"])
    user = pd.factorize(ev["subject"])[0]  # integers: merges and de-duplication are cheap
    product = np.asarray(product_names, dtype=object)[product_codes]
    members = (
        pd.DataFrame({"product": product[is_signup], "user": user[is_signup],
                      "cohort": month[is_signup]})
        .groupby(["product", "user"], as_index=False)["cohort"].min()
    )  # fmt: skip
    active = pd.DataFrame(
        {"product": product[~is_signup], "user": user[~is_signup], "month": month[~is_signup]}
    ).drop_duplicates()  # fmt: skip
    hits = active.merge(members, on=["product", "user"])
    hits = hits[hits["month"] >= hits["cohort"]]
    retained = hits.groupby(["product", "cohort", "month"]).size()
    sizes = members.groupby(["product", "cohort"]).size()
    return logo_cells(sizes, retained, last, tz)


def logo_cells(
    sizes: pd.Series, retained: pd.Series, last: int, tz: str = "UTC", from_month: int | None = None
) -> pd.DataFrame:
    """The logo retention frame from its two aggregates, which the pandas definition
    (``logo_retention``) and the SQL one (``growthwatch.metrics.sql``) both produce:
    ``sizes`` (product, cohort) -> members, ``retained`` (product, cohort, month) -> members
    active that month; every cell of the triangle up to month ``last`` (only those of the
    months from ``from_month`` on, when given), portfolio rows and rates added."""
    if sizes.empty:
        return empty(COLUMNS)
    p, c, a = _triangle(
        sizes.index.get_level_values(0).to_numpy(), sizes.index.get_level_values(1).to_numpy(),
        last,
    )  # fmt: skip
    if from_month is not None:
        later = c + a >= from_month
        p, c, a = p[later], c[later], a[later]
    cells = pd.MultiIndex.from_arrays([p, c, c + a])
    out = pd.DataFrame(
        {
            "product": p,
            "cohort": c,
            "age": a,
            "cohort_size": sizes.reindex(pd.MultiIndex.from_arrays([p, c])).to_numpy(),
            "retained": retained.reindex(cells, fill_value=0).to_numpy(),
            "mrr": np.nan,
        }
    )
    out = with_portfolio(out, ["cohort", "age"], ["cohort_size", "retained"])
    out["rate"] = ratio(out["retained"], out["cohort_size"])
    return _finish(out, "logo", tz)


def revenue_retention(
    mrr: MrrResult, until: pd.Timestamp | None = None, tz: str = "UTC"
) -> pd.DataFrame:
    """First-payment-month cohorts x months since: MRR kept (and paying members)."""
    firsts = mrr.movements[mrr.movements["kind"] == "new"]
    if firsts.empty:
        return empty(COLUMNS)
    members = (
        firsts.assign(cohort=_month_numbers(firsts["time"], tz))
        .groupby(["product", "customer"], as_index=False)["cohort"].min()
    )  # fmt: skip
    changes = mrr.changes
    months_all = _month_numbers(changes["time"], tz)
    last = int(months_all.max())
    if until is not None:
        last = max(last, int(_month_numbers(pd.Series([until]).astype(TIME_DTYPE), tz)[0]))
    first_month = int(members["cohort"].min())
    n = last - first_month + 1

    # MRR per (product, cohort) at each month end: the running sum of the members'
    # reporting-currency changes (movements and FX revaluations), so it agrees with mrr_daily.
    ch = changes.assign(month=months_all).merge(members, on=["product", "customer"])
    monthly = ch.groupby(["product", "cohort", "month"])["delta"].sum()
    keys = monthly.index.droplevel("month").unique()
    key_pos = keys.get_indexer(monthly.index.droplevel("month"))
    grid = np.zeros((len(keys), n + 1), dtype="int64")
    month_pos = np.clip(monthly.index.get_level_values("month").to_numpy() - first_month, 0, n)
    np.add.at(grid, (key_pos, month_pos), monthly.to_numpy())
    cohort_mrr = pd.DataFrame(np.cumsum(grid, axis=1)[:, :n], index=keys)

    # Paying members at each month end, from the customers' movements.
    mv = mrr.movements.merge(members, on=["product", "customer"])
    mv = mv.assign(month=_month_numbers(mv["time"], tz))
    state = mv.groupby(["product", "customer", "month"], sort=True).agg(
        cohort=("cohort", "first"), paying=("paid_after", "last")
    )
    state["change"] = state["paying"].astype("int64") - state.groupby(level=[0, 1])[
        "paying"
    ].shift(1, fill_value=False).astype("int64")
    paying = state.groupby(["product", "cohort", "month"])["change"].sum()
    sizes = members.groupby(["product", "cohort"]).size()
    p, c, a = _triangle(
        sizes.index.get_level_values(0).to_numpy(), sizes.index.get_level_values(1).to_numpy(),
        last,
    )  # fmt: skip
    paying_grid = (
        paying.reindex(pd.MultiIndex.from_arrays([p, c, c + a]), fill_value=0)
        .groupby(level=[0, 1]).cumsum()
    )  # fmt: skip
    mrr_cells = cohort_mrr.reindex(pd.MultiIndex.from_arrays([p, c])).to_numpy()
    col = np.clip(c + a - first_month, 0, n - 1)
    out = pd.DataFrame(
        {
            "product": p,
            "cohort": c,
            "age": a,
            "cohort_size": sizes.reindex(pd.MultiIndex.from_arrays([p, c])).to_numpy(),
            "retained": paying_grid.to_numpy(),
            "mrr": mrr_cells[np.arange(len(p)), col],
        }
    )
    out = with_portfolio(out, ["cohort", "age"], ["cohort_size", "retained", "mrr"])
    base = out[out["age"] == 0].set_index(["product", "cohort"])["mrr"]
    initial = base.reindex(pd.MultiIndex.from_arrays([out["product"], out["cohort"]])).to_numpy()
    out["rate"] = ratio(out["mrr"], initial)
    out["mrr"] = units(out["mrr"].to_numpy())
    return _finish(out, "revenue", tz)


def _finish(out: pd.DataFrame, basis: str, tz: str = "UTC") -> pd.DataFrame:
    cohort = out["cohort"].to_numpy(dtype="int64")
    age = out["age"].to_numpy(dtype="int64")
    frame = pd.DataFrame(
        {
            "time": month_starts(cohort, tz).array,
            "period": month_starts(cohort + age, tz).array,
            "product": out["product"].astype(str).to_numpy(),
            "basis": basis,
            "age": age.astype(str),
            "cohort_size": out["cohort_size"].to_numpy(dtype="int64"),
            "retained": out["retained"].to_numpy(dtype="int64"),
            "mrr": out["mrr"].to_numpy(dtype="float64"),
            "rate": out["rate"].to_numpy(dtype="float64"),
        }
    )
    return frame.sort_values(["product", "time", "period"], kind="stable").reset_index(drop=True)
