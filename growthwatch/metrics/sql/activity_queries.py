"""Every SQL statement of the active-user rollup (DAU/WAU/MAU and the lifecycle), as text.

The rollup (``growthwatch.metrics.sql.activity`` keeps it in the ledger file) is the
distinct (product, user, local day) of the ``active_use`` events with a subject, plus each
user's first activity. Users and products are numbered (``uid``, ``pid``), so the day table
is four integers: its reads group fixed-width rows, never strings.

* ``state_activity_users`` (uid, pid, product, subject, first, day, last): one row per
  (product, subject): its first activity instant, that instant's local day, and its last
  active day;
* ``state_activity_products`` (pid, product, first, grid): per product, its first
  activity (NULL: none yet), and its first signup, activation or activity with a user
  (where its day grid starts);
* ``state_activity_days`` (pid, uid, day, prev): one row per user and local day with
  activity, and the user's active day before it (NULL on their first). Looking only back,
  a row never changes when later days arrive: only a late event (a day before the user's
  last) rewrites that user's rows. Every count is a GROUP BY over a range of days: the
  previous day on the row stands for the window functions over the history.

Days are local days of the reporting time zone numbered from the epoch (the days from
1970-01-01 to the instant's wall-clock date, as ``_frame.local_day_numbers``); ISO weeks
are ``floor((day + 3) / 7)`` of the same numbers, 1970-01-01 being a Thursday. Values are
rendered as literals (``literal``), never concatenated from raw input.
"""

from __future__ import annotations

from growthwatch.metrics.sql import literal

__all__ = ["day_number", "grid_firsts", "lifecycle_counts", "new_activity", "rolling_edges",
           "user_days"]

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


def grid_firsts(where: str) -> str:
    """(product, first): each product's first signup or activation with a user (with its
    first activity, where its ``product_daily`` grid starts), of the rows ``where``
    selects."""
    return ("SELECT product, min(ts) AS first FROM events WHERE type IN ('signup', "
            f"'activation') AND subject IS NOT NULL AND ({where}) GROUP BY product")  # fmt: skip


def rolling_edges(days: str, where: str) -> str:
    """DAU/WAU/MAU as interval edges per (pid, day) from a relation shaped as
    ``state_activity_days`` (``where``: the days read, e.g. from one window before the
    rewrite). A user counts on day x for a window of w days when one of their active days
    is in [x - w + 1, x]: the union of the intervals [d, d + w) of their days, which is the
    disjoint sum of [max(d, prev + w), d + w) over each day d and the user's active day
    before it (``prev``, stored on the row): +1 where it starts, -1 where it ends. A
    running sum over the days gives each day's distinct users (``engagement.product_daily``);
    no window function, and a day before the ones read adds nothing to the days after it
    ends."""
    # a previous day 30 or more days back covers nothing of any window: the rows collapse
    # to (pid, day, prev within 30 days) with a count before the edges are made
    grouped = (f"SELECT pid, day, greatest(coalesce(prev, day - 30), day - 30) AS prev, "
               f"count(*) AS n FROM {days} WHERE {where} GROUP BY pid, day, 3")  # fmt: skip
    parts = [f"SELECT pid, greatest(day, prev + {w}) AS day, "
             + ", ".join("n" if i == k else "0" for i in range(3)) + " FROM grouped "
             f"UNION ALL SELECT pid, day + {w} AS day, "
             + ", ".join("-n" if i == k else "0" for i in range(3)) + " FROM grouped"
             for k, w in enumerate((1, 7, 30))]  # fmt: skip
    return (
        f"WITH grouped AS ({grouped}), edges (pid, day, dau, wau, mau) AS "
        f"({' UNION ALL '.join(parts)}) "
        "SELECT pid, day, sum(dau) AS dau, sum(wau) AS wau, sum(mau) AS mau FROM edges "
        "GROUP BY pid, day ORDER BY pid, day"
    )


def _week(expr: str) -> str:
    return f"CAST(floor(({expr} + 3) / 7) AS BIGINT)"


def lifecycle_counts(days: str, where: str, period: str) -> str:
    """Lifecycle counts per (pid, period number ``k``) from a relation shaped as
    ``state_activity_days`` (``lifecycle.from_counts``' input). A user's period is counted
    once, on its first active day (the day whose ``prev`` is in an earlier period): new
    when it has no ``prev`` (the user's first activity), returning when ``prev`` is in
    k - 1, resurrected otherwise. Dormant in k: active in k - 1 and not in k, which is
    active(k - 1) - returning(k). No window function: ``prev`` is on the rows."""
    if period == "day":
        k, prev_k, first = "day", "prev", "TRUE"
    elif period == "week":
        k, prev_k = _week("day"), _week("prev")
        first = f"(prev IS NULL OR {prev_k} < {k})"
    else:
        raise ValueError(f"unknown lifecycle period {period!r} (day or week)")
    periods = (f"SELECT pid, {k} AS k, {prev_k} AS prev_k FROM {days} "
               f"WHERE {where} AND {first}")  # fmt: skip
    return (
        f"WITH periods AS ({periods}), "
        "counts AS (SELECT pid, k, count(*) AS active, count(*) FILTER (WHERE prev_k IS NULL) "
        "AS new, count(*) FILTER (WHERE prev_k = k - 1) AS \"returning\", "
        "count(*) FILTER (WHERE prev_k < k - 1) AS resurrected FROM periods GROUP BY pid, k), "
        "parts AS (SELECT pid, k, active, new, \"returning\", resurrected, "
        "-\"returning\" AS dormant FROM counts UNION ALL SELECT pid, k + 1, 0, 0, 0, 0, active "
        "FROM counts) "
        "SELECT pid, k, sum(active) AS active, sum(new) AS new, "
        "sum(\"returning\") AS \"returning\", sum(resurrected) AS resurrected, "
        "sum(dormant) AS dormant FROM parts GROUP BY pid, k ORDER BY pid, k"
    )
