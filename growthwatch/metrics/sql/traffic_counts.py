"""Traffic counted in the ledger's DuckDB: one row per product, channel and day leaves it.

The traffic family used to read every session and signup event into a frame (in time
chunks of ``metrics.memory_limit_mb``) for ``growthwatch.metrics.traffic.traffic_daily``;
at 100M demo events that was 98 s of the full run. ``queries.traffic`` is the same
definition as one statement (the session attribution as a hash join, the counts as
GROUP BYs), and pandas only turns its few thousand rows into the frame. The pandas
function stays: the pure ``compute`` path and the reference the tests compare with.
"""

from __future__ import annotations

import pandas as pd

from growthwatch.metrics import traffic
from growthwatch.metrics._frame import TIME_DTYPE, day_starts, empty, ratio, units
from growthwatch.metrics.reads import LedgerView
from growthwatch.metrics.sql import queries as q

__all__ = ["traffic_daily"]


def traffic_daily(view: LedgerView, since: pd.Timestamp | None) -> tuple[pd.DataFrame, int]:
    """``traffic.traffic_daily`` of the view's session and signup events from ``since``
    (all with None; before the view's ``end``), and how many events the query read.

    The rows of ``since``'s own day are complete only if ``since`` is that day's start;
    the family reads from half an hour earlier (a signup's session) and the engine writes
    from the day after that, as with the pandas path."""
    tz = view.settings.timezone
    where = q.ledger_where(
        view.exclude, since=None if since is None else since.isoformat(),
        before=None if view.end is None else view.end.isoformat(),
    )  # fmt: skip
    visitors = q.traffic_visitors(q.Source(where=where), tz, traffic.SESSION_MINUTES)
    cursor = view.ledger.connection  # a connection of its own: the temporary table is too
    try:
        cursor.execute(f"CREATE OR REPLACE TEMP TABLE traffic_visitors AS {visitors}")
        rows = cursor.execute(q.traffic_counts("traffic_visitors")).df()
        cursor.execute("DROP TABLE traffic_visitors")
    finally:
        cursor.close()
    read = int(rows["events"].sum()) if len(rows) else 0
    if rows.empty:
        return empty(traffic.COLUMNS), read
    days = rows["day"].to_numpy(dtype="int64")
    sessions = units(rows["micros"].to_numpy(dtype="int64"))
    converting = rows["converting"].to_numpy(dtype="int64")
    out = pd.DataFrame({
        "time": day_starts(days, tz).array,
        "product": rows["product"].astype(object).to_numpy(),
        "channel": rows["channel"].astype(object).to_numpy(),
        "sessions": sessions,
        "users": rows["visitors"].to_numpy(dtype="int64"),
        "signups": rows["signups"].to_numpy(dtype="int64"),
        "converting_sessions": converting,
        "conversion": ratio(converting, sessions),
    })  # fmt: skip
    out["time"] = out["time"].astype(TIME_DTYPE)
    return out.sort_values(["time", "product", "channel"], ignore_index=True), read
