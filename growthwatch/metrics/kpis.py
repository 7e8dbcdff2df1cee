"""Custom KPIs from the products' own databases, passed through as series.

A ``kpi`` event is already a metric value (the SQL exporter ran the product's query), so
nothing is aggregated: each event becomes one point at its own timestamp, tagged with the
product and the KPI name. Replays are the same event (same idempotency key) and count
once; two different events for the same product, KPI and time keep the last in ledger
order (time, then key), which is also what the store's overwrite would keep.
"""

from __future__ import annotations

import pandas as pd

from growthwatch.events import EventType
from growthwatch.metrics._frame import TIME_DTYPE, clean, empty, json_key

COLUMNS = {"time": TIME_DTYPE, "product": "str", "kpi": "str", "value": "float64"}


def kpi_series(events: pd.DataFrame) -> pd.DataFrame:
    ev = clean(events, (EventType.KPI.value,))
    if ev.empty:
        return empty(COLUMNS)
    out = pd.DataFrame(
        {
            "time": ev["ts"].astype(TIME_DTYPE),
            "product": ev["product"],
            "kpi": json_key(ev["metadata"], "kpi").astype(object),
            "value": ev["value"].astype("float64"),
        }
    )
    out = out[out["kpi"].notna()]
    out = out.drop_duplicates(["time", "product", "kpi"], keep="last")
    out["kpi"] = out["kpi"].astype("str")
    return out.reset_index(drop=True)
