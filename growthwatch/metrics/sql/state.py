"""Logo retention and funnels over the ledger, with their per-user state kept in it.

Both metrics need, per user, a first event over the whole history (the signup month, the
funnel entry). A full run computes that per-user state by SQL over the ledger into tables
of the ledger file; an incremental run folds in only the events after the ``seq`` the
state covers and recounts the cells from the state, so its cost follows the new events
and the users they touch, not the history:

* ``state_cohorts_members`` (product, subject, cohort month) and ``state_cohorts_active``
  (product, subject, month: each month a user was active, once): a new signup can only
  move a user to an earlier cohort (a ``min``), a new active use only add a month.
* ``state_funnels_users`` (funnel, product, subject, entry, step reached, last step,
  next type): a new step-1 event can only move an entry earlier; every user whose entry
  is within a window before the earliest new event is followed again from the events
  since then (a user who entered earlier has a window that closed before any new event).
  ``state_funnels_cells`` (funnel, product, entry month, last step, next type, users):
  the counts, changed by the followed users' rows (old out, new in), so an update reads
  the state rows of the users its events touch (an index lookup) and the cells, never
  every user of a month; a fold that follows no one (a cancellation of a customer in no
  funnel) changes nothing and counts nothing (``changed_funnel_frames``).
* ``state_<family>_meta``: the ``seq`` the state covers and a signature of what it
  depends on (time zone, funnel definitions, products left out). A state that covers less
  than the engine last processed (``LedgerView.last_seq``: events it never folded), or
  whose signature differs, is rebuilt from the ledger, so it never serves stale numbers;
  so is every full run. State and meta change in one transaction.

The SQL is ``growthwatch.metrics.sql.queries``; pandas only turns the cell counts into
frames (``cohorts.logo_cells``, ``funnels.step_cells`` / ``branch_cells``).
"""

from __future__ import annotations

import contextlib
import json
import math
import re
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import duckdb
import numpy as np
import pandas as pd

from growthwatch.metrics import cohorts, funnels
from growthwatch.metrics._frame import TIME_DTYPE, empty, local_month_numbers, month_starts
from growthwatch.metrics.reads import LedgerView
from growthwatch.metrics.settings import Funnel
from growthwatch.metrics.sql import Span, literal, literals
from growthwatch.metrics.sql import queries as q

__all__ = [
    "changed_funnel_frames",
    "funnel_frames",
    "logo_retention",
    "part_threads",
    "partitioned",
    "parts_for",
    "rows_of_types",
    "tight",
]

_COHORT_TABLES = """
CREATE TABLE IF NOT EXISTS state_cohorts_meta (seq BIGINT, signature VARCHAR);
CREATE TABLE IF NOT EXISTS state_cohorts_members (product VARCHAR, subject VARCHAR,
    cohort BIGINT);
CREATE TABLE IF NOT EXISTS state_cohorts_active (product VARCHAR, subject VARCHAR,
    month BIGINT);
CREATE TABLE IF NOT EXISTS state_cohorts_cells (product VARCHAR, cohort BIGINT, month BIGINT,
    users BIGINT);
"""
_FUNNEL_TABLES = """
CREATE TABLE IF NOT EXISTS state_funnels_meta (seq BIGINT, signature VARCHAR);
CREATE TABLE IF NOT EXISTS state_funnels_users (funnel VARCHAR, product VARCHAR,
    subject VARCHAR, t0 TIMESTAMPTZ, reached TIMESTAMPTZ, last_step BIGINT, next VARCHAR);
CREATE TABLE IF NOT EXISTS state_funnels_cells (funnel VARCHAR, product VARCHAR,
    month BIGINT, last_step BIGINT, next VARCHAR, users BIGINT);
"""
_CELL_KEYS = ("product", "month", "last_step", "next")
# what the cohorts' and the funnels' statements read of an event (a partitioned build's
# staged copy: ``partitioned``; its sort's cost follows the width)
_COHORT_STAGED = ("product", "subject", "ts", "type")
_FUNNEL_STAGED = ("product", "subject", "ts", "type", "kind", "idempotency_key")
_LOWEST = -(2**31)  # a month number before any
# Input events one partition of a state build may aggregate per MiB of DuckDB's
# ``memory_limit``. The funnel users (hash joins and a window per user) ran out of memory
# at 61 MiB in one piece on the 10M-event demo ledger (1M funnel events) and fitted as 4
# partitions of 250k at 42 MiB: half of that.
#
# The cohorts' statements (the active months, a DISTINCT of the user-months, the heavier
# of the two) need a floor of their own plus a part per row, so they get both: a partition
# holds ``_COHORT_ROWS_PER_MIB`` events per MiB above ``_COHORT_FLOOR_MIB``. Measured on the
# 10M ledger (7.8M active uses) on one thread: no piece of 0.5M to 7.8M events fits 16 MiB
# (the floor: the scan's blocks and the aggregate's fixed part); 2M fit 65 MiB without
# spilling and 1M fit 24 MiB, i.e. some 40k events a MiB above the floor held in memory.
# Beyond, the DISTINCT spills, and whether a spilling piece fits is luck, not a rule: 7.8M
# fit 48 MiB and not 40; three times that fit 120 MiB but neither 96 nor 150 (and the
# 100M-event ledger's one-piece aggregates ran out of memory at 832 MB). So the rate is
# half the in-memory one, where a piece does not depend on spilling; the whole build (9
# partitions) fitted half of the 62 MiB that 10M events at ``memory_limit_mb`` 450 get.
# At the default's 832 MB share 100M events take 6 partitions (14M events each, some
# 360 MiB in memory by the measured rate, 2.2x under the limit). (Before: a flat 5,000
# a MiB, 27 partitions at 450 and 20 at 100M, each a full scan of the ledger.)
_COHORT_ROWS_PER_MIB = 20_000
_COHORT_FLOOR_MIB = 16.0
_FUNNEL_ROWS_PER_MIB = 3_000
_UNITS = {"bytes": 2**-20, "kib": 2**-10, "mib": 1.0, "gib": 2**10, "tib": 2**20,
          "kb": 1e3 / 2**20, "mb": 1e6 / 2**20, "gb": 1e9 / 2**20, "tb": 1e12 / 2**20}  # fmt: skip


def _month(at: pd.Timestamp, tz: str) -> int:
    return int(local_month_numbers(pd.Series([at]).astype(TIME_DTYPE), tz)[0])


def _subjects(con: duckdb.DuckDBPyConnection, table: str) -> str:
    """The distinct subjects of a (small, temporary) table as an ``IN`` list of literals:
    a list of values, unlike a subquery, lets DuckDB look them up in the ART index on
    ``subject`` instead of scanning the state table (up to its ``index_scan_max_count``
    matches; beyond, it scans, with the same result)."""
    return literals(r[0] for r in con.execute(f"SELECT DISTINCT subject FROM {table}").fetchall())


def _scalar(con: duckdb.DuckDBPyConnection, sql: str) -> Any:
    row = con.execute(sql).fetchone()
    return None if row is None else row[0]


def _limit_mib(con: duckdb.DuckDBPyConnection) -> float | None:
    """DuckDB's ``memory_limit`` in MiB (None: none readable, i.e. unlimited). Read from
    the database, not the settings: whoever set it (the engine from
    ``metrics.memory_limit_mb``, a test, a user's ``SET``) is the limit that binds."""
    text = str(_scalar(con, "SELECT current_setting('memory_limit')") or "")
    found = re.fullmatch(r"\s*([0-9.]+)\s*([A-Za-z]+)\s*", text)
    if found is None or found.group(2).lower() not in _UNITS:
        return None
    return float(found.group(1)) * _UNITS[found.group(2).lower()]


def _parts(
    run: _Run,
    condition: str,
    rows_per_mib: int,
    types: Sequence[str] | None = None,
    floor_mib: float = 0.0,
) -> int:
    """How many partitions of the users a rebuild over the events matching ``condition``
    takes to keep each piece within DuckDB's limit (1 when it is unlimited or roomy).

    ``types``: ``condition`` keeps only events of these types, so the events of these
    types bound its rows from above, and a count by type is what DuckDB answers from the
    type column's dictionary (30 ms of CPU on the 10M ledger, where the filtered count
    took 340 ms). At most a partition more than the exact count, never fewer.
    ``floor_mib``: see ``parts_for``."""
    if _limit_mib(run.con) is None:
        return 1
    if types is not None:
        rows = rows_of_types(run.con, types)
    else:
        rows = int(_scalar(run.con,
                           f"SELECT count(*) {q.Source(where=run.where()).rows(condition)}"))  # fmt: skip
    return parts_for(run.con, rows, rows_per_mib, floor_mib)


def rows_of_types(con: duckdb.DuckDBPyConnection, types: Sequence[str]) -> int:
    """The ledger's events of ``types``, from a count by type (DuckDB answers it from the
    type column's dictionary, without a filter's scan): an upper bound of any statement's
    input that keeps to these types."""
    by_type = con.execute("SELECT type, count(*) FROM events GROUP BY type").fetchall()
    return sum(int(n) for kind, n in by_type if kind in set(types))


def parts_for(
    con: duckdb.DuckDBPyConnection, rows: int, rows_per_mib: int, floor_mib: float = 0.0
) -> int:
    """How many partitions ``rows`` input rows take at ``rows_per_mib`` per MiB of DuckDB's
    ``memory_limit`` above ``floor_mib`` (what a statement needs whatever its rows; 1 when
    the limit is unlimited or roomy): ``_parts``' rule, for a build of another module (the
    active-user rollup) that counts its rows itself. A limit at or below the floor leaves
    a MiB's worth of rows a partition (as many partitions as that takes)."""
    limit = _limit_mib(con)
    if limit is None:
        return 1
    return max(1, math.ceil(rows / max(1.0, max(1.0, limit - floor_mib) * rows_per_mib)))


@contextlib.contextmanager
def _one_thread(con: duckdb.DuckDBPyConnection, when: bool) -> Iterator[None]:
    """Run a partitioned rebuild's statements on one DuckDB thread (``when``), then put
    back the thread count that was set. Under a binding ``memory_limit`` two threads
    each hold their own hash tables and ran out of memory where one fits (the 10M
    ledger's cohort state at 42 MiB, its funnel state at 61 MiB). ``threads`` is a
    setting of the whole database, so this is confined to the rebuild."""
    threads = int(_scalar(con, "SELECT current_setting('threads')") or 1)
    if not when or threads <= 1:
        yield
        return
    con.execute("SET threads = 1")
    try:
        yield
    finally:
        con.execute(f"SET threads = {threads}")


PART = "gw_part"  # a staged row's partition number (``partitioned``)
_STAGE_SORT_MIB = 256  # a DuckDB share from which ``partitioned`` sorts, on every thread


def tight(con: duckdb.DuckDBPyConnection) -> bool:
    """Whether DuckDB's share is below ``_STAGE_SORT_MIB``: where a partitioned build
    runs on one thread (``part_threads``: two threads' hash tables ran out of memory at
    42 and 61 MiB) and ``partitioned`` writes its copy unsorted. From it on, the
    partitions' statements can run on every thread, as the copy's sort does."""
    limit = _limit_mib(con)
    return limit is not None and limit < _STAGE_SORT_MIB


def part_threads(
    con: duckdb.DuckDBPyConnection, parts: int
) -> contextlib.AbstractContextManager[None]:
    """The threads a build's statements over ``parts`` partitions run on (of rows made
    outside a transaction: the active-user rollup, the cohorts, the traffic): one under
    a ``tight`` share, every thread otherwise. One rule for every such build."""
    return _one_thread(con, parts > 1 and tight(con))


@contextlib.contextmanager
def partitioned(
    con: duckdb.DuckDBPyConnection, name: str, where: str, columns: Sequence[str], parts: int
) -> Iterator[Callable[[int], q.Source]]:
    """The ledger's events ``where`` selects as ``parts`` disjoint partitions of the users
    (``queries.subject_part``): a function from a partition's number to its ``Source``.

    Why: a partitioned build used to read ``events`` once per partition, and each read
    scans the whole ledger, so its cost grew with the history times the partitions,
    which themselves grow with the history (at 100M demo events the traffic's 15
    partitions were 15 scans of 100M rows, and 16 partitions on the 10M ledger took
    13.2 s where one took 4.6). With more than one partition the rows are copied once,
    ``columns`` only, into the temporary table ``name`` with their partition number, in
    partition order, so each partition is a range of its row groups that their zone maps
    find (16 partitions on the 10M ledger: 5.8 s). The copy lives in DuckDB's storage
    and spills to its temporary directory like any table, and is dropped at the end.
    One partition reads ``events`` itself.

    Enter it before ``part_threads``: the copy's scan and sort spill within the limit on
    every thread (on the 101.5M ledger the cohorts' 82M rows, four columns, took 41.9 s on
    two threads and 60.4 s on one at the default's 832 MiB share; a partition's read of
    the copy then 2.3 s, where its scan of the ledger took 9.2 s). Under a share below
    ``_STAGE_SORT_MIB`` the copy is written on one thread in the order it is read, not
    sorted (the sort of 500k funnel events ran out of 24 MiB; a scan and an insert
    spill): each partition then scans the copy, which is still narrower than the
    ledger and holds only the selected rows (2.5 times a sorted copy's read on the
    101.5M ledger, 5.8 s against 2.3)."""
    if parts <= 1:
        yield lambda _i: q.Source(where=where)
        return
    selected = ", ".join(dict.fromkeys(columns))
    unsorted = tight(con)
    with _one_thread(con, unsorted):
        con.execute(f"CREATE OR REPLACE TEMP TABLE {name} AS SELECT {selected}, "
                    f"CAST({q.subject_hash(parts)} AS INTEGER) AS {PART} FROM events "
                    f"WHERE {where}" + ("" if unsorted else f" ORDER BY {PART}"))  # fmt: skip
    try:
        yield lambda i: q.Source(table=name, where=f"{PART} = {literal(int(i))}")
    finally:
        con.execute(f"DROP TABLE IF EXISTS {name}")


def _checkpoint(con: duckdb.DuckDBPyConnection) -> None:
    """Write a rebuilt state to the ledger file, which makes its memory evictable: a
    freshly built ART index stays resident until then (10 MB of the 24 MB a test allows,
    for 300k funnel users), so the next family's statements ran out of memory under a
    tight ``memory_limit``; checkpointed, its blocks are loaded again only where a lookup
    needs them. Best effort: a checkpoint that cannot run now (another transaction
    holds it) leaves that to DuckDB's own."""
    with contextlib.suppress(duckdb.Error):
        con.execute("CHECKPOINT")


class _Run:
    """One family's state pass: the cursor, the ``seq`` range and whether to rebuild."""

    def __init__(
        self, view: LedgerView, family: str, ddl: str, signature: dict[str, Any],
        full: bool, *, begin: bool = True,
    ) -> None:  # fmt: skip
        """``begin``: open the pass's transaction now; without it the caller does
        (``begin``) once what it computes outside the transaction is ready (a table
        created in the open transaction is scanned on one thread: ``_cohort_rows``)."""
        self.view = view
        self.family = family
        self.con = view.ledger.connection
        self.upto = view.max_seq()
        self.signature = json.dumps({**signature, "exclude": sorted(view.exclude)},
                                    sort_keys=True)  # fmt: skip
        self.begun = False
        if begin:
            self.begin()
        self.con.execute(ddl)
        meta = self.con.execute(f"SELECT seq, signature FROM state_{family}_meta").fetchall()
        # The state may cover more than the engine processed (an event stored between the
        # engine's summary and this pass): folding those again changes nothing (a min, a
        # set, recounted users), so the fold starts after them. It may cover less: the
        # engine passes a family by when no new event is of its types (a webhook's
        # cancellation and the cohorts), so its state stays at the seq it last ran; a
        # state is the whole ledger's up to its own seq (one transaction), so the fold
        # from there is exact. (That rebuilt the cohort state on the update after every
        # such webhook: 4.7 s at 10M events, about 200 s at 100M.)
        self.after = int(meta[0][0]) if len(meta) == 1 else 0
        # (covering more than the ledger holds, though, it is not this ledger's)
        self.rebuild = (full or len(meta) != 1 or meta[0][1] != self.signature
                        or self.after > self.upto)  # fmt: skip
        self.done = False

    def begin(self) -> None:
        self.con.execute("BEGIN TRANSACTION")
        self.begun = True

    def where(self, *, new: bool = False, since: pd.Timestamp | None = None) -> str:
        """The ledger rows of this pass: all up to ``upto``, or only the new ones."""
        return q.ledger_where(
            self.view.exclude, after_seq=self.after if new else None,
            upto_seq=self.upto, since=None if since is None else since.isoformat(),
        )  # fmt: skip

    def span(self) -> Span | None:
        """The first and last instant of the ledger (for ``month_number``)."""
        lo, hi = self.con.execute("SELECT epoch_us(min(ts)), epoch_us(max(ts)) FROM events"
                                  ).fetchone() or (None, None)  # fmt: skip
        if lo is None or hi is None:
            return None
        return pd.Timestamp(int(lo), unit="us", tz="UTC"), pd.Timestamp(
            int(hi), unit="us", tz="UTC"
        )

    def commit(self) -> None:
        self.con.execute(f"DELETE FROM state_{self.family}_meta")
        self.con.execute(f"INSERT INTO state_{self.family}_meta VALUES (?, ?)",
                         [self.upto, self.signature])  # fmt: skip
        self.con.execute("COMMIT")
        self.done = True
        if self.rebuild:
            _checkpoint(self.con)

    def close(self) -> None:
        """Abort what a failed pass left uncommitted (the state stays as it was)."""
        try:
            if self.begun and not self.done:
                self.con.execute("ROLLBACK")
        finally:
            self.con.close()


# -- logo retention ------------------------------------------------------------------------


def logo_retention(
    view: LedgerView, start: pd.Timestamp | None, until: pd.Timestamp | None
) -> pd.DataFrame:
    """``cohort_retention`` (basis logo) of the cells from ``start``'s month on (all with
    ``start`` None), as ``growthwatch.metrics.cohorts.logo_retention`` over the ledger."""
    tz = view.settings.timezone
    run = _Run(view, "cohorts", _COHORT_TABLES, {"tz": tz}, start is None, begin=False)
    try:
        con = run.con
        if run.rebuild and not tight(con):
            # the rows computed before the transaction (as the active-user rollup's:
            # ``activity.sync``), then copied in
            with _staged_cohort_rows(run, tz) as parts:
                run.begin()
                _write_cohorts(run, parts)
                _index_members(con)
                run.commit()
        else:
            run.begin()
            if run.rebuild:
                _cohort_rows(run, tz, into_state=True)
                _index_members(con)
            elif run.upto > run.after:
                _fold_cohorts(run, tz)
            run.commit()
        from_month = _LOWEST if start is None else _month(start, tz)
        cells = con.execute("SELECT product, cohort, month, users FROM state_cohorts_cells "
                            f"WHERE month IS NULL OR month >= {literal(from_month)}").df()  # fmt: skip
        last = _scalar(con, "SELECT greatest((SELECT max(month) FROM state_cohorts_active), "
                            "(SELECT max(cohort) FROM state_cohorts_members))")  # fmt: skip
    finally:
        run.close()
    sized = cells["month"].isna()
    if not sized.any():
        return empty(cohorts.COLUMNS)
    sizes = cells[sized].set_index(["product", "cohort"])["users"].astype("int64")
    retained = (cells[~sized].astype({"month": "int64"})
                .set_index(["product", "cohort", "month"])["users"].astype("int64"))  # fmt: skip
    last = int(last)
    if until is not None:
        last = max(last, _month(until, tz))
    return cohorts.logo_cells(sizes, retained, last, tz,
                              None if start is None else from_month)  # fmt: skip


_COHORT_RAW = ("cohort_members", "cohort_active", "cohort_cells")


def _cohort_rows(run: _Run, tz: str, *, into_state: bool) -> int:
    """The cohort state's rows from the whole ledger, in as many partitions of the users
    as DuckDB's ``memory_limit`` needs (``_parts``): each partition's members, active
    months and cells, the cells then summed (a user is in one partition, so the sums are
    the cells of the whole; identical to one piece, whatever the partitions). Returns the
    number of partitions.

    ``into_state``: straight into the state's tables, in the pass's transaction (under a
    ``tight`` share: a copy beside them in it ran out of 24 MB). Else into temporary
    tables (``_COHORT_RAW``, the active months with their partition: see
    ``_staged_cohort_rows``), computed before the transaction and copied in by
    ``_write_cohorts``: a table created in the open transaction is scanned on one
    thread, a committed one on every thread (the 10M demo ledger in two partitions: 7.9 s of partition statements in the
    transaction, 3.3 before it plus 1.4 to copy the rows into the state's tables; in
    one piece 6.3 s for the whole pass, now 5.5)."""
    con = run.con
    span = run.span()
    rows = "type IN ('signup', 'active_use') AND subject IS NOT NULL"
    parts = _parts(run, rows, _COHORT_ROWS_PER_MIB, ("signup", "active_use"), _COHORT_FLOOR_MIB)
    kind, members, active, cells = (
        ("TABLE", "state_cohorts_members", "state_cohorts_active", "state_cohorts_cells")
        if into_state else ("TEMP TABLE", *_COHORT_RAW)
    )  # fmt: skip
    part_column = "" if into_state else ", part INTEGER"
    con.execute(f"CREATE OR REPLACE {kind} {members} (product VARCHAR, subject VARCHAR, "
                "cohort BIGINT)")  # fmt: skip
    con.execute(f"CREATE OR REPLACE {kind} {active} (product VARCHAR, subject VARCHAR, "
                f"month BIGINT{part_column})")  # fmt: skip
    con.execute("CREATE OR REPLACE TEMP TABLE cell_parts (product VARCHAR, cohort BIGINT, "
                "month BIGINT, users BIGINT)")  # fmt: skip
    with (partitioned(con, "cohort_events", f"{run.where()} AND {rows}", _COHORT_STAGED,
                      parts) as part_of,
          part_threads(con, parts)):  # fmt: skip
        for i in range(parts):
            part = q.subject_part(i, parts)
            src = part_of(i)
            con.execute(f"INSERT INTO {members} " + q.logo_members(src, tz, span))
            if into_state:  # in month order (per partition): see ``_write_cohorts``
                con.execute(f"INSERT INTO {active} {q.logo_active(src, tz, span)} "
                            "ORDER BY month")  # fmt: skip
                theirs = f"(SELECT * FROM {active} WHERE {part})"
            else:
                con.execute(f"INSERT INTO {active} SELECT *, {literal(i)} FROM "
                            f"({q.logo_active(src, tz, span)})")  # fmt: skip
                theirs = (f"(SELECT product, subject, month FROM {active} "
                          f"WHERE part = {literal(i)})")  # fmt: skip
            con.execute("INSERT INTO cell_parts " + q.logo_cells(
                f"(SELECT * FROM {members} WHERE {part})", theirs, _LOWEST))  # fmt: skip
    con.execute(f"CREATE OR REPLACE {kind} {cells} AS SELECT product, cohort, month, "
                "CAST(sum(users) AS BIGINT) AS users FROM cell_parts "
                "GROUP BY product, cohort, month")  # fmt: skip
    con.execute("DROP TABLE cell_parts")
    return parts


@contextlib.contextmanager
def _staged_cohort_rows(run: _Run, tz: str) -> Iterator[int]:
    """``_cohort_rows`` into the temporary tables, dropped on the way out."""
    try:
        yield _cohort_rows(run, tz, into_state=False)
    finally:
        # (in an aborted transaction the drops fail, and its rollback drops the tables)
        with contextlib.suppress(duckdb.Error):
            for table in (*_COHORT_RAW, "cell_parts"):
                run.con.execute(f"DROP TABLE IF EXISTS {table}")


def _write_cohorts(run: _Run, parts: int) -> None:
    """The cohort state's tables from the temporary ones of ``_cohort_rows`` (``parts``
    partitions), in the pass's transaction: the active months in month order within each
    partition (the folds' lookups of recent months skip the older row groups)."""
    con = run.con
    con.execute("CREATE OR REPLACE TABLE state_cohorts_members AS SELECT * FROM cohort_members")
    con.execute("CREATE OR REPLACE TABLE state_cohorts_active (product VARCHAR, "
                "subject VARCHAR, month BIGINT)")  # fmt: skip
    for i in range(parts):
        con.execute("INSERT INTO state_cohorts_active SELECT product, subject, month FROM "
                    f"cohort_active WHERE part = {literal(i)} ORDER BY month")  # fmt: skip
    con.execute("CREATE OR REPLACE TABLE state_cohorts_cells AS SELECT * FROM cohort_cells")


# Members from which their subject index serves the fold's lookup: below, a hash
# semi-join scans the table in less time than the index lookups of an update's users take
# (10M demo ledger, 400k members, 782 users of 1,000 new events: 15 ms of CPU against 27
# ms warm and 72 ms on a cold start, which first loads the index); beyond, the scan grows
# with the users while the lookups do not. The index is built once the table reaches it.
_INDEXED_MEMBERS = 1_000_000
_SCAN_PER_LOOKUP = 1_000  # members a scan reads in the time of one index lookup (measured)


def _index_members(con: duckdb.DuckDBPyConnection) -> bool:
    """Whether the members' subject index is there, building it once the table reaches
    ``_INDEXED_MEMBERS`` rows (a state that grew past it since its build gets it then)."""
    members = int(_scalar(con, "SELECT count(*) FROM state_cohorts_members") or 0)
    if members < _INDEXED_MEMBERS:
        return False
    con.execute("CREATE INDEX IF NOT EXISTS state_cohorts_members_subject ON "
                "state_cohorts_members (subject)")  # fmt: skip
    return True


def _members_lookup(con: duckdb.DuckDBPyConnection) -> str:
    """The condition that picks the members of the users in ``new_events``: by the
    subject index (an ``IN`` list of literals) where the table is large for the users
    looked up, else a semi-join (a scan of the members)."""
    scan = "(product, subject) IN (SELECT product, subject FROM new_events)"
    members = int(_scalar(con, "SELECT count(*) FROM state_cohorts_members") or 0)
    if members < _INDEXED_MEMBERS:  # (a count DuckDB keeps: no scan)
        return scan
    users = int(_scalar(con, "SELECT count(DISTINCT subject) FROM new_events") or 0)
    if members > _SCAN_PER_LOOKUP * users and _index_members(con):
        return f"subject IN {_subjects(con, 'new_events')}"
    return scan


def _fold_cohorts(run: _Run, tz: str) -> None:
    """Fold the new events into the cohort state and its cells (``state_cohorts_cells``:
    the counts of ``queries.logo_cells``, sizes where ``month`` is NULL) by deltas:

    1. users whose cohort moves (a first signup, or one earlier than theirs): their size
       leaves the old cohort for the new one, and so do their active months (those at or
       after each cohort), looked up before this pass adds any;
    2. active months not seen before count for their user's (new) cohort.

    Every lookup of active months is from the earliest month concerned on (the table is
    in month order), so a fold reads the recent months, not the history."""
    con = run.con
    con.execute("CREATE OR REPLACE TEMP TABLE new_events AS SELECT product, subject, ts, type "
                + q.Source(where=run.where(new=True)).rows(
                    "type IN ('signup', 'active_use') AND subject IS NOT NULL"))  # fmt: skip
    new = q.Source("new_events")
    con.execute(f"CREATE OR REPLACE TEMP TABLE new_members AS {q.logo_members(new, tz)}")
    con.execute(f"CREATE OR REPLACE TEMP TABLE new_active AS {q.logo_active(new, tz)}")
    # One lookup of each state table, for the users of the new events only: their
    # membership, and their active months from the earliest month the fold can touch
    # (a cohort moves to a new signup's month; an active month is a new event's).
    con.execute(
        "CREATE OR REPLACE TEMP TABLE theirs AS SELECT * FROM state_cohorts_members "
        f"WHERE {_members_lookup(con)}"
    )
    earliest = _scalar(con, "SELECT min(m) FROM (SELECT min(cohort) AS m FROM new_members "
                            "UNION ALL SELECT min(month) FROM new_active)")  # fmt: skip
    con.execute(
        "CREATE OR REPLACE TEMP TABLE their_active AS SELECT * FROM state_cohorts_active "
        f"WHERE month >= {literal(_LOWEST if earliest is None else int(earliest))} "
        "AND (product, subject) IN (SELECT product, subject FROM new_events)"
    )
    con.execute(
        "CREATE OR REPLACE TEMP TABLE moved AS SELECT n.product AS product, n.subject AS subject, "
        "s.cohort AS old, n.cohort AS new FROM new_members AS n LEFT JOIN theirs "
        "AS s ON s.product = n.product AND s.subject = n.subject "
        "WHERE s.cohort IS NULL OR n.cohort < s.cohort"
    )
    con.execute("CREATE OR REPLACE TEMP TABLE deltas (product VARCHAR, cohort BIGINT, "
                "month BIGINT, d BIGINT)")  # fmt: skip
    moved_active = (
        "FROM moved AS m JOIN their_active AS a ON a.product = m.product "
        "AND a.subject = m.subject WHERE TRUE"
    )
    con.execute(
        "INSERT INTO deltas SELECT product, new, NULL, 1 FROM moved "
        "UNION ALL SELECT product, old, NULL, -1 FROM moved WHERE old IS NOT NULL "
        f"UNION ALL SELECT m.product, m.new, a.month, 1 {moved_active} AND a.month >= m.new "
        f"UNION ALL SELECT m.product, m.old, a.month, -1 {moved_active} "
        "AND m.old IS NOT NULL AND a.month >= m.old"
    )
    if _scalar(con, "SELECT count(*) FROM moved WHERE old IS NOT NULL"):  # rare: re-dated
        con.execute(
            "UPDATE state_cohorts_members AS s SET cohort = m.new FROM moved AS m "
            "WHERE m.old IS NOT NULL AND s.product = m.product AND s.subject = m.subject"
        )
    con.execute("INSERT INTO state_cohorts_members SELECT product, subject, new FROM moved "
                "WHERE old IS NULL")  # fmt: skip
    con.execute(
        "CREATE OR REPLACE TEMP TABLE added AS SELECT n.product AS product, n.subject AS subject, "
        "n.month AS month FROM new_active AS n WHERE NOT EXISTS (SELECT 1 FROM their_active "
        "AS s WHERE s.month = n.month AND s.product = n.product AND s.subject = n.subject)"
    )
    # an added month counts for its user's cohort as it is now (moved or as it was)
    con.execute(
        "INSERT INTO deltas SELECT a.product, c.cohort, a.month, 1 FROM added AS a "
        "JOIN (SELECT product, subject, new AS cohort FROM moved UNION ALL "
        "SELECT t.product, t.subject, t.cohort FROM theirs AS t WHERE NOT EXISTS (SELECT 1 "
        "FROM moved AS m WHERE m.product = t.product AND m.subject = t.subject)) AS c "
        "ON c.product = a.product AND c.subject = a.subject WHERE a.month >= c.cohort"
    )
    con.execute("INSERT INTO state_cohorts_active SELECT * FROM added")
    con.execute("CREATE OR REPLACE TEMP TABLE summed AS SELECT product, cohort, month, "
                "sum(d) AS d FROM deltas GROUP BY product, cohort, month")  # fmt: skip
    same = ("c.product = d.product AND c.cohort = d.cohort "
            "AND c.month IS NOT DISTINCT FROM d.month")  # fmt: skip
    con.execute(f"UPDATE state_cohorts_cells AS c SET users = c.users + d.d FROM summed AS d "
                f"WHERE {same}")  # fmt: skip
    con.execute("INSERT INTO state_cohorts_cells SELECT d.product, d.cohort, d.month, d.d "
                "FROM summed AS d WHERE NOT EXISTS (SELECT 1 FROM state_cohorts_cells AS c "
                f"WHERE {same})")  # fmt: skip
    con.execute("DELETE FROM state_cohorts_cells WHERE users = 0")  # a cohort left empty
    for table in ("new_events", "new_members", "new_active", "theirs", "their_active", "moved",
                  "deltas", "added", "summed"):  # fmt: skip
        con.execute(f"DROP TABLE {table}")


# -- funnels -------------------------------------------------------------------------------


def funnel_frames(
    view: LedgerView, start: pd.Timestamp | None
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(``funnel_steps``, ``funnel_branches``) of every configured funnel for the entry
    months from ``start``'s on (all with ``start`` None), as
    ``growthwatch.metrics.funnels.funnels`` over the ledger."""
    got = _funnel_pass(view, start, skip_unchanged=False)
    assert got is not None
    return got


def changed_funnel_frames(
    view: LedgerView, start: pd.Timestamp | None
) -> tuple[pd.DataFrame, pd.DataFrame] | None:
    """``funnel_frames``, or None when the new events changed no user's state and the
    state covered exactly what the engine last processed (``view.last_seq``): the series
    the last pass wrote are then these frames already, so nothing is counted (a recount
    reads every user of the months from ``start``'s, which grows with the users)."""
    return _funnel_pass(view, start, skip_unchanged=True)


def _funnel_pass(
    view: LedgerView, start: pd.Timestamp | None, *, skip_unchanged: bool
) -> tuple[pd.DataFrame, pd.DataFrame] | None:
    settings = view.settings
    tz = settings.timezone
    if not settings.funnels:
        return empty(funnels.STEP_COLUMNS), empty(funnels.BRANCH_COLUMNS)
    defs = [[f.name, list(f.steps), f.window_days, list(funnels.funnel_types(f, settings))]
            for f in settings.funnels]  # fmt: skip
    # the cells are counted by local month: a new time zone is a new state
    run = _Run(view, "funnels", _FUNNEL_TABLES, {"funnels": defs, "timezone": tz}, start is None)
    try:
        con = run.con
        if run.rebuild:
            # a new table, not a DELETE of the old rows: deleting them and inserting the
            # new ones in one transaction ran out of memory at COMMIT under a tight limit
            # (255k users at 24 MB), where a replaced table commits (its index goes too)
            con.execute("CREATE OR REPLACE TABLE state_funnels_users (funnel VARCHAR, "
                        "product VARCHAR, subject VARCHAR, t0 TIMESTAMPTZ, reached TIMESTAMPTZ, "
                        "last_step BIGINT, next VARCHAR)")  # fmt: skip
            con.execute("CREATE OR REPLACE TABLE state_funnels_cells (funnel VARCHAR, "
                        "product VARCHAR, month BIGINT, last_step BIGINT, next VARCHAR, "
                        "users BIGINT)")  # fmt: skip
        elif run.upto > run.after:  # the new events any funnel reads, once
            every = sorted({t for f in settings.funnels for t in funnels.funnel_types(f, settings)})
            con.execute(
                "CREATE OR REPLACE TEMP TABLE new_events AS SELECT product, subject, ts, type, "
                "kind " + q.Source(where=run.where(new=True)).rows(
                    f"subject IS NOT NULL AND (type IN {literals(every)} "
                    f"OR kind IN {literals(every)})"))  # fmt: skip
        # what the series hold was counted from the state as it is (the pass that wrote
        # them covered what the engine last processed, no later event was folded since)
        changed = run.rebuild or run.after != view.last_seq or not skip_unchanged
        for f in settings.funnels:
            wanted = funnels.funnel_types(f, settings)
            if run.rebuild:
                _rebuild_funnel(run, f, wanted)
            elif run.upto > run.after:
                changed = _fold_funnel(run, f, wanted, tz) or changed
        if run.rebuild:  # bulk insert first, then the index (an update's lookups)
            span = run.span()  # every user: compare, not convert
            for f in settings.funnels:
                mine = f"(SELECT * FROM state_funnels_users WHERE funnel = {literal(f.name)})"
                con.execute(f"INSERT INTO state_funnels_cells SELECT {literal(f.name)}, * FROM "
                            f"({q.funnel_counts(mine, tz, None, span)})")  # fmt: skip
            con.execute("CREATE INDEX state_funnels_users_subject ON state_funnels_users "
                        "(subject)")  # fmt: skip
        elif run.upto > run.after:
            con.execute("DROP TABLE new_events")
        run.commit()
        if not changed:
            return None
        # the kept cells: a few rows per product and month, whatever the users
        lowest = _LOWEST if start is None else _month(start, tz)
        parts = []
        for f in settings.funnels:
            counts = con.execute(
                "SELECT product, month, last_step, next, users FROM state_funnels_cells "
                f"WHERE funnel = {literal(f.name)} AND month >= {literal(lowest)}").df()  # fmt: skip
            parts.append(_funnel_cells(counts, f, view, tz))
    finally:
        run.close()
    return (pd.concat([p[0] for p in parts], ignore_index=True),
            pd.concat([p[1] for p in parts], ignore_index=True))  # fmt: skip


def _rebuild_funnel(run: _Run, f: Funnel, wanted: Sequence[str]) -> None:
    """One funnel's users from the whole ledger, in as many partitions of the users as
    DuckDB's ``memory_limit`` needs (``_parts``; a user's funnel depends on their own
    events only, so the partitions' rows are the whole's)."""
    relevant = (f"subject IS NOT NULL AND (type IN {literals(wanted)} "
                f"OR kind IN {literals(wanted)})")  # fmt: skip
    parts = _parts(run, relevant, _FUNNEL_ROWS_PER_MIB)
    with (partitioned(run.con, "funnel_events", f"{run.where()} AND {relevant}",
                      _FUNNEL_STAGED, parts) as part_of,
          _one_thread(run.con, parts > 1)):  # fmt: skip
        for i in range(parts):
            users = q.funnel_users(f.steps, f.window_days, wanted, part_of(i))
            run.con.execute(f"INSERT INTO state_funnels_users SELECT {literal(f.name)}, * "
                            f"FROM ({users})")  # fmt: skip


def _fold_funnel(run: _Run, f: Funnel, wanted: Sequence[str], tz: str) -> bool:
    """Fold the new events (``new_events``) into one funnel's user state: entries moved
    earlier or new, then the users with a new event who entered within a window before
    the earliest one followed again from the events since then (a user without a new
    event, or whose window closed before it, keeps their state). False: no user to follow
    again (the state did not change; the ledger is not read)."""
    con, name = run.con, literal(f.name)
    mine = f"(type IN {literals(wanted)} OR kind IN {literals(wanted)})"
    earliest = _scalar(con, f"SELECT epoch_us(min(ts)) FROM new_events WHERE {mine}")
    if earliest is None:
        return False
    since = pd.Timestamp(int(earliest), unit="us", tz="UTC") - pd.Timedelta(days=f.window_days)
    step = literal(f.steps[0])
    con.execute("CREATE OR REPLACE TEMP TABLE touched AS SELECT DISTINCT product, subject "
                f"FROM new_events WHERE {mine}")  # fmt: skip
    # One lookup of the state: the rows of the users with new events (and where they are),
    # by the subject index first and the funnel after (with both conditions on one scan
    # DuckDB scans the whole table: 831 users of the 101.5M ledger's 4M rows, 0.16 s
    # against 0.05 warm)
    con.execute(
        "CREATE OR REPLACE TEMP TABLE theirs AS WITH s AS MATERIALIZED (SELECT rowid AS rid, "
        "funnel, product, subject, t0 FROM state_funnels_users WHERE subject IN "
        f"{_subjects(con, 'touched')}) SELECT rid, product, subject, t0 FROM s "
        f"WHERE funnel = {name}"
    )
    # Their entries now: the earlier of the state's and the new step-1 events' (a user with
    # neither has not entered); those from a window before the earliest new event are the
    # users to follow again.
    con.execute(
        "CREATE OR REPLACE TEMP TABLE recent AS SELECT t.product AS product, t.subject AS subject, "
        "least(min(s.t0), min(CASE WHEN e.type = "
        + step
        + " OR e.kind = "
        + step
        + " THEN e.ts END)) AS t0 FROM touched AS t "
        "LEFT JOIN theirs AS s ON s.product = t.product AND s.subject = t.subject "
        "LEFT JOIN new_events AS e ON e.product = t.product AND e.subject = t.subject "
        "GROUP BY t.product, t.subject"
    )
    con.execute(f"DELETE FROM recent WHERE t0 IS NULL OR t0 < CAST({literal(since.isoformat())} "
                "AS TIMESTAMPTZ)")  # fmt: skip
    if not _scalar(con, "SELECT count(*) FROM recent"):
        # e.g. a cancellation (a branch type) of a customer in no funnel's window: nothing
        # to follow again, so no scan of the ledger's recent events either
        for table in ("recent", "theirs", "touched"):
            con.execute(f"DROP TABLE {table}")
        return False
    # their events since then: only theirs (any product: ``recent`` holds the pairs)
    theirs = f"{run.where(since=since)} AND subject IN {_subjects(con, 'recent')}"
    users = q.funnel_users(f.steps, f.window_days, wanted, q.Source(where=theirs),
                           entries="recent")  # fmt: skip
    con.execute(f"CREATE OR REPLACE TEMP TABLE redo AS SELECT {name} AS funnel, * FROM ({users})")
    gone = ("(SELECT s.rid FROM theirs AS s JOIN recent AS r ON r.product = s.product "
            "AND r.subject = s.subject)")  # fmt: skip
    # the cells' change: the followed users' new rows in, their old rows (by rowid: only
    # theirs are read) out
    old = f"(SELECT * FROM state_funnels_users WHERE rowid IN {gone})"
    keys = ", ".join(_CELL_KEYS)
    con.execute(
        f"CREATE OR REPLACE TEMP TABLE cell_delta AS SELECT {keys}, sum(users) AS users FROM "
        f"({q.funnel_counts('redo', tz)} UNION ALL SELECT {keys}, -users FROM "
        f"({q.funnel_counts(old, tz)})) GROUP BY {keys}"
    )
    con.execute(f"DELETE FROM state_funnels_users WHERE rowid IN {gone}")
    con.execute("INSERT INTO state_funnels_users SELECT * FROM redo")
    same = " AND ".join(f"c.{k} IS NOT DISTINCT FROM d.{k}" for k in _CELL_KEYS)
    con.execute(
        "CREATE OR REPLACE TEMP TABLE cell_new AS SELECT "
        + ", ".join(f"d.{k} AS {k}" for k in _CELL_KEYS)
        + ", coalesce(c.users, 0) + d.users AS users FROM cell_delta AS d LEFT JOIN "
        f"(SELECT * FROM state_funnels_cells WHERE funnel = {name}) AS c ON {same}"
    )
    con.execute(f"DELETE FROM state_funnels_cells AS c WHERE c.funnel = {name} AND EXISTS "
                f"(SELECT 1 FROM cell_delta AS d WHERE {same})")  # fmt: skip
    con.execute(f"INSERT INTO state_funnels_cells SELECT {name}, {keys}, users FROM cell_new "
                "WHERE users <> 0")  # fmt: skip
    for table in ("cell_new", "cell_delta", "redo", "recent", "theirs", "touched"):
        con.execute(f"DROP TABLE {table}")
    return True


def _funnel_cells(
    counts: pd.DataFrame, f: Funnel, view: LedgerView, tz: str
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The steps and branches frames of one funnel from its SQL counts."""
    if counts.empty:
        return empty(funnels.STEP_COLUMNS), empty(funnels.BRANCH_COLUMNS)
    months = counts["month"].to_numpy(dtype="int64")
    uniq = np.unique(months)
    starts = pd.Series(month_starts(uniq, tz).array, index=uniq)
    counts = counts.assign(month=starts.reindex(months).array,
                           last_step=counts["last_step"].astype("int64"),
                           users=counts["users"].astype("int64"))  # fmt: skip
    per_step = counts.groupby(["product", "month", "last_step"])["users"].sum()
    steps = funnels.step_cells(per_step.unstack(fill_value=0), f)
    stalled = counts[counts["next"].notna()]
    branch_counts = stalled.groupby(["product", "month", "last_step", "next"])["users"].sum()
    have = per_step.index.droplevel("last_step").unique()
    branches = funnels.branch_cells(branch_counts, have, f, view.settings)
    return steps, branches
