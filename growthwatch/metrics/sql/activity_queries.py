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

import numpy as np
import pandas as pd

from growthwatch.metrics.sql import Span, literal

__all__ = ["day_number", "grid_firsts", "lifecycle_counts", "new_activity", "rolling_edges",
           "user_day_rows", "user_firsts"]

ACTIVE = "type = 'active_use' AND subject IS NOT NULL"


_DAY_US = 86_400_000_000


def day_number(expr: str, tz: str, span: Span | None = None) -> str:
    """The local day number of a TIMESTAMPTZ expression in ``tz`` (``AT TIME ZONE``:
    BigQuery's ``DATETIME(ts, tz)``).

    With ``span`` (the first and last instant the rows hold), instants inside it take the
    zone's UTC offset from a ``CASE`` over its changes in the span (a handful) added to
    their epoch microseconds, then a whole-day division: exact, and about fifteen times
    cheaper than DuckDB's time zone conversion, which is most of a rollup build's cost.
    That form uses DuckDB's ``epoch_us`` (BigQuery's ``UNIX_MICROS``, a name sqlglot
    leaves as it is): a BigQuery rendering takes no span. Outside the span the conversion
    still answers, so the span only has to be about right."""
    wall = f"date_diff('day', DATE '1970-01-01', CAST({expr} AT TIME ZONE {literal(tz)} AS DATE))"
    if span is None:
        return wall
    pieces = _offsets(tz, *span)
    if not pieces:
        return wall
    lo, hi = pieces[0][0], pieces[-1][0]
    offset = literal(pieces[0][1])
    if len(pieces) > 2:
        cases = " ".join(f"WHEN {expr} < {_instant(at)} THEN {literal(us)}"
                         for (at, _), (_, us) in zip(pieces[1:-1], pieces[:-2], strict=True))  # fmt: skip
        offset = f"CASE {cases} ELSE {literal(pieces[-2][1])} END"
    return (f"(CASE WHEN {expr} < {_instant(lo)} OR {expr} >= {_instant(hi)} THEN {wall} "
            f"ELSE (epoch_us({expr}) + {offset}) // {literal(_DAY_US)} END)")  # fmt: skip


def _instant(at: pd.Timestamp) -> str:
    return f"CAST({literal(at.isoformat())} AS TIMESTAMPTZ)"


def _offsets(tz: str, first: pd.Timestamp, last: pd.Timestamp) -> list[tuple[pd.Timestamp, int]]:
    """The UTC offsets (microseconds) of ``tz`` from a day before ``first`` to a day after
    ``last``: (instant from which it holds, offset), then (the end, 0). Empty when the span
    starts before 1970-01-02 (the integer division needs positive instants) or is longer
    than a century."""
    lo = pd.Timestamp(first).tz_convert("UTC").floor("h") - pd.Timedelta(days=1)
    hi = pd.Timestamp(last).tz_convert("UTC").ceil("h") + pd.Timedelta(days=1)
    if lo < pd.Timestamp("1970-01-02", tz="UTC") or hi - lo > pd.Timedelta(days=36_600):
        return []

    def offset_us(at: pd.DatetimeIndex) -> np.ndarray:
        wall = at.tz_convert(tz).tz_localize(None)
        seconds = (wall - at.tz_localize(None)).total_seconds().to_numpy()
        return np.round(seconds * 1_000_000).astype("int64")

    hours = pd.date_range(lo, hi, freq="h")
    off = offset_us(hours)
    pieces = [(lo, int(off[0]))]
    for i in np.nonzero(off[1:] != off[:-1])[0]:  # a change within (hour i, hour i + 1]
        seconds = pd.date_range(hours[i], hours[i + 1], freq="s")
        inner = offset_us(seconds)
        j = int(np.argmax(inner != inner[0]))
        pieces.append((seconds[j], int(inner[j])))
    pieces.append((hi, 0))
    return pieces


def user_firsts(
    where: str, tz: str, span: Span | None = None, table: str = "events"
) -> str:
    """(product, subject, first, day, last): each user's first activity instant, its local
    day and the user's last active day, of the rows ``where`` selects of ``table`` (the
    ledger's events, or a partitioned build's staged copy of them: one small aggregate
    per user, the time zone converted twice per user, not per event)."""
    return (f"SELECT product, subject, min(ts) AS first, {day_number('min(ts)', tz, span)} "
            f"AS day, {day_number('max(ts)', tz, span)} AS last FROM {table} WHERE {ACTIVE} "
            f"AND ({where}) GROUP BY product, subject")  # fmt: skip


def user_day_rows(
    users: str, where: str, tz: str, span: Span | None = None, table: str = "events"
) -> str:
    """(pid, uid, day, prev): the rows of ``state_activity_days`` from the events ``where``
    selects of ``table`` (as ``user_firsts``), the users numbered by ``users`` (shaped as
    ``state_activity_users``): the distinct user-days as integers, then each one's
    previous day (one window)."""
    distinct = (f"SELECT DISTINCT u.pid AS pid, u.uid AS uid, {day_number('e.ts', tz, span)} AS day "
                f"FROM {table} AS e JOIN {users} AS u ON u.product = e.product "
                f"AND u.subject = e.subject WHERE e.{ACTIVE.replace(' AND subject', ' AND e.subject')} "
                f"AND ({where})")  # fmt: skip
    return (f"SELECT pid, uid, day, lag(day) OVER (PARTITION BY uid ORDER BY day) AS prev "
            f"FROM ({distinct}) AS d")  # fmt: skip


def new_activity(where: str, tz: str, span: Span | None = None) -> str:
    """(product, subject, ts, day) of the new active_use events (``where``: their ``seq``
    range): the few rows an update folds into the rollup."""
    return (f"SELECT product, subject, ts, {day_number('ts', tz, span)} AS day FROM events "
            f"WHERE {ACTIVE} AND ({where})")  # fmt: skip


def grid_firsts(where: str) -> str:
    """(product, first): each product's first signup or activation with a user (with its
    first activity, where its ``product_daily`` grid starts), of the rows ``where``
    selects."""
    return ("SELECT product, min(ts) AS first FROM events WHERE type IN ('signup', "
            f"'activation') AND subject IS NOT NULL AND ({where}) GROUP BY product")  # fmt: skip


def _count(weighted: bool, condition: str | None = None) -> str:
    """The rows counted: one each (``count(*)``), or the sum of their ``n`` for a relation
    of weighted rows (``activity``'s per-(product, day, previous day) counts)."""
    if not weighted:
        return "count(*)" if condition is None else f"count(*) FILTER (WHERE {condition})"
    if condition is None:
        return "CAST(sum(n) AS BIGINT)"
    return f"coalesce(CAST(sum(n) FILTER (WHERE {condition}) AS BIGINT), 0)"


def rolling_edges(days: str, where: str, *, weighted: bool = False) -> str:
    """DAU/WAU/MAU as interval edges per (pid, day) from a relation shaped as
    ``state_activity_days`` (``where``: the days read, e.g. from one window before the
    rewrite). A user counts on day x for a window of w days when one of their active days
    is in [x - w + 1, x]: the union of the intervals [d, d + w) of their days, which is the
    disjoint sum of [max(d, prev + w), d + w) over each day d and the user's active day
    before it (``prev``, stored on the row): +1 where it starts, -1 where it ends. A
    running sum over the days gives each day's distinct users (``engagement.product_daily``);
    no window function, and a day before the ones read adds nothing to the days after it
    ends. ``weighted``: ``days`` has a count ``n`` per row (the same rows, grouped)."""
    # a previous day 30 or more days back covers nothing of any window: the rows collapse
    # to (pid, day, prev within 30 days) with a count before the edges are made
    grouped = (f"SELECT pid, day, greatest(coalesce(prev, day - 30), day - 30) AS prev, "
               f"{_count(weighted)} AS n FROM {days} WHERE {where} GROUP BY pid, day, 3")  # fmt: skip
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


def lifecycle_counts(days: str, where: str, period: str, *, weighted: bool = False) -> str:
    """Lifecycle counts per (pid, period number ``k``) from a relation shaped as
    ``state_activity_days`` (``lifecycle.from_counts``' input). A user's period is counted
    once, on its first active day (the day whose ``prev`` is in an earlier period): new
    when it has no ``prev`` (the user's first activity), returning when ``prev`` is in
    k - 1, resurrected otherwise. Dormant in k: active in k - 1 and not in k, which is
    active(k - 1) - returning(k). No window function: ``prev`` is on the rows.
    ``weighted``: ``days`` has a count ``n`` per row (the same rows, grouped)."""
    if period == "day":
        k, prev_k, first = "day", "prev", "TRUE"
    elif period == "week":
        k, prev_k = _week("day"), _week("prev")
        first = f"(prev IS NULL OR {prev_k} < {k})"
    else:
        raise ValueError(f"unknown lifecycle period {period!r} (day or week)")
    n = ", n" if weighted else ""
    periods = (f"SELECT pid, {k} AS k, {prev_k} AS prev_k{n} FROM {days} "
               f"WHERE {where} AND {first}")  # fmt: skip
    w = weighted
    return (
        f"WITH periods AS ({periods}), "
        f"counts AS (SELECT pid, k, {_count(w)} AS active, {_count(w, 'prev_k IS NULL')} "
        f"AS new, {_count(w, 'prev_k = k - 1')} AS \"returning\", "
        f"{_count(w, 'prev_k < k - 1')} AS resurrected FROM periods GROUP BY pid, k), "
        "parts AS (SELECT pid, k, active, new, \"returning\", resurrected, "
        "-\"returning\" AS dormant FROM counts UNION ALL SELECT pid, k + 1, 0, 0, 0, 0, active "
        "FROM counts) "
        "SELECT pid, k, sum(active) AS active, sum(new) AS new, "
        "sum(\"returning\") AS \"returning\", sum(resurrected) AS resurrected, "
        "sum(dormant) AS dormant FROM parts GROUP BY pid, k ORDER BY pid, k"
    )
