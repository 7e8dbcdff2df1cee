"""Every SQL statement of the active-user rollup (DAU/WAU/MAU and the lifecycle), as text.

The rollup (``growthwatch.metrics.sql.activity`` keeps it in the ledger file) is the
distinct (product, user, local day) of the ``active_use`` events with a subject, plus each
user's first activity. Users and products are numbered (``uid``, ``pid``) so the day table
is three integers and a flag: its window queries sort fixed-width rows, never strings.

* ``state_activity_users`` (uid, pid, product, subject, first, day): one row per
  (product, subject), its first activity instant and that instant's local day;
* ``state_activity_products`` (pid, product, first, day): the same per product;
* ``state_activity_days`` (pid, uid, day, first): one row per user and local day with
  activity; ``first`` marks the user's first active day.

Days are local days of the reporting time zone numbered from the epoch (the days from
1970-01-01 to the instant's wall-clock date, as ``_frame.local_day_numbers``); ISO weeks
are ``floor((day + 3) / 7)`` of the same numbers, 1970-01-01 being a Thursday. Values are
rendered as literals (``literal``), never concatenated from raw input.
"""

from __future__ import annotations

from growthwatch.metrics.sql import literal

__all__ = ["day_number", "new_activity", "rolling_edges", "lifecycle_counts", "user_days"]

ACTIVE = "type = 'active_use' AND subject IS NOT NULL"


def day_number(expr: str, tz: str) -> str:
    """The local day number of a TIMESTAMPTZ expression in ``tz`` (``AT TIME ZONE``:
    BigQuery's ``DATETIME(ts, tz)``)."""
    return f"date_diff('day', DATE '1970-01-01', CAST({expr} AT TIME ZONE {literal(tz)} AS DATE))"


def user_days(where: str, tz: str) -> str:
    """(product, subject, day, first): each user's active local days from the ledger rows
    ``where`` selects, with the day's first activity instant (its minimum over the days is
    the user's first activity)."""
    return (f"SELECT product, subject, {day_number('ts', tz)} AS day, min(ts) AS first "
            f"FROM events WHERE {ACTIVE} AND ({where}) GROUP BY product, subject, day")  # fmt: skip


def new_activity(where: str, tz: str) -> str:
    """(product, subject, ts, day) of the new active_use events (``where``: their ``seq``
    range): the few rows an update folds into the rollup."""
    return (f"SELECT product, subject, ts, {day_number('ts', tz)} AS day FROM events "
            f"WHERE {ACTIVE} AND ({where})")  # fmt: skip


def rolling_edges(days: str, where: str) -> str:
    """DAU/WAU/MAU as interval edges per (pid, day) from a relation shaped as
    ``state_activity_days`` (``where``: the days read, e.g. from one window before the
    rewrite). Each active user-day covers the days up to its window (1, 7 or 30) or the
    user's next active day, whichever comes first: +1 on the day it starts, -1 on the day
    it stops; a running sum over the days gives each day's distinct users
    (``engagement.product_daily``)."""
    spans = (f"SELECT pid, day, lead(day) OVER (PARTITION BY uid ORDER BY day) AS next_day "
             f"FROM {days} WHERE {where}")  # fmt: skip
    stops = " ".join(
        f"UNION ALL SELECT pid, least(day + {w}, coalesce(next_day, day + {w})) AS day, "
        + ", ".join("-1" if i == n else "0" for i in range(3)) + " FROM spans"
        for n, w in enumerate((1, 7, 30))
    )
    return (
        f"WITH spans AS ({spans}), edges AS (SELECT pid, day, 1 AS dau, 1 AS wau, 1 AS mau "
        f"FROM spans {stops}) "
        "SELECT pid, day, sum(dau) AS dau, sum(wau) AS wau, sum(mau) AS mau FROM edges "
        "GROUP BY pid, day ORDER BY pid, day"
    )


def lifecycle_counts(days: str, where: str, period: str) -> str:
    """Lifecycle counts per (pid, period number ``k``) from a relation shaped as
    ``state_activity_days``: each user active in k is new (their first active day is in
    k), returning (active in k - 1 too) or resurrected (neither); a user active in k and
    not in k + 1 is dormant in k + 1 (``lifecycle.from_counts``' input)."""
    if period == "day":
        activity = f"SELECT pid, uid, day AS k, first AS is_new FROM {days} WHERE {where}"
    elif period == "week":
        activity = (f"SELECT pid, uid, CAST(floor((day + 3) / 7) AS BIGINT) AS k, "
                    f"bool_or(first) AS is_new FROM {days} WHERE {where} GROUP BY pid, uid, k")  # fmt: skip
    else:
        raise ValueError(f"unknown lifecycle period {period!r} (day or week)")
    return (
        f"WITH activity AS ({activity}), "
        "flagged AS (SELECT pid, k, is_new, "
        "lag(k) OVER (PARTITION BY uid ORDER BY k) AS prev_k, "
        "lead(k) OVER (PARTITION BY uid ORDER BY k) AS next_k FROM activity), "
        "counts AS (SELECT pid, k, count(*) AS active, count(*) FILTER (WHERE is_new) AS new, "
        "count(*) FILTER (WHERE prev_k = k - 1) AS \"returning\", "
        "count(*) FILTER (WHERE NOT is_new AND (prev_k IS NULL OR prev_k <> k - 1)) "
        "AS resurrected, 0 AS dormant FROM flagged GROUP BY pid, k "
        "UNION ALL SELECT pid, k + 1 AS k, 0, 0, 0, 0, count(*) AS dormant FROM flagged "
        "WHERE next_k IS NULL OR next_k <> k + 1 GROUP BY pid, k + 1) "
        "SELECT pid, k, sum(active) AS active, sum(new) AS new, "
        "sum(\"returning\") AS \"returning\", sum(resurrected) AS resurrected, "
        "sum(dormant) AS dormant FROM counts GROUP BY pid, k ORDER BY pid, k"
    )
