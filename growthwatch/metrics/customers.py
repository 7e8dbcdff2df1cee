"""Customers and churn over periods: churn rates, GRR/NRR, ARPA and LTV.

Built on the netted customer movements of ``growthwatch.metrics.mrr`` so that "churned"
means exactly what the MRR movements say. Definitions (METRICS.md):

* customer churn rate = customers active at the period start who churned in the period /
  customers active at the start. A customer who joins and churns inside the same period is
  in neither number, so a busy trial-to-paid-to-cancel week cannot push the rate above 1.
* gross MRR churn = (churn + contraction) / MRR at start; net MRR churn = (churn +
  contraction - expansion - reactivation) / MRR at start; GRR = 1 - gross, NRR = 1 - net.
* ARPA = MRR / active customers at the period end.
* LTV = ARPA / mean monthly customer churn rate of the previous ``ltv_months`` complete
  months (as many as exist, at least one). With a mean churn of 0 it is undefined (NaN, not
  written) rather than infinite, which is the guard mature products use.

Rates are NaN (undefined) when their denominator is 0 (zero-customer periods); NaN fields
are not written to the stores, so a dashboard shows a gap, never a fake 0 %.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from growthwatch.metrics._frame import TIME_DTYPE, period_floor, ratio, units, with_portfolio
from growthwatch.metrics.mrr import MONEY, MrrResult

FLOWS = ("new", "expansion", "contraction", "churn", "reactivation", "fx_impact")
COUNT_FLOWS = ("new_customers", "reactivated_customers", "churned_customers", "cancellations")
RATE_FIELDS = (
    "customer_churn_rate",
    "gross_mrr_churn_rate",
    "net_mrr_churn_rate",
    "grr",
    "nrr",
    "arpa",
)


def churn_periods(mrr: MrrResult, freq: str = "MS", ltv_months: int = 6) -> pd.DataFrame:
    """Per product (and ``all``) and period (``freq`` "D", "MS" or "YS"), in units.

    Columns: time (period start), product, customers_start, customers_end, churned (from the
    start population), mrr_start, mrr_end, the movement sums, the rates and, monthly, ltv.
    """
    daily = mrr.daily
    if daily.empty:
        return pd.DataFrame(columns=["time", "product"])
    frame = daily.assign(period=period_floor(daily["time"], freq))
    grouped = frame.groupby(["product", "period"], sort=True)
    out = grouped[list(FLOWS) + list(COUNT_FLOWS)].sum()
    ends = grouped[["mrr", "active"]].last()
    out["mrr_end"] = ends["mrr"]
    out["customers_end"] = ends["active"]
    out["mrr_start"] = ends["mrr"].groupby(level="product").shift(1, fill_value=0)
    out["customers_start"] = ends["active"].groupby(level="product").shift(1, fill_value=0)
    out["churned"] = _churned_from_start(mrr.movements, freq).reindex(out.index, fill_value=0)
    out = out.reset_index().rename(columns={"period": "time"})
    sums = [*FLOWS, *COUNT_FLOWS, "mrr_end", "customers_end", "mrr_start", "customers_start",
            "churned"]  # fmt: skip
    out = with_portfolio(out, ["time"], sums)
    out = _rates(out)
    if freq == "MS":
        out["ltv"] = _ltv(out, ltv_months)
    money = [*FLOWS, "mrr_end", "mrr_start"]
    for col in money:
        out[col] = units(out[col].to_numpy())
    out["arpa"] = np.round(out["arpa"], 6)
    if "ltv" in out:
        out["ltv"] = np.round(out["ltv"], 6)
    out["time"] = out["time"].astype(TIME_DTYPE)
    return out.sort_values(["product", "time"], kind="stable").reset_index(drop=True)


def _churned_from_start(movements: pd.DataFrame, freq: str) -> pd.Series:
    """Customers paying at the period start (their first movement in the period starts
    from paying) with at least one churn movement in the period."""
    if movements.empty:
        return pd.Series(dtype="int64")
    m = movements.assign(
        period=period_floor(movements["time"], freq), is_churn=movements["kind"] == "churn"
    )
    keys = ["product", "period", "customer"]
    per = m.groupby(keys, sort=False).agg(
        at_start=("paid_before", "first"), churned=("is_churn", "max")
    )
    hit = per[per["at_start"] & per["churned"]]
    return hit.groupby(level=["product", "period"]).size().astype("int64")


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
    return out


def _ltv(out: pd.DataFrame, months: int) -> np.ndarray:
    ordered = out.sort_values(["product", "time"], kind="stable")
    mean_rate = ordered.groupby("product", sort=False)["customer_churn_rate"].transform(
        lambda s: s.shift(1).rolling(months, min_periods=1).mean()
    )
    ltv = ratio(ordered["arpa"], mean_rate)
    ltv[~np.isfinite(mean_rate.to_numpy(dtype="float64"))] = np.nan
    return pd.Series(ltv, index=ordered.index).reindex(out.index).to_numpy()


__all__ = ["MONEY", "RATE_FIELDS", "churn_periods"]
