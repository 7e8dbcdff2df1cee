"""Traffic counted in the ledger's DuckDB: one row per product, channel and day leaves it.

The traffic family used to read every session and signup event into a frame (in time
chunks of ``metrics.memory_limit_mb``) for ``growthwatch.metrics.traffic.traffic_daily``;
at 100M demo events that was 98 s of the full run. ``queries.traffic`` is the same
definition as one statement (the session attribution as a hash join, the counts as
GROUP BYs), and pandas only turns its few thousand rows into the frame. The pandas
function stays: the pure ``compute`` path and the reference the tests compare with.
"""

from __future__ import annotations

import duckdb
import pandas as pd

from growthwatch.metrics import traffic
from growthwatch.metrics._frame import TIME_DTYPE, day_starts, empty, ratio, units
from growthwatch.metrics.reads import LedgerView
from growthwatch.metrics.sql import queries as q
from growthwatch.metrics.sql import state

__all__ = ["traffic_daily"]

# Session and signup events per MiB of DuckDB's ``memory_limit`` that one statement of
# ``queries.traffic_visitors`` (the signups' hash join onto their sessions, then the
# per-visitor groups) keeps within it: the 10M-event demo ledger's 1.7M of them fitted
# 62 MiB in 16 partitions (about 1,700 a MiB) and ran out of memory in one.
_ROWS_PER_MIB = 1_500
_TYPES = "type IN ('session', 'signup')"
# what ``queries.traffic_visitors`` reads of an event (a partitioned run's staged copy)
_COLUMNS = ("product", "type", "ts", "subject", "channel", "idempotency_key", "value")


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
    cursor = view.ledger.connection  # a connection of its own: the temporary table is too
    try:
        parts = state.parts_for(cursor, _input_rows(cursor, where, since), _ROWS_PER_MIB)
        with (state.partitioned(cursor, "traffic_events", f"{where} AND {_TYPES}", _COLUMNS,
                                parts) as part_of,
              state.part_threads(cursor, parts)):  # fmt: skip
            for i in range(parts):
                visitors = q.traffic_visitors(part_of(i), tz, traffic.SESSION_MINUTES)
                cursor.execute(f"CREATE OR REPLACE TEMP TABLE traffic_visitors AS {visitors}"
                               if i == 0 else f"INSERT INTO traffic_visitors {visitors}")  # fmt: skip
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


def _input_rows(cursor: duckdb.DuckDBPyConnection, where: str, since: pd.Timestamp | None) -> int:
    """How many events the visitors' statement reads, from above: a full run counts the
    two types over the whole table (``state.rows_of_types``); an update counts its own
    days, which zone maps find."""
    if since is None:
        return state.rows_of_types(cursor, ("session", "signup"))
    row = cursor.execute(f"SELECT count(*) FROM events WHERE {where} AND {_TYPES}").fetchone()
    return int(row[0]) if row else 0
