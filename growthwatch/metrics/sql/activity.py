"""The active-user rollup in the ledger file: what DAU/WAU/MAU and the lifecycle read.

Why: ``active_use`` is three quarters of all events, and both families used to count them
from the raw events on every run (an update re-read 30 days of them, and every user's first
activity over the whole history). The rollup keeps what they depend on, once: the distinct
(product, user, local day) of the activity, and each user's first activity (tables in
``growthwatch.metrics.sql.activity_queries``). Both families read only the days from one
period before the buckets they rewrite, by a range on ``day`` (the day table is in day
order, so DuckDB skips the older row groups); the first-activity flag is on the day rows,
so no read touches the users' history.

Kept up to date by ``seq`` (``sync``): an update folds in only the events after the
``seq`` the rollup covers (their distinct user-days, anti-joined with the days already
there; a late event is just another row; a user's first activity moves earlier with a
``min``). ``state_activity_meta`` holds that ``seq``, how many events the ledger had up to
it (a deletion below it, ``Ledger.delete_before``, changes the count) and the time zone the
days are in; when any does not match the ledger, the rollup is rebuilt from it, so it never
serves stale numbers. Products left out of a run (``LedgerView.exclude``) are filtered at
read time: the rollup covers every product.

A full build is a few GROUP BYs and one join in DuckDB, which spill beyond its memory
limit; the window queries of a full run go by groups of products whose day rows fit the
limit (``_groups``).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import duckdb
import pandas as pd

from growthwatch.metrics._frame import TIME_DTYPE, local_day_numbers
from growthwatch.metrics.reads import LedgerView
from growthwatch.metrics.sql import activity_queries as aq
from growthwatch.metrics.sql import literal, literals
from growthwatch.metrics.touched import event_count

__all__ = ["Synced", "lifecycle_counts", "products", "rolling_edges", "sync"]

DAYS = "state_activity_days"
_TABLES = """
CREATE TABLE IF NOT EXISTS state_activity_meta (seq BIGINT, count BIGINT, signature VARCHAR);
CREATE TABLE IF NOT EXISTS state_activity_products (pid BIGINT, product VARCHAR,
    first TIMESTAMPTZ, day BIGINT);
CREATE TABLE IF NOT EXISTS state_activity_users (uid BIGINT, pid BIGINT, product VARCHAR,
    subject VARCHAR, first TIMESTAMPTZ, day BIGINT);
CREATE TABLE IF NOT EXISTS state_activity_days (pid BIGINT, uid BIGINT, day BIGINT,
    first BOOLEAN);
"""
# bytes a day row costs a window query (sorted uid, day, pid and the partition overhead):
# how many rows a full run's window query takes per group of products
_ROW_BYTES = 100


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
    return json.dumps({"tz": view.settings.timezone, "version": 1})


@contextmanager
def _cursor(view: LedgerView) -> Iterator[duckdb.DuckDBPyConnection]:
    con = view.ledger.connection
    try:
        yield con
    finally:
        con.close()


def sync(view: LedgerView, *, rebuild: bool = False) -> Synced:
    """Bring the rollup to the ledger's last ``seq``: fold the new events in, or rebuild
    it when it does not match the ledger (or ``rebuild``). One transaction."""
    with _cursor(view) as con:
        upto = int(_scalar(con, "SELECT coalesce(max(seq), 0) FROM events"))
        con.execute("BEGIN TRANSACTION")
        try:
            con.execute(_TABLES)
            meta = con.execute("SELECT seq, count, signature FROM state_activity_meta").fetchall()
            after = int(meta[0][0]) if len(meta) == 1 else -1
            stale = (rebuild or len(meta) != 1 or meta[0][2] != _signature(view)
                     or after > upto or event_count(view, after) != int(meta[0][1]))  # fmt: skip
            if stale:
                _build(con, view, upto)
                done = Synced(upto, True, 0)
            elif upto > after:
                done = Synced(upto, False, _fold(con, view, after, upto))
            else:
                con.execute("ROLLBACK")
                return Synced(upto, False, 0)
            con.execute("DELETE FROM state_activity_meta")
            con.execute("INSERT INTO state_activity_meta VALUES (?, ?, ?)",
                        [upto, event_count(view, upto), _signature(view)])  # fmt: skip
            con.execute("COMMIT")
        except BaseException:
            con.execute("ROLLBACK")
            raise
    return done


def _build(con: duckdb.DuckDBPyConnection, view: LedgerView, upto: int) -> None:
    """The rollup from every event up to ``upto``: one pass over the activity (grouped by
    user and day, the time zone converted once per event), then users, products and days
    from that."""
    tz = view.settings.timezone
    con.execute("DROP INDEX IF EXISTS state_activity_users_subject")
    con.execute(f"CREATE OR REPLACE TEMP TABLE raw_days AS {aq.user_days(f'seq <= {upto}', tz)}")
    con.execute("CREATE OR REPLACE TEMP TABLE raw_users AS SELECT product, subject, "
                "min(first) AS first, min(day) AS day FROM raw_days GROUP BY product, subject")  # fmt: skip
    con.execute("CREATE OR REPLACE TABLE state_activity_products AS SELECT row_number() OVER "
                "(ORDER BY product) AS pid, product, min(first) AS first, min(day) AS day "
                "FROM raw_users GROUP BY product")  # fmt: skip
    con.execute("CREATE OR REPLACE TABLE state_activity_users AS SELECT row_number() OVER () "
                "AS uid, p.pid AS pid, u.product AS product, u.subject AS subject, "
                "u.first AS first, u.day AS day FROM raw_users AS u "
                "JOIN state_activity_products AS p ON p.product = u.product")  # fmt: skip
    # in day order: an update's range on ``day`` skips the older row groups
    con.execute(f"CREATE OR REPLACE TABLE {DAYS} AS SELECT u.pid AS pid, u.uid AS uid, "
                "r.day AS day, r.day = u.day AS first FROM raw_days AS r "
                "JOIN state_activity_users AS u ON u.product = r.product "
                "AND u.subject = r.subject ORDER BY r.day, u.uid")  # fmt: skip
    con.execute("CREATE INDEX state_activity_users_subject ON state_activity_users (subject)")
    con.execute("DROP TABLE raw_days")
    con.execute("DROP TABLE raw_users")


def _fold(con: duckdb.DuckDBPyConnection, view: LedgerView, after: int, upto: int) -> int:
    """Fold the events in (after, upto] in: new products and users get numbers, a user's
    first activity moves earlier (and the first-day flag with it), user-days not seen
    before are added. Returns the active_use events read."""
    tz = view.settings.timezone
    con.execute("CREATE OR REPLACE TEMP TABLE new_activity AS "
                + aq.new_activity(f"seq > {after} AND seq <= {upto}", tz))  # fmt: skip
    n = int(_scalar(con, "SELECT count(*) FROM new_activity"))
    if not n:
        con.execute("DROP TABLE new_activity")
        return 0
    con.execute("CREATE OR REPLACE TEMP TABLE new_users AS SELECT product, subject, "
                "arg_min(day, ts) AS day, min(ts) AS first FROM new_activity "
                "GROUP BY product, subject")  # fmt: skip
    # products: new ones numbered after the last, known ones' first activity by min
    con.execute(
        "INSERT INTO state_activity_products SELECT (SELECT coalesce(max(pid), 0) FROM "
        "state_activity_products) + row_number() OVER (ORDER BY n.product), n.product, "
        "min(n.first), arg_min(n.day, n.first) FROM new_users AS n WHERE n.product NOT IN "
        "(SELECT product FROM state_activity_products) GROUP BY n.product"
    )  # fmt: skip
    con.execute(
        "UPDATE state_activity_products AS p SET first = n.first, day = n.day FROM "
        "(SELECT product, min(first) AS first, arg_min(day, first) AS day FROM new_users "
        "GROUP BY product) AS n WHERE n.product = p.product AND n.first < p.first"
    )
    # the users the events are of, as the rollup knows them (an index lookup by subject)
    subjects = literals(r[0] for r in con.execute("SELECT DISTINCT subject FROM new_users").fetchall())
    con.execute(
        "CREATE OR REPLACE TEMP TABLE theirs AS SELECT uid, product, subject, first, day "
        f"FROM state_activity_users WHERE subject IN {subjects}"
    )
    con.execute(
        "INSERT INTO state_activity_users SELECT (SELECT coalesce(max(uid), 0) FROM "
        "state_activity_users) + row_number() OVER (ORDER BY n.product, n.subject), p.pid, "
        "n.product, n.subject, n.first, n.day FROM new_users AS n "
        "JOIN state_activity_products AS p ON p.product = n.product WHERE NOT EXISTS "
        "(SELECT 1 FROM theirs AS t WHERE t.product = n.product AND t.subject = n.subject)"
    )
    # users whose first activity moved earlier; onto an earlier day: the flag moves too
    con.execute(
        "CREATE OR REPLACE TEMP TABLE moved AS SELECT t.uid AS uid, t.day AS old_day, "
        "n.day AS day, n.first AS first FROM theirs AS t JOIN new_users AS n "
        "ON n.product = t.product AND n.subject = t.subject WHERE n.first < t.first"
    )
    if _scalar(con, "SELECT count(*) FROM moved"):  # rare: a late event
        con.execute("UPDATE state_activity_users AS u SET first = m.first, day = m.day "
                    "FROM moved AS m WHERE u.uid = m.uid")  # fmt: skip
        for uid, old_day in con.execute(
            "SELECT uid, old_day FROM moved WHERE day <> old_day"
        ).fetchall():  # fmt: skip
            con.execute(f"UPDATE {DAYS} SET first = false WHERE day = ? AND uid = ?",
                        [old_day, uid])  # fmt: skip
    # the new user-days: those not in the rollup yet (looked up in their days' range only)
    con.execute(
        "CREATE OR REPLACE TEMP TABLE new_days AS SELECT DISTINCT u.pid AS pid, u.uid AS uid, "
        "a.day AS day, a.day = u.day AS first FROM new_activity AS a JOIN state_activity_users "
        f"AS u ON u.product = a.product AND u.subject = a.subject AND u.subject IN {subjects}"
    )
    lo, hi = con.execute("SELECT min(day), max(day) FROM new_days").fetchone() or (0, 0)
    con.execute(
        f"INSERT INTO {DAYS} SELECT n.pid, n.uid, n.day, n.first FROM new_days AS n "
        f"WHERE NOT EXISTS (SELECT 1 FROM (SELECT uid, day FROM {DAYS} WHERE day >= "
        f"{literal(int(lo))} AND day <= {literal(int(hi))}) AS d "
        "WHERE d.uid = n.uid AND d.day = n.day)"
    )
    for table in ("new_activity", "new_users", "theirs", "moved", "new_days"):
        con.execute(f"DROP TABLE {table}")
    return n


# -- reads ---------------------------------------------------------------------------------


def products(view: LedgerView) -> pd.DataFrame:
    """(pid, product, first): every product with activity and its first activity instant
    (the ``view``'s excluded products left out). The rollup must be ``sync``ed."""
    where = f"WHERE product NOT IN {literals(view.exclude)} " if view.exclude else ""
    with _cursor(view) as con:
        frame = con.execute(f"SELECT pid, product, first FROM state_activity_products {where}"
                            "ORDER BY pid").df()  # fmt: skip
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


def _groups(view: LedgerView, known: pd.DataFrame, start: pd.Timestamp | None) -> list[list[int]]:
    """The products' ids in groups a window query takes at once: all of them for an update
    (a few weeks of days), and on a full run groups whose day rows fit DuckDB's memory
    limit (``_ROW_BYTES`` each; a bigger product alone)."""
    pids = [int(p) for p in known["pid"]]
    limit = view.settings.duckdb_memory_mb
    if start is not None or limit is None or not pids:
        return [pids] if pids else []
    budget = max(1, limit * 2**20 // _ROW_BYTES)
    with _cursor(view) as con:
        sizes = dict(con.execute(f"SELECT pid, count(*) FROM {DAYS} GROUP BY pid").fetchall())
    groups: list[list[int]] = []
    size = 0
    for pid in pids:
        n = int(sizes.get(pid, 0))
        if not groups or size + n > budget:
            groups.append([])
            size = 0
        groups[-1].append(pid)
        size += n
    return groups


def _counts(view: LedgerView, start: pd.Timestamp | None, build: Any) -> pd.DataFrame:
    """Run ``build(where)`` per product group and name the products."""
    known = products(view)
    parts = []
    with _cursor(view) as con:
        for group in _groups(view, known, start):
            parts.append(con.execute(build(_where(view, start, group))).df())
    names = pd.Series(known["product"].to_numpy(), index=known["pid"].to_numpy())
    frame = (pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(
        {"pid": pd.Series(dtype="int64")}))  # fmt: skip
    frame.insert(0, "product", names.reindex(frame["pid"].to_numpy(dtype="int64")).to_numpy())
    return frame.drop(columns="pid")


def rolling_edges(view: LedgerView, start: pd.Timestamp | None) -> pd.DataFrame:
    """The active users' interval edges per (product, local day) from ``start``'s day
    (``engagement.rolling_edges``' columns), from the rollup (``sync`` it first)."""
    frame = _counts(view, start, lambda where: aq.rolling_edges(DAYS, where))
    columns = {"product": object, "day": "int64", "dau": "int64", "wau": "int64", "mau": "int64"}
    return frame.reindex(columns=list(columns)).astype(columns)


def lifecycle_counts(view: LedgerView, period: str, start: pd.Timestamp | None) -> pd.DataFrame:
    """Lifecycle counts per (product, period number ``k``) of the activity from ``start``'s
    day (``lifecycle.from_counts``' input), from the rollup (``sync`` it first)."""
    frame = _counts(view, start, lambda where: aq.lifecycle_counts(DAYS, where, period))
    columns = {"product": object, "k": "int64", "active": "int64", "new": "int64",
               "returning": "int64", "resurrected": "int64", "dormant": "int64"}  # fmt: skip
    return frame.reindex(columns=list(columns)).astype(columns)
