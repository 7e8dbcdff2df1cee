"""Customers and churn over periods: churn rates, GRR/NRR, ARPA and LTV.

Built on the netted customer movements of ``growthwatch.metrics.mrr`` so that "churned"
means exactly what the MRR movements say. Definitions (METRICS.md):

* customer churn rate = customers active at the period start who churned in the period /
  customers active at the start. A customer who joins and churns inside the same period is
  in neither number, so a busy trial-to-paid-to-cancel week cannot push the rate above 1.
* gross MRR churn = (churn + contraction) / MRR at start; net MRR churn = (churn +
  contraction - expansion - reactivation) / MRR at start; GRR = 1 - gross, NRR = 1 - net.
* ARPA = MRR / active customers at the period end.
* ARR = 12 x MRR at the period end (the annualised run rate, not a year's revenue).
* ASP (average sale price) = new MRR / new customers of the period: what a new customer
  pays per month when they start. Undefined (NaN) in a period without a new customer.
* Quick ratio = (new + expansion + reactivation) / (contraction + churn): MRR gained per
  unit lost. Undefined (NaN) when nothing was lost, rather than infinite. Pauses and
  resumes are in neither side (they are not churn, METRICS.md).
* LTV = ARPA / mean monthly customer churn rate of the previous ``ltv_months`` complete
  months (as many as exist, at least one). With a mean churn of 0 it is undefined (NaN, not
  written) rather than infinite, which is the guard mature products use.

Rates are NaN (undefined) when their denominator is 0 (zero-customer periods); NaN fields
are not written to the stores, so a dashboard shows a gap, never a fake 0 %.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd

from growthwatch.metrics._frame import (
    PORTFOLIO,
    TIME_DTYPE,
    local_floor,
    local_month_numbers,
    month_starts,
    naive_utc,
    ratio,
    units,
    with_portfolio,
)
from growthwatch.metrics.mrr import MONEY, MrrResult

FLOWS = ("new", "expansion", "contraction", "churn", "reactivation", "paused", "resumed",
         "fx_impact", "churn_voluntary", "churn_delinquent")  # fmt: skip
COUNT_FLOWS = ("new_customers", "reactivated_customers", "churned_customers", "cancellations",
               "churned_delinquent")  # fmt: skip
RATE_FIELDS = (
    "customer_churn_rate",
    "gross_mrr_churn_rate",
    "net_mrr_churn_rate",
    "grr",
    "nrr",
    "arpa",
)


def churn_periods(
    mrr: MrrResult,
    freq: str = "MS",
    ltv_months: int = 6,
    *,
    tz: str = "UTC",
    until: pd.Timestamp | None = None,
    churned_from_start: Callable[[str, str], pd.Series] | None = None,
    trailing: Callable[[pd.DataFrame, str, pd.DataFrame], tuple[np.ndarray, np.ndarray]]
    | None = None,
) -> pd.DataFrame:
    """Per product (and ``all``) and period (``freq`` "D", "MS" or "YS", in ``tz``), in units.

    Columns: time (period start), product, customers_start, customers_end, churned (from the
    start population), mrr_start, mrr_end, the movement sums, the paused stock, the rates
    and, monthly, ltv. Months and years also get ``partial`` (1: the period started before
    the data or ends after ``until``) and the trailing-12-month cohort NRR/GRR.
    """
    daily = mrr.daily
    if daily.empty:
        return pd.DataFrame(columns=["time", "product"])
    frame = daily.assign(period=local_floor(daily["time"], freq, tz))
    grouped = frame.groupby(["product", "period"], sort=True)
    out = grouped[list(FLOWS) + list(COUNT_FLOWS)].sum()
    ends = grouped[["mrr", "active", "paused_mrr", "paused_customers"]].last()
    out["mrr_end"] = ends["mrr"]
    out["customers_end"] = ends["active"]
    out["paused_mrr"] = ends["paused_mrr"]
    out["customers_paused"] = ends["paused_customers"]
    out["mrr_start"] = ends["mrr"].groupby(level="product").shift(1, fill_value=0)
    out["customers_start"] = ends["active"].groupby(level="product").shift(1, fill_value=0)
    # segments count a customer's churn where it left, with the product's start population
    count = churned_from_start or (lambda f, z: _churned_from_start(mrr.movements, f, z))
    churned = count(freq, tz)
    out["churned"] = churned.reindex(out.index, fill_value=0)
    first = grouped["time"].min().groupby(level="product").min()
    out = out.reset_index().rename(columns={"period": "time"})
    sums = [*FLOWS, *COUNT_FLOWS, "mrr_end", "customers_end", "mrr_start", "customers_start",
            "churned", "paused_mrr", "customers_paused"]  # fmt: skip
    out = with_portfolio(out, ["time"], sums)
    out = _rates(out)
    if freq == "MS":
        out["ltv"] = _ltv(out, ltv_months)
    if freq in ("MS", "YS"):
        first[PORTFOLIO] = first.min()
        last_day = daily["time"].max() + pd.Timedelta(days=1)
        horizon = last_day if until is None else until
        out["partial"] = _partial(out, freq, tz, first, horizon)
        # the subscription family's totals give the cohort sums without the changes
        nrr, grr = (_trailing_12m(mrr, out, freq, tz) if trailing is None
                    else trailing(out, freq, daily))  # fmt: skip
        out["nrr_t12m"], out["grr_t12m"] = nrr, grr
    out["arr"] = out["mrr_end"] * 12
    money = [*FLOWS, "mrr_end", "mrr_start", "paused_mrr", "arr"]
    for col in money:
        out[col] = units(out[col].to_numpy())
    out["arpa"] = np.round(out["arpa"], 6)
    out["asp"] = np.round(out["asp"], 6)
    if "ltv" in out:
        out["ltv"] = np.round(out["ltv"], 6)
    out["time"] = out["time"].astype(TIME_DTYPE)
    return out.sort_values(["product", "time"], kind="stable").reset_index(drop=True)


def _partial(
    out: pd.DataFrame, freq: str, tz: str, first: pd.Series, horizon: pd.Timestamp
) -> np.ndarray:
    """1 where a period is not complete: it starts before the product's first day (a first
    month or year that starts mid-way) or ends after ``horizon`` (the current month, a year
    to date)."""
    months = local_month_numbers(out["time"], tz)
    step = 1 if freq == "MS" else 12
    period_end = naive_utc(month_starts(months + step, tz))
    begins = naive_utc(pd.Series(out["product"].map(first).to_numpy()).astype(TIME_DTYPE))
    starts_late = naive_utc(out["time"].astype(TIME_DTYPE)) < begins
    ends_late = period_end > np.datetime64(horizon.tz_convert("UTC").tz_localize(None), "us")
    return (starts_late | ends_late).astype("int64")


def _trailing_12m(
    mrr: MrrResult, out: pd.DataFrame, freq: str, tz: str
) -> tuple[np.ndarray, np.ndarray]:
    """Cohort-based trailing-12-month NRR and GRR at each period's last month end.

    The cohort is the customers paying at the end of the month 12 months earlier; NRR = their
    MRR now / their MRR then, GRR = the same with each customer capped at its MRR then
    (so expansion cannot hide churn). Undefined (NaN) without 12 months of history or with
    no paying customer then. Customer MRR is the running sum of ``mrr.changes``, which adds
    up to ``mrr_daily``'s stock.
    """
    nrr = np.full(len(out), np.nan)
    grr = np.full(len(out), np.nan)
    ch = mrr.changes
    if ch.empty or out.empty:
        return nrr, grr
    month = local_month_numbers(ch["time"], tz)
    period_month = local_month_numbers(out["time"], tz)
    if freq == "YS":  # a year's figure is the one at its last month with data
        period_month = period_month + 11
    m0 = int(month.min())
    m1 = int(max(month.max(), local_month_numbers(mrr.daily["time"], tz).max()))
    n = m1 - m0 + 1
    period_month = np.minimum(period_month, m1)
    totals: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}
    for product, part in ch.groupby("product", sort=False):
        pair = pd.factorize(part["customer"])[0]
        grid = np.zeros((int(pair.max()) + 1, n), dtype="int64")
        np.add.at(grid, (pair, month[part.index.to_numpy()] - m0), part["delta"].to_numpy())
        stock = np.cumsum(grid, axis=1)
        then, now = stock[:, :-12], stock[:, 12:]
        paying = then > 0
        den = np.where(paying, then, 0).sum(axis=0)
        num = np.where(paying, now, 0).sum(axis=0)
        cap = np.where(paying, np.minimum(now, then), 0).sum(axis=0)
        totals[str(product)] = (den, num, cap)
    if totals:
        den_all, num_all, cap_all = (sum(t[i] for t in totals.values()) for i in range(3))
        totals[PORTFOLIO] = (den_all, num_all, cap_all)  # type: ignore[assignment]
    products = out["product"].astype(str).to_numpy()
    for i, (product, pm) in enumerate(zip(products, period_month, strict=True)):
        k = int(pm) - m0 - 12
        got = totals.get(product)
        if got is None or k < 0 or k >= len(got[0]) or got[0][k] <= 0:
            continue
        nrr[i] = got[1][k] / got[0][k]
        grr[i] = got[2][k] / got[0][k]
    return nrr, grr


# below this many movements the integer-code count beats the grouped one (a webhook's
# few customers: about 3 ms against 15 for the three frequencies); above it the grouped
# one is the faster (a full build's 200,000: 146 ms against 200)
SMALL_MOVEMENTS = 10_000


def _churned_from_start(movements: pd.DataFrame, freq: str, tz: str = "UTC") -> pd.Series:
    """Customers paying at the period start (their first movement in the period starts
    from paying) with at least one churn movement in the period, per (product, period),
    sorted. Two ways to the same counts, chosen by size (``SMALL_MOVEMENTS``)."""
    if movements.empty:
        return pd.Series(dtype="int64")
    if len(movements) < SMALL_MOVEMENTS:
        return _churned_small(movements, freq, tz)
    return _churned_grouped(movements, freq, tz)


def _churned_grouped(movements: pd.DataFrame, freq: str, tz: str) -> pd.Series:
    """``_churned_from_start`` by a named ``groupby().agg`` (the faster on many rows)."""
    m = movements.assign(
        period=local_floor(movements["time"], freq, tz), is_churn=movements["kind"] == "churn"
    )
    keys = ["product", "period", "customer"]
    per = m.groupby(keys, sort=False).agg(
        at_start=("paid_before", "first"), churned=("is_churn", "max")
    )
    hit = per[per["at_start"] & per["churned"]]
    return hit.groupby(level=["product", "period"]).size().astype("int64")


def _churned_small(movements: pd.DataFrame, freq: str, tz: str) -> pd.Series:
    """``_churned_from_start`` by integer codes and ``np.unique``: the named aggregation's
    fixed cost (about 4 ms a call, three calls per update) dominated a webhook's handful
    of movements."""
    period = local_floor(movements["time"], freq, tz)
    p_code, p_names = pd.factorize(movements["product"], sort=True)
    t_code, t_names = pd.factorize(period, sort=True)
    c_code = pd.factorize(movements["customer"])[0]
    known = (p_code >= 0) & (t_code >= 0) & (c_code >= 0)  # groupby leaves NA keys out
    # (product, period) pairs in sorted order, then customers within them
    slot = p_code[known].astype("int64") * len(t_names) + t_code[known]
    slots, slot_of = np.unique(slot, return_inverse=True)
    customers = max(int(c_code.max()) + 1, 1)
    key = slot_of.reshape(-1).astype("int64") * customers + c_code[known]
    groups, first, group_of = np.unique(key, return_index=True, return_inverse=True)
    at_start = movements["paid_before"].to_numpy(dtype=bool)[known][first]
    is_churn = (movements["kind"].to_numpy()[known] == "churn").astype("int64")
    churned = np.bincount(group_of.reshape(-1), weights=is_churn, minlength=len(groups)) > 0
    hits = np.bincount(groups[at_start & churned] // customers, minlength=len(slots))
    hit = hits > 0
    index = pd.MultiIndex.from_arrays(
        [p_names.take(slots[hit] // len(t_names)), t_names.take(slots[hit] % len(t_names))],
        names=["product", "period"],
    )
    return pd.Series(hits[hit].astype("int64"), index=index)


def _rates(out: pd.DataFrame) -> pd.DataFrame:
    start = out["mrr_start"].to_numpy(dtype="float64")
    lost = (out["churn"] + out["contraction"]).to_numpy(dtype="float64")
    gained = (out["expansion"] + out["reactivation"]).to_numpy(dtype="float64")
    out["customer_churn_rate"] = ratio(out["churned"], out["customers_start"])
    out["gross_mrr_churn_rate"] = ratio(lost, start)
    out["net_mrr_churn_rate"] = ratio(lost - gained, start)
    out["grr"] = 1 - out["gross_mrr_churn_rate"]
    out["nrr"] = 1 - out["net_mrr_churn_rate"]
    out["arpa"] = ratio(out["mrr_end"], out["customers_end"]) / 1_000_000
    out["asp"] = ratio(out["new"], out["new_customers"]) / 1_000_000
    out["quick_ratio"] = ratio(gained + out["new"].to_numpy(dtype="float64"), lost)
    return out


def _ltv(out: pd.DataFrame, months: int) -> np.ndarray:
    """ARPA over the mean customer churn rate of the ``months`` months before (per
    product). One grouped shift and one grouped rolling mean, not a Python function per
    product: the segment family's keys are hundreds of products to it."""
    ordered = out.sort_values(["product", "time"], kind="stable")
    by = ordered["product"].to_numpy(dtype=object)
    before = ordered["customer_churn_rate"].groupby(by, sort=False).shift(1)
    rolled = before.groupby(by, sort=False).rolling(months, min_periods=1).mean()
    mean_rate = rolled.droplevel(0).reindex(ordered.index)
    ltv = ratio(ordered["arpa"], mean_rate)
    ltv[~np.isfinite(mean_rate.to_numpy(dtype="float64"))] = np.nan
    return pd.Series(ltv, index=ordered.index).reindex(out.index).to_numpy()


__all__ = ["MONEY", "RATE_FIELDS", "churn_periods"]
