"""Revenue: gross payments, refunds and net revenue, per day or hour.

Refunds land on the day (hour) they happen, never back-dated to the payment they reverse
(METRICS.md): a closed day's revenue does not change when a refund arrives later, and a
refund after churn still shows as money going out on that day. Rows are per product and
transaction currency with the native amounts (exact sums in micro-units) and the same
amounts in the reporting currency at that day's rate (``*_rc``). The portfolio row
(``product = all``) has ``currency`` = the reporting currency, and its native amounts are
the sums of every product's ``*_rc`` (so ``gross`` equals ``gross_rc`` there): a portfolio
total in mixed currencies would mean nothing.

Days follow the reporting timezone; hours stay UTC. Hourly rows are written for every hour
from a product's (and currency's) first to its last money event, zeros included, so a
payment outage shows as zeros rather than as missing rows.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from growthwatch.events import EventType
from growthwatch.metrics._frame import (
    TIME_DTYPE,
    clean,
    empty,
    local_floor,
    local_naive,
    micros,
    naive_utc,
    units,
    with_portfolio,
)
from growthwatch.metrics.fx import FxTable

MONEY_TYPES = (EventType.PAYMENT.value, EventType.REFUND.value, EventType.PAYMENT_FAILED.value)
COLUMNS = {
    "time": TIME_DTYPE,
    "product": "str",
    "currency": "str",
    "gross": "float64",
    "refunds": "float64",
    "net": "float64",
    "failed": "float64",
    "payments": "int64",
    "refund_count": "int64",
    "failed_count": "int64",
    "gross_rc": "float64",
    "refunds_rc": "float64",
    "net_rc": "float64",
}


def revenue(
    events: pd.DataFrame,
    fx: FxTable,
    freq: str = "D",
    tz: str = "UTC",
    first: pd.Series | None = None,
    since: pd.Timestamp | None = None,
) -> pd.DataFrame:
    """Revenue per (bucket, product, currency); ``freq`` is "D" (days in ``tz``) or "h".

    Hourly, empty hours between a (product, currency)'s first and last money event are zero
    rows. ``first`` ((product, currency) -> first money event ever) and ``since`` (where
    ``events`` begin) let a caller that passes only recent events fill the same hours.
    """
    money = clean(events, MONEY_TYPES)
    if money.empty:
        return empty(COLUMNS)
    amount = micros(money["value"])
    kind = money["type"].to_numpy()
    is_pay = kind == EventType.PAYMENT.value
    is_ref = kind == EventType.REFUND.value
    is_fail = kind == EventType.PAYMENT_FAILED.value
    frame = pd.DataFrame(
        {
            "time": local_floor(money["ts"], freq, tz),
            "product": money["product"],
            "currency": money["currency"],
            "gross": np.where(is_pay, amount, 0),
            "refunds": np.where(is_ref, amount, 0),
            "failed": np.where(is_fail, amount, 0),
            "payments": is_pay.astype("int64"),
            "refund_count": is_ref.astype("int64"),
            "failed_count": is_fail.astype("int64"),
        }
    )
    out = frame.groupby(["time", "product", "currency"], as_index=False, sort=True).sum()
    return from_sums(out, fx, freq, tz, first, since)


SUMS = ("gross", "refunds", "failed", "payments", "refund_count", "failed_count")


def valued(out: pd.DataFrame, fx: FxTable, tz: str) -> np.ndarray:
    """Value micro-unit sums in place: ``gross``, ``refunds`` and ``failed`` to units, plus
    ``net`` and the reporting currency's ``gross_rc``, ``refunds_rc`` and ``net_rc`` at the
    rate of the bucket's (local) date, which it returns. One valuation for the product
    revenue (``from_sums``) and the segments' (``segments``)."""
    rate_day = pd.Series(local_naive(out["time"].astype(TIME_DTYPE), tz)).dt.tz_localize("UTC")
    rate = fx.convert_factor(out["currency"], rate_day)
    gross, refunds = out["gross"].to_numpy(), out["refunds"].to_numpy()
    out["net"] = units(gross - refunds)
    out["gross_rc"] = np.round(units(gross) * rate, 6)
    out["refunds_rc"] = np.round(units(refunds) * rate, 6)
    out["net_rc"] = np.round(out["gross_rc"] - out["refunds_rc"], 6)
    out["gross"] = units(gross)
    out["refunds"] = units(refunds)
    out["failed"] = units(out["failed"].to_numpy())
    return np.asarray(rate)


def from_sums(
    out: pd.DataFrame,
    fx: FxTable,
    freq: str = "D",
    tz: str = "UTC",
    first: pd.Series | None = None,
    since: pd.Timestamp | None = None,
) -> pd.DataFrame:
    """The revenue frame from its sums per (bucket start, product, currency): ``SUMS``
    as int64 (amounts in micro-units), buckets as ``revenue`` makes them. What the
    ledger's SQL counts (``growthwatch.metrics.sql.revenue_counts``) and ``revenue``'s
    own group-by both end in, so the rates, hours and portfolio rows are one code."""
    if out.empty:
        return empty(COLUMNS)
    if freq == "h":
        out = _fill_hours(out, first, since)
    rate = valued(out, fx, tz)
    out["failed_rc"] = np.round(out["failed"].to_numpy() * rate, 6)
    counts = ["payments", "refund_count", "failed_count"]
    rc = ["gross_rc", "refunds_rc", "net_rc", "failed_rc"]

    def in_reporting_currency(total: pd.DataFrame) -> pd.DataFrame:
        total["currency"] = fx.reporting
        for native in ("gross", "refunds", "net", "failed"):
            total[native] = total[f"{native}_rc"]
        return total

    out = with_portfolio(out, ["time"], [*counts, *rc], in_reporting_currency)
    return out[list(COLUMNS)]


def _fill_hours(
    out: pd.DataFrame, first: pd.Series | None, since: pd.Timestamp | None
) -> pd.DataFrame:
    """Zero rows for the hours without money of each (product, currency) run."""
    hour = np.timedelta64(3600 * 1_000_000, "us")
    floor = None if since is None else np.datetime64(since.tz_convert("UTC").tz_localize(None)
                                                     .floor("h"), "us")  # fmt: skip
    pieces = []
    t = naive_utc(out["time"].astype(TIME_DTYPE))
    keys = list(zip(out["product"], out["currency"], strict=True))
    spans = pd.DataFrame({"k": keys, "t": t}).groupby("k", sort=True)["t"].agg(["min", "max"])
    for (product, currency), row in spans.iterrows():
        lo = row["min"].to_datetime64()
        if first is not None and (product, currency) in first.index:
            began = pd.Timestamp(first[(product, currency)]).tz_convert("UTC").tz_localize(None)
            lo = min(lo, np.datetime64(began.floor("h"), "us"))
            if floor is not None:
                lo = max(lo, floor)
        hours = np.arange(lo, row["max"].to_datetime64() + hour, hour)
        pieces.append(pd.DataFrame({"time": hours, "product": product, "currency": currency}))
    if not pieces:
        return out
    grid = pd.concat(pieces, ignore_index=True)
    grid["time"] = grid["time"].dt.tz_localize("UTC").astype(TIME_DTYPE)
    full = grid.merge(out.assign(time=out["time"].astype(TIME_DTYPE)),
                      on=["time", "product", "currency"], how="left")  # fmt: skip
    for col in out.columns:
        if col not in ("time", "product", "currency"):
            full[col] = full[col].fillna(0).astype("int64")
    return full.sort_values(["time", "product", "currency"], kind="stable").reset_index(drop=True)
