"""The active-user rollup in the ledger file: what DAU/WAU/MAU and the lifecycle read.

Why: ``active_use`` is three quarters of all events, and both families used to count them
from the raw events on every run (an update re-read 30 days of them, and every user's first
activity over the whole history, with window functions over all of it on a full run). The
rollup keeps what they depend on, once (tables in
``growthwatch.metrics.sql.activity_queries``): the distinct (product, user, local day) of
the activity, each day with the user's previous active day, and each user's first
activity. With the previous day on the row, every count is a GROUP BY over a range of
days (no window function); an update reads the days from one period before the buckets
it rewrites, by a range on ``day`` (the day table is in day order, so DuckDB skips the
older row groups), and nothing of the users' history.

Kept up to date by ``seq`` (``sync``): an update folds in only the events after the
``seq`` the rollup covers (their distinct user-days, anti-joined with the days already
there; a user's first activity moves earlier with a ``min``). A day after the user's last
takes that last day as its previous one, so no row changes; a late day (before the user's
last) rewrites that user's rows. ``state_activity_meta`` holds the ``seq``, how many
events the ledger had up to it (a deletion below it, ``Ledger.delete_before``, changes the
count) and the time zone the days are in; when any does not match the ledger, the rollup
is rebuilt from it, so it never serves stale numbers. Products left out of a run
(``LedgerView.exclude``) are filtered at read time: the rollup covers every product.

A full build is a few GROUP BYs and joins in DuckDB and one window (each day's previous
one), in as many partitions of the users (a hash of ``subject``) as its memory limit
needs, so its peak follows a partition, not the history (``_input``).
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import duckdb
import pandas as pd

from growthwatch.metrics._frame import TIME_DTYPE, local_day_numbers
from growthwatch.metrics.reads import LedgerView, last_seq
from growthwatch.metrics.sql import Span, literal, literals, state
from growthwatch.metrics.sql import activity_queries as aq
from growthwatch.metrics.sql import queries as q
from growthwatch.metrics.touched import event_count

__all__ = ["Synced", "lifecycle_counts", "products", "rolling_edges", "sync"]

DAYS = "state_activity_days"
_TABLES = """
CREATE TABLE IF NOT EXISTS state_activity_meta (seq BIGINT, count BIGINT, signature VARCHAR);
CREATE TABLE IF NOT EXISTS state_activity_products (pid BIGINT, product VARCHAR,
    first TIMESTAMPTZ, grid TIMESTAMPTZ);
CREATE TABLE IF NOT EXISTS state_activity_users (uid BIGINT, pid BIGINT, product VARCHAR,
    subject VARCHAR, first TIMESTAMPTZ, day BIGINT, last BIGINT);
CREATE TABLE IF NOT EXISTS state_activity_days (pid BIGINT, uid BIGINT, day BIGINT,
    prev BIGINT);
"""
# The rollup's user-days counted per (pid, day, prev): what ``rolling_edges`` and
# ``lifecycle_counts`` read (``weighted``), so an update's window read follows the days
# and products of the window, not its active users (at 10M demo events 339k user-day rows
# of the window against some 10x fewer counts, and the counts do not grow with the users
# a day). Rows are deltas (a fold appends +1s, a late day's redo -1s and +1s; the reads
# sum them); rebuilt from the days when their ``seq`` is not the rollup's (after a build,
# or a rollup made before this table existed).
COUNTS = "state_activity_counts"
_COUNT_TABLES = f"""
CREATE TABLE IF NOT EXISTS state_activity_counts_meta (seq BIGINT);
CREATE TABLE IF NOT EXISTS {COUNTS} (pid BIGINT, day BIGINT, prev BIGINT, n BIGINT);
"""
# bytes an active_use event costs the build's statements per partition (the user
# aggregate's strings, the days' DISTINCT and window: uid, day, pid sorted, and the
# partition overhead): how many events one partition of the users takes. At 10M events
# and a 62 MiB share (``memory_limit_mb`` 450) 12 partitions; at 2048 (832 MB) one piece.
_ROW_BYTES = 100
_ROWS_PER_MIB = 2**20 // _ROW_BYTES
# what the build's statements read of an event (a partitioned build's staged copy)
_STAGED = ("product", "type", "ts", "subject")


@dataclass(frozen=True)
class Synced:
    """What ``sync`` did: ``built`` (from the whole ledger), or ``folded`` events (the new
    active_use rows read), and the ``seq`` the rollup covers now."""

    seq: int
    built: bool
    folded: int


def _scalar(con: duckdb.DuckDBPyConnection, sql: str, params: list[Any] | None = None) -> Any:
    row = con.execute(sql, params or []).fetchone()
    return None if row is None else row[0]


def _signature(view: LedgerView) -> str:
    return json.dumps({"tz": view.settings.timezone, "version": 2})


@contextmanager
def _cursor(view: LedgerView) -> Iterator[duckdb.DuckDBPyConnection]:
    con = view.ledger.connection
    try:
        yield con
    finally:
        con.close()


def sync(view: LedgerView, *, rebuild: bool = False) -> Synced:
    """Bring the rollup to the ledger's last ``seq``: fold the new events in, or rebuild
    it when it does not match the ledger (or ``rebuild``). One transaction.

    What to do is read before the transaction, so that a rebuild's rows (``_input``)
    are computed outside it: DuckDB scans a table created in the open transaction on
    one thread, and the staged copy's partitions were read at half the speed
    (the 10M demo ledger in two partitions: 3.2 s of user aggregates and 8.1 s of
    previous days, against 1.5 and 3.7 from a committed copy on two threads). Only the
    engine writes the rollup, one family at a time, so the decision still holds in it."""
    with _cursor(view) as con:
        con.execute(_TABLES)
        con.execute(_COUNT_TABLES)
        meta = con.execute("SELECT seq, count, signature FROM state_activity_meta").fetchall()
        after = int(meta[0][0]) if len(meta) == 1 else -1
        counted = _scalar(con, "SELECT max(seq) FROM state_activity_counts_meta")
        upto = last_seq(con, after)
        stale = (rebuild or len(meta) != 1 or meta[0][2] != _signature(view)
                 or after > upto or event_count(view, after) != int(meta[0][1]))  # fmt: skip
        if not stale and upto <= after and counted is not None and int(counted) == after:
            return Synced(upto, False, 0)
        # (under a tight share inside it: out of it the days' first partition ran out
        # of 24 MB where in it the build fits)
        outside = stale and not state.tight(con)
        with _input(con, view, upto) if outside else contextlib.nullcontext() as ready:
            con.execute("BEGIN TRANSACTION")
            try:
                if stale:
                    with _input(con, view, upto) if ready is None else contextlib.nullcontext(
                        ready
                    ) as built:
                        _build(con, built)
                    _count_days(con, upto)
                    done = Synced(upto, True, 0)
                elif upto > after:
                    current = counted is not None and int(counted) == after
                    done = Synced(upto, False, _fold(con, view, after, upto, counts=current))
                    if not current:
                        _count_days(con, upto)
                    else:
                        _mark_counted(con, upto)
                else:
                    _count_days(con, after)  # the rollup is current, its counts are not
                    con.execute("COMMIT")
                    return Synced(upto, False, 0)
                con.execute("DELETE FROM state_activity_meta")
                con.execute("INSERT INTO state_activity_meta VALUES (?, ?, ?)",
                            [upto, event_count(view, upto), _signature(view)])  # fmt: skip
                con.execute("COMMIT")
            except BaseException:
                con.execute("ROLLBACK")
                raise
    return done


def _count_days(con: duckdb.DuckDBPyConnection, seq: int) -> None:
    """The counts from the days, afresh (one aggregate of the rollup's days, in day order
    so that a window's read skips the older row groups), covering the rollup at ``seq``."""
    con.execute(f"CREATE OR REPLACE TABLE {COUNTS} AS SELECT pid, day, prev, count(*) AS n "
                f"FROM {DAYS} GROUP BY pid, day, prev ORDER BY day, pid")  # fmt: skip
    _mark_counted(con, seq)


def _mark_counted(con: duckdb.DuckDBPyConnection, seq: int) -> None:
    con.execute("DELETE FROM state_activity_counts_meta")
    con.execute("INSERT INTO state_activity_counts_meta VALUES (?)", [seq])


def _span(con: duckdb.DuckDBPyConnection, where: str) -> Span | None:
    """The first and last instant of the ledger rows ``where`` selects (the local days'
    offsets are taken over it: ``activity_queries.day_number``)."""
    lo, hi = con.execute(f"SELECT epoch_us(min(ts)), epoch_us(max(ts)) FROM events WHERE {where}"
                         ).fetchone() or (None, None)  # fmt: skip
    if lo is None or hi is None:
        return None
    return pd.Timestamp(int(lo), unit="us", tz="UTC"), pd.Timestamp(int(hi), unit="us", tz="UTC")


@dataclass(frozen=True)
class _Input:
    """A rebuild's rows, computed before its transaction (``_input``): the temporary
    tables ``raw_products``, ``raw_users`` and ``raw_days``, shaped as the rollup's
    products, users and days, of the events up to ``upto`` in ``parts`` partitions."""

    upto: int
    parts: int


_RAW = ("raw_products", "raw_users", "raw_days", "raw_firsts")


@contextmanager
def _input(con: duckdb.DuckDBPyConnection, view: LedgerView, upto: int) -> Iterator[_Input]:
    """The rollup's rows from every event up to ``upto``, into temporary tables, outside
    the transaction that writes them (see ``sync``): the users (one aggregate per user,
    the strings hashed once), then products, then the days as integers (the events
    joined to their user's number, distinct) with each day's previous one (a window per
    user). Dropped on the way out.

    Under a binding DuckDB ``memory_limit`` the user aggregate and the days' window run
    in partitions of the users by a hash of ``subject`` (``state.parts_for`` at
    ``_ROW_BYTES`` a row; on one thread under a tight share: ``state.part_threads``), so
    each statement's memory follows a partition, not the history; a user's rows depend on
    their own events only, so the partitions' rows are the whole's. The events are read
    once, into a staged copy in partition order (``state.partitioned``), not once per
    partition and statement."""
    tz = view.settings.timezone
    upto_rows = f"seq <= {upto}"
    span = _span(con, upto_rows)
    active = int(_scalar(con, f"SELECT count(*) FROM events WHERE {aq.ACTIVE} AND {upto_rows}"))
    parts = state.parts_for(con, active, _ROWS_PER_MIB)
    try:
        with (state.partitioned(con, "activity_events", f"{aq.ACTIVE} AND {upto_rows}",
                                _STAGED, parts) as part_of,
              state.part_threads(con, parts)):  # fmt: skip
            con.execute(f"CREATE OR REPLACE TEMP TABLE raw_firsts AS "
                        f"{aq.user_firsts('FALSE', tz)}")  # fmt: skip
            for i in range(parts):
                src = part_of(i)
                con.execute(f"INSERT INTO raw_firsts "
                            f"{aq.user_firsts(src.where, tz, span, src.table)}")  # fmt: skip
            con.execute(
                "CREATE OR REPLACE TEMP TABLE raw_products AS SELECT row_number() OVER "
                "(ORDER BY product) AS pid, product, first, least(coalesce(first, grid), "
                "coalesce(grid, first)) AS grid FROM (SELECT coalesce(a.product, g.product) "
                "AS product, a.first AS first, g.first AS grid FROM (SELECT product, "
                "min(first) AS first FROM raw_firsts GROUP BY product) AS a FULL OUTER JOIN "
                f"({aq.grid_firsts(upto_rows)}) AS g ON g.product = a.product)"
            )  # fmt: skip
            con.execute("CREATE OR REPLACE TEMP TABLE raw_users AS SELECT row_number() OVER () "
                        "AS uid, p.pid AS pid, u.product AS product, u.subject AS subject, "
                        "u.first AS first, u.day AS day, u.last AS last FROM raw_firsts AS u "
                        "JOIN raw_products AS p ON p.product = u.product")  # fmt: skip
            con.execute("DROP TABLE raw_firsts")
            con.execute(f"CREATE OR REPLACE TEMP TABLE raw_days AS "
                        f"{aq.user_day_rows('raw_users', 'FALSE', tz)}")  # fmt: skip
            for i in range(parts):
                theirs = f"(SELECT * FROM raw_users WHERE {q.subject_part(i, parts)})"
                src = part_of(i) if parts > 1 else q.Source(where=upto_rows)  # (joined)
                con.execute("INSERT INTO raw_days "
                            f"{aq.user_day_rows(theirs, src.where, tz, span, src.table)}")  # fmt: skip
        yield _Input(upto, parts)
    finally:
        # (in an aborted transaction the drops fail, and its rollback drops the tables)
        with contextlib.suppress(duckdb.Error):
            for table in _RAW:
                con.execute(f"DROP TABLE IF EXISTS {table}")


def _build(con: duckdb.DuckDBPyConnection, built: _Input) -> None:
    """The rollup's tables from a rebuild's rows (``_input``), in its transaction. The
    days are copied in day order (an update's range on ``day`` skips the older row
    groups), under a binding limit by ranges of days that each fit the budget of a
    partition."""
    con.execute("DROP INDEX IF EXISTS state_activity_users_subject")
    con.execute("CREATE OR REPLACE TABLE state_activity_products AS SELECT * FROM raw_products")
    con.execute("CREATE OR REPLACE TABLE state_activity_users AS SELECT * FROM raw_users")
    if built.parts == 1:
        con.execute(f"CREATE OR REPLACE TABLE {DAYS} AS SELECT * FROM raw_days ORDER BY day, uid")
    else:
        con.execute(f"CREATE OR REPLACE TABLE {DAYS} AS SELECT * FROM raw_days WHERE FALSE")
        per_day = con.execute("SELECT day, count(*) FROM raw_days GROUP BY day "
                              "ORDER BY day").fetchall()  # fmt: skip
        budget = max(1, -(-sum(int(n) for _, n in per_day) // built.parts))
        for lo, hi in _ranges([(int(d), int(n)) for d, n in per_day], budget):
            con.execute(f"INSERT INTO {DAYS} SELECT * FROM raw_days WHERE day >= "
                        f"{literal(lo)} AND day <= {literal(hi)} ORDER BY day, uid")  # fmt: skip
    con.execute("CREATE INDEX state_activity_users_subject ON state_activity_users (subject)")


def _ranges(per_day: list[tuple[int, int]], budget: int) -> list[tuple[int, int]]:
    """Consecutive ranges (first, last day) of the days in order, each of at most
    ``budget`` rows unless one day alone has more (a day is never split)."""
    ranges: list[tuple[int, int]] = []
    size = 0
    for day, n in per_day:
        if ranges and size + n <= budget:
            ranges[-1] = (ranges[-1][0], day)
            size += n
        else:
            ranges.append((day, day))
            size = n
    return ranges


def _fold(
    con: duckdb.DuckDBPyConnection, view: LedgerView, after: int, upto: int, *, counts: bool
) -> int:
    """Fold the events in (after, upto] in: new products and users get numbers, first
    activities move earlier (a ``min``), user-days not seen before are added with their
    previous day (the user's last, for days after it; a late day rewrites that user's
    rows), and (``counts``) the day rows added and removed go into ``COUNTS`` as +1s and
    -1s. Returns the active_use events read."""
    tz = view.settings.timezone
    new = f"seq > {after} AND seq <= {upto}"
    span = _span(con, new)
    con.execute(f"CREATE OR REPLACE TEMP TABLE new_activity AS {aq.new_activity(new, tz, span)}")
    con.execute(f"CREATE OR REPLACE TEMP TABLE new_grid AS {aq.grid_firsts(new)}")
    n = int(_scalar(con, "SELECT count(*) FROM new_activity"))
    con.execute("CREATE OR REPLACE TEMP TABLE new_users AS SELECT product, subject, "
                "min(ts) AS first, min(day) AS day FROM new_activity GROUP BY product, subject")  # fmt: skip
    # products: new ones numbered after the last; their first activity and grid by min
    con.execute(
        "CREATE OR REPLACE TEMP TABLE new_products AS SELECT coalesce(a.product, g.product) "
        "AS product, a.first AS first, least(coalesce(a.first, g.first), coalesce(g.first, "
        "a.first)) AS grid FROM (SELECT product, min(first) AS first FROM new_users GROUP BY "
        "product) AS a FULL OUTER JOIN new_grid AS g ON g.product = a.product"
    )
    con.execute(
        "UPDATE state_activity_products AS p SET first = least(coalesce(p.first, n.first), "
        "coalesce(n.first, p.first)), grid = least(p.grid, n.grid) FROM new_products AS n "
        "WHERE n.product = p.product"
    )
    con.execute(
        "INSERT INTO state_activity_products SELECT (SELECT coalesce(max(pid), 0) FROM "
        "state_activity_products) + row_number() OVER (ORDER BY n.product), n.product, "
        "n.first, n.grid FROM new_products AS n WHERE n.product NOT IN "
        "(SELECT product FROM state_activity_products)"
    )
    if not n:
        for table in ("new_activity", "new_grid", "new_users", "new_products"):
            con.execute(f"DROP TABLE {table}")
        return 0
    # the users the events are of, as the rollup knows them (an index lookup by subject)
    subjects = literals(r[0] for r in con.execute("SELECT DISTINCT subject FROM new_users").fetchall())
    con.execute(
        "CREATE OR REPLACE TEMP TABLE theirs AS SELECT rowid AS rid, uid, pid, product, "
        f"subject, first, last FROM state_activity_users WHERE subject IN {subjects}"
    )
    known = int(_scalar(con, "SELECT coalesce(max(uid), 0) FROM state_activity_users"))
    con.execute(
        f"INSERT INTO state_activity_users SELECT {literal(known)} + row_number() OVER "
        "(ORDER BY n.product, n.subject), p.pid, "
        "n.product, n.subject, n.first, n.day, NULL FROM new_users AS n "
        "JOIN state_activity_products AS p ON p.product = n.product WHERE NOT EXISTS "
        "(SELECT 1 FROM theirs AS t WHERE t.product = n.product AND t.subject = n.subject)"
    )
    # every user of the new events, with where their row is: the ones known before and
    # the ones just numbered (after ``known``: the table's last rows), so the statements
    # below look nothing up by subject again (an index lookup each, 25 ms at 10M events)
    con.execute(
        "CREATE OR REPLACE TEMP TABLE mine AS SELECT rid, uid, pid, product, subject FROM theirs "
        "UNION ALL SELECT rowid, uid, pid, product, subject FROM state_activity_users "
        f"WHERE uid > {literal(known)}"
    )
    con.execute(  # a first activity moved earlier (a late event)
        "UPDATE state_activity_users AS u SET first = n.first, day = n.day FROM new_users AS n "
        f"WHERE u.subject IN {subjects} AND u.product = n.product AND u.subject = n.subject "
        "AND n.first < u.first"
    )
    # the user-days not in the rollup yet (looked up in their days' range only), with the
    # user's last day before this fold (NULL: a new user)
    con.execute(
        "CREATE OR REPLACE TEMP TABLE seen AS SELECT DISTINCT u.pid AS pid, u.uid AS uid, "
        "a.day AS day, t.last AS old_last FROM new_activity AS a JOIN mine AS u "
        "ON u.product = a.product AND u.subject = a.subject "
        "LEFT JOIN theirs AS t ON t.uid = u.uid"
    )
    lo, hi = con.execute("SELECT min(day), max(day) FROM seen").fetchone() or (0, 0)
    con.execute(
        "CREATE OR REPLACE TEMP TABLE fresh AS SELECT s.*, min(s.day) OVER (PARTITION BY "
        "s.uid) AS lowest FROM seen AS s WHERE NOT EXISTS (SELECT 1 FROM (SELECT uid, day "
        f"FROM {DAYS} WHERE day >= {literal(int(lo))} AND day <= {literal(int(hi))}) AS d "
        "WHERE d.uid = s.uid AND d.day = s.day)"
    )
    # days after the user's last: their previous day is the one before among them, or the
    # last; no row of the rollup changes
    con.execute(
        "CREATE OR REPLACE TEMP TABLE added_days AS SELECT pid, uid, day, coalesce(lag(day) "
        "OVER (PARTITION BY uid ORDER BY day), old_last) AS prev FROM fresh "
        "WHERE old_last IS NULL OR lowest > old_last"
    )
    con.execute(f"INSERT INTO {DAYS} SELECT pid, uid, day, prev FROM added_days")
    if counts:
        con.execute(f"INSERT INTO {COUNTS} SELECT pid, day, prev, count(*) FROM added_days "
                    "GROUP BY pid, day, prev")  # fmt: skip
    con.execute("DROP TABLE added_days")
    late = [int(r[0]) for r in con.execute(
        "SELECT DISTINCT uid FROM fresh WHERE lowest < old_last").fetchall()]  # fmt: skip
    if late:  # rare: a day before the user's last; their rows again, in full
        uids = f"({', '.join(literal(u) for u in late)})"
        con.execute(
            "CREATE OR REPLACE TEMP TABLE redo AS SELECT pid, uid, day, lag(day) OVER "
            f"(PARTITION BY uid ORDER BY day) AS prev FROM (SELECT pid, uid, day FROM {DAYS} "
            f"WHERE uid IN {uids} UNION ALL SELECT pid, uid, day FROM fresh WHERE uid IN {uids})"
        )
        if counts:  # their rows leave the counts, their redone rows come in
            con.execute(f"INSERT INTO {COUNTS} SELECT pid, day, prev, -count(*) FROM {DAYS} "
                        f"WHERE uid IN {uids} GROUP BY pid, day, prev")  # fmt: skip
            con.execute(f"INSERT INTO {COUNTS} SELECT pid, day, prev, count(*) FROM redo "
                        "GROUP BY pid, day, prev")  # fmt: skip
        con.execute(f"DELETE FROM {DAYS} WHERE uid IN {uids}")
        con.execute(f"INSERT INTO {DAYS} SELECT * FROM redo")
        con.execute("DROP TABLE redo")
    rids = [literal(int(r[0])) for r in con.execute(
        "SELECT DISTINCT m.rid FROM mine AS m JOIN fresh AS f ON f.uid = m.uid").fetchall()]  # fmt: skip
    rows = f"({', '.join(rids)})" if rids else "(NULL)"
    con.execute(
        "UPDATE state_activity_users AS u SET last = greatest(coalesce(u.last, f.last), f.last) "
        "FROM (SELECT uid, max(day) AS last FROM fresh GROUP BY uid) AS f WHERE u.uid = f.uid "
        f"AND u.rowid IN {rows}"
    )
    for table in ("new_activity", "new_grid", "new_users", "new_products", "theirs", "mine",
                  "seen", "fresh"):  # fmt: skip
        con.execute(f"DROP TABLE {table}")
    return n


# -- reads ---------------------------------------------------------------------------------


def products(view: LedgerView, *, grid: bool = False) -> pd.DataFrame:
    """(pid, product, first): every product with activity and its first activity instant
    (``grid``: every product with a signup, activation or activity with a user, and the
    first of those), the ``view``'s excluded products left out. ``sync`` first."""
    column = "grid" if grid else "first"
    where = f"{column} IS NOT NULL"
    if view.exclude:
        where += f" AND product NOT IN {literals(view.exclude)}"
    with _cursor(view) as con:
        frame = con.execute(f"SELECT pid, product, {column} AS first FROM "
                            f"state_activity_products WHERE {where} ORDER BY pid").df()  # fmt: skip
    frame["first"] = pd.to_datetime(frame["first"], utc=True)
    return frame.astype({"pid": "int64", "product": object})


def _day(at: pd.Timestamp, tz: str) -> int:
    return int(local_day_numbers(pd.Series([at]).astype(TIME_DTYPE), tz)[0])


def _where(view: LedgerView, start: pd.Timestamp | None, pids: list[int]) -> str:
    """The day rows a read takes: from ``start``'s local day, to ``view.end``'s (a chunk's
    ledger: counts of day d depend on days up to d only), of ``pids``."""
    tz = view.settings.timezone
    parts = [f"pid IN ({', '.join(literal(p) for p in pids)})"]
    if start is not None:
        parts.append(f"day >= {literal(_day(start, tz))}")
    if view.end is not None:
        parts.append(f"day <= {literal(_day(view.end, tz))}")
    return " AND ".join(parts)


def _counts(view: LedgerView, start: pd.Timestamp | None, build: Any) -> pd.DataFrame:
    """Run ``build(where)`` over the products' day rows from ``start`` and name the
    products (a GROUP BY, which DuckDB spills beyond its memory limit: one query)."""
    known = products(view)
    pids = [int(p) for p in known["pid"]]
    if not pids:
        return pd.DataFrame({"product": pd.Series(dtype=object)})
    with _cursor(view) as con:
        frame = con.execute(build(_where(view, start, pids))).df()
    names = pd.Series(known["product"].to_numpy(), index=known["pid"].to_numpy())
    frame.insert(0, "product", names.reindex(frame["pid"].to_numpy(dtype="int64")).to_numpy())
    return frame.drop(columns="pid")


# the counts as the reads take them: the deltas summed per (pid, day, prev) (the reads'
# ``where`` on pid and day goes below the sum)
_COUNTED = f"(SELECT pid, day, prev, CAST(sum(n) AS BIGINT) AS n FROM {COUNTS} GROUP BY pid, day, prev)"


def rolling_edges(view: LedgerView, start: pd.Timestamp | None) -> pd.DataFrame:
    """The active users' interval edges per (product, local day) from ``start``'s day
    (``engagement.rolling_edges``' columns), from the rollup (``sync`` it first)."""
    frame = _counts(view, start, lambda where: aq.rolling_edges(_COUNTED, where, weighted=True))
    columns = {"product": object, "day": "int64", "dau": "int64", "wau": "int64", "mau": "int64"}
    return frame.reindex(columns=list(columns)).astype(columns)


def lifecycle_counts(view: LedgerView, period: str, start: pd.Timestamp | None) -> pd.DataFrame:
    """Lifecycle counts per (product, period number ``k``) of the activity from ``start``'s
    day (``lifecycle.from_counts``' input), from the rollup (``sync`` it first)."""
    frame = _counts(view, start,
                    lambda where: aq.lifecycle_counts(_COUNTED, where, period, weighted=True))
    columns = {"product": object, "k": "int64", "active": "int64", "new": "int64",
               "returning": "int64", "resurrected": "int64", "dormant": "int64"}  # fmt: skip
    return frame.reindex(columns=list(columns)).astype(columns)
