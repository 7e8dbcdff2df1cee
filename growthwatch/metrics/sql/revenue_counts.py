"""Revenue summed in the ledger's DuckDB: one row per bucket, product and currency.

The revenue family used to read every payment, refund and failed payment into a frame
(in time chunks) only to group them by day and by hour. ``queries.revenue`` does the
group-by where the events are; ``revenue.from_sums`` then applies the same rates, zero
hours and portfolio rows as the pandas definition (``revenue.revenue``, the pure path and
the tests' reference), to the same int64 micro-unit sums, so the numbers are identical.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from growthwatch.metrics import revenue
from growthwatch.metrics._frame import TIME_DTYPE, day_starts
from growthwatch.metrics.reads import LedgerView
from growthwatch.metrics.sql import queries as q

__all__ = ["revenue_sums"]

_HOUR_US = 3_600_000_000


def revenue_sums(view: LedgerView, since: pd.Timestamp | None, freq: str) -> pd.DataFrame:
    """Sums per (bucket start, product, currency) of the view's money events from
    ``since`` (all with None; before the view's ``end``), as ``revenue.from_sums``
    takes them (``freq`` "D": local days of the reporting timezone, "h": UTC hours)."""
    tz = view.settings.timezone
    where = q.ledger_where(
        view.exclude, since=None if since is None else since.isoformat(),
        before=None if view.end is None else view.end.isoformat(),
    )  # fmt: skip
    cursor = view.ledger.connection
    try:
        rows = cursor.execute(q.revenue(q.Source(where=where), freq, tz)).df()
    finally:
        cursor.close()
    buckets = rows["bucket"].to_numpy(dtype="int64")
    if freq == "D":
        time = pd.Series(day_starts(buckets, tz).array)
    else:
        time = pd.Series((buckets * _HOUR_US).astype("datetime64[us]")).dt.tz_localize("UTC")
    out = pd.DataFrame({"time": time.astype(TIME_DTYPE),
                        "product": rows["product"].astype(object).to_numpy(),
                        "currency": rows["currency"].astype(object).to_numpy()})  # fmt: skip
    for col in revenue.SUMS:
        out[col] = rows[col].to_numpy(dtype=np.int64)
    return out.sort_values(["time", "product", "currency"], ignore_index=True)
