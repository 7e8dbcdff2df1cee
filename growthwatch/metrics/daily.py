"""The foundation's daily series: revenue, signups, cancellations, active customers.

A first, deliberately small metric set so that ``growthwatch demo`` shows real numbers end
to end; the full engine (MRR movements, churn rates, cohorts, funnels, FX) supersedes it.
Pure: an event frame (``growthwatch.frames`` layout) in, ``PointBatch`` list out.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from growthwatch.events import SUBSCRIPTION_TYPES, EventType
from growthwatch.points import PointBatch


def _day(ts: pd.Series) -> pd.Series:
    return ts.dt.tz_convert("UTC").dt.floor("D")


def revenue_daily(events: pd.DataFrame) -> PointBatch:
    """Gross payments, refunds (on the day they happen) and net, per product and currency."""
    money = events[events["type"].isin([EventType.PAYMENT.value, EventType.REFUND.value])]
    frame = pd.DataFrame(
        {
            "time": _day(money["ts"]),
            "product": money["product"],
            "currency": money["currency"],
            "gross": money["value"].where(money["type"] == EventType.PAYMENT.value, 0.0),
            "refunds": money["value"].where(money["type"] == EventType.REFUND.value, 0.0),
            "payments": (money["type"] == EventType.PAYMENT.value).astype("int64"),
        }
    )
    out = frame.groupby(["time", "product", "currency"], as_index=False).sum()
    out["gross"] = out["gross"].round(6)
    out["refunds"] = out["refunds"].round(6)
    out["net"] = (out["gross"] - out["refunds"]).round(6)
    return PointBatch(
        "revenue_daily", out, ("product", "currency"), ("gross", "refunds", "net", "payments")
    )


def count_daily(events: pd.DataFrame, event_type: EventType, measurement: str) -> PointBatch:
    """Occurrences of one event type per product and day."""
    chosen = events[events["type"] == event_type.value]
    out = (
        pd.DataFrame({"time": _day(chosen["ts"]), "product": chosen["product"]})
        .groupby(["time", "product"], as_index=False)
        .size()
        .rename(columns={"size": "count"})
    )
    out["count"] = out["count"].astype("int64")
    return PointBatch(measurement, out, ("product",), ("count",))


def active_customers_daily(events: pd.DataFrame) -> PointBatch:
    """Customers whose combined MRR is above zero at the end of each day.

    A customer's MRR after each event is the running sum of the MRR changes of all their
    subscriptions; each time it crosses zero the product's active count moves by one. The
    count is carried forward over days without changes, so every day has a point.
    """
    subs = events[events["type"].isin([t.value for t in SUBSCRIPTION_TYPES])]
    if subs.empty:
        return PointBatch(
            "customers_daily",
            pd.DataFrame(
                {"time": pd.Series(dtype="datetime64[us, UTC]"), "product": [], "active": []}
            ),
            ("product",),
            ("active",),
        )
    subs = subs.sort_values(["ts", "idempotency_key"], kind="stable")
    micros = np.round(subs["value"].to_numpy() * 1_000_000).astype("int64")
    keys = [subs["product"], subs["subject"]]
    mrr = pd.Series(micros, index=subs.index).groupby(keys).cumsum()
    active = (mrr > 0).astype("int64")
    change = active - active.groupby(keys).shift(fill_value=0)
    days = _day(subs["ts"])
    net = change.groupby([days, subs["product"]]).sum()
    net.index.names = ["time", "product"]
    grid = net.unstack("product", fill_value=0)
    full_days = pd.date_range(grid.index.min(), events["ts"].max().floor("D"), freq="D")
    grid = grid.reindex(full_days, fill_value=0).cumsum()
    grid.index.name = "time"
    out = grid.stack().rename("active").reset_index()
    out["active"] = out["active"].astype("int64")
    return PointBatch("customers_daily", out, ("product",), ("active",))


def daily_series(events: pd.DataFrame) -> list[PointBatch]:
    return [
        revenue_daily(events),
        count_daily(events, EventType.SIGNUP, "signups_daily"),
        count_daily(events, EventType.SUBSCRIPTION_CANCELLED, "cancellations_daily"),
        active_customers_daily(events),
    ]
