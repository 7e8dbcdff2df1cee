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
* ``state_<family>_meta``: the ``seq`` the state covers and a signature of what it
  depends on (time zone, funnel definitions, products left out). A state whose ``seq`` is
  not the one the engine last processed (``LedgerView.last_seq``), or whose signature
  differs, is rebuilt from the ledger, so it never serves stale numbers; so is every full
  run. State and meta change in one transaction.

The SQL is ``growthwatch.metrics.sql.queries``; pandas only turns the cell counts into
frames (``cohorts.logo_cells``, ``funnels.step_cells`` / ``branch_cells``).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import duckdb
import numpy as np
import pandas as pd

from growthwatch.metrics import cohorts, funnels
from growthwatch.metrics._frame import TIME_DTYPE, empty, local_month_numbers, month_starts
from growthwatch.metrics.reads import LedgerView
from growthwatch.metrics.settings import Funnel
from growthwatch.metrics.sql import literal, literals
from growthwatch.metrics.sql import queries as q

__all__ = ["funnel_frames", "logo_retention"]

_COHORT_TABLES = """
CREATE TABLE IF NOT EXISTS state_cohorts_meta (seq BIGINT, signature VARCHAR);
CREATE TABLE IF NOT EXISTS state_cohorts_members (product VARCHAR, subject VARCHAR,
    cohort BIGINT);
CREATE TABLE IF NOT EXISTS state_cohorts_active (product VARCHAR, subject VARCHAR,
    month BIGINT);
"""
_FUNNEL_TABLES = """
CREATE TABLE IF NOT EXISTS state_funnels_meta (seq BIGINT, signature VARCHAR);
CREATE TABLE IF NOT EXISTS state_funnels_users (funnel VARCHAR, product VARCHAR,
    subject VARCHAR, t0 TIMESTAMPTZ, reached TIMESTAMPTZ, last_step BIGINT, next VARCHAR);
"""
_LOWEST = -(2**31)  # a month number before any


def _month(at: pd.Timestamp, tz: str) -> int:
    return int(local_month_numbers(pd.Series([at]).astype(TIME_DTYPE), tz)[0])


def _scalar(con: duckdb.DuckDBPyConnection, sql: str) -> Any:
    row = con.execute(sql).fetchone()
    return None if row is None else row[0]


class _Run:
    """One family's state pass: the cursor, the ``seq`` range and whether to rebuild."""

    def __init__(
        self, view: LedgerView, family: str, ddl: str, signature: dict[str, Any],
        full: bool,
    ) -> None:  # fmt: skip
        self.view = view
        self.family = family
        self.con = view.ledger.connection
        self.upto = int(_scalar(self.con, "SELECT coalesce(max(seq), 0) FROM events"))
        self.signature = json.dumps({**signature, "exclude": sorted(view.exclude)},
                                    sort_keys=True)  # fmt: skip
        self.con.execute("BEGIN TRANSACTION")
        self.con.execute(ddl)
        meta = self.con.execute(f"SELECT seq, signature FROM state_{family}_meta").fetchall()
        self.rebuild = full or meta != [(view.last_seq, self.signature)]
        self.done = False

    def where(self, *, new: bool = False, since: pd.Timestamp | None = None) -> str:
        """The ledger rows of this pass: all up to ``upto``, or only the new ones."""
        return q.ledger_where(
            self.view.exclude, after_seq=self.view.last_seq if new else None,
            upto_seq=self.upto, since=None if since is None else since.isoformat(),
        )  # fmt: skip

    def commit(self) -> None:
        self.con.execute(f"DELETE FROM state_{self.family}_meta")
        self.con.execute(f"INSERT INTO state_{self.family}_meta VALUES (?, ?)",
                         [self.upto, self.signature])  # fmt: skip
        self.con.execute("COMMIT")
        self.done = True

    def close(self) -> None:
        """Abort what a failed pass left uncommitted (the state stays as it was)."""
        try:
            if not self.done:
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
    run = _Run(view, "cohorts", _COHORT_TABLES, {"tz": tz}, start is None)
    try:
        con = run.con
        if run.rebuild:
            src = q.Source(where=run.where())
            con.execute(f"CREATE OR REPLACE TABLE state_cohorts_members AS {q.logo_members(src, tz)}")
            con.execute(f"CREATE OR REPLACE TABLE state_cohorts_active AS {q.logo_active(src, tz)} "
                        "ORDER BY month")  # fmt: skip
        elif run.upto > view.last_seq:
            _fold_cohorts(con, q.Source(where=run.where(new=True)), tz)
        run.commit()
        from_month = _LOWEST if start is None else _month(start, tz)
        cells = con.execute(q.logo_cells("state_cohorts_members", "state_cohorts_active",
                                         from_month)).df()  # fmt: skip
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


def _fold_cohorts(con: duckdb.DuckDBPyConnection, new: q.Source, tz: str) -> None:
    """Fold the new events into the cohort state: earlier cohorts, new members, new
    active months."""
    con.execute(f"CREATE OR REPLACE TEMP TABLE new_members AS {q.logo_members(new, tz)}")
    con.execute(
        "UPDATE state_cohorts_members AS s SET cohort = n.cohort FROM new_members AS n "
        "WHERE s.product = n.product AND s.subject = n.subject AND n.cohort < s.cohort"
    )
    con.execute(
        "INSERT INTO state_cohorts_members SELECT n.product, n.subject, n.cohort "
        "FROM new_members AS n WHERE NOT EXISTS (SELECT 1 FROM state_cohorts_members AS s "
        "WHERE s.product = n.product AND s.subject = n.subject)"
    )
    con.execute(f"CREATE OR REPLACE TEMP TABLE new_active AS {q.logo_active(new, tz)}")
    con.execute(
        "INSERT INTO state_cohorts_active SELECT n.product, n.subject, n.month "
        "FROM new_active AS n WHERE NOT EXISTS (SELECT 1 FROM state_cohorts_active AS s "
        "WHERE s.month >= (SELECT min(month) FROM new_active) AND s.month = n.month "
        "AND s.product = n.product AND s.subject = n.subject)"
    )
    con.execute("DROP TABLE new_members")
    con.execute("DROP TABLE new_active")


# -- funnels -------------------------------------------------------------------------------


def funnel_frames(
    view: LedgerView, start: pd.Timestamp | None
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(``funnel_steps``, ``funnel_branches``) of every configured funnel for the entry
    months from ``start``'s on (all with ``start`` None), as
    ``growthwatch.metrics.funnels.funnels`` over the ledger."""
    settings = view.settings
    tz = settings.timezone
    if not settings.funnels:
        return empty(funnels.STEP_COLUMNS), empty(funnels.BRANCH_COLUMNS)
    defs = [[f.name, list(f.steps), f.window_days, list(funnels.funnel_types(f, settings))]
            for f in settings.funnels]  # fmt: skip
    run = _Run(view, "funnels", _FUNNEL_TABLES, {"funnels": defs}, start is None)
    try:
        con = run.con
        if run.rebuild:
            con.execute("DELETE FROM state_funnels_users")
        for f in settings.funnels:
            wanted = funnels.funnel_types(f, settings)
            if run.rebuild:
                users = q.funnel_users(f.steps, f.window_days, wanted, q.Source(where=run.where()))
                con.execute(f"INSERT INTO state_funnels_users SELECT {literal(f.name)}, * "
                            f"FROM ({users})")  # fmt: skip
            elif run.upto > view.last_seq:
                _fold_funnel(run, f, wanted)
        run.commit()
        from_month = _LOWEST if start is None else _month(start, tz)
        parts = []
        for f in settings.funnels:
            mine = f"(SELECT * FROM state_funnels_users WHERE funnel = {literal(f.name)})"
            counts = con.execute(q.funnel_counts(mine, tz, from_month)).df()
            parts.append(_funnel_cells(counts, f, view, tz))
    finally:
        run.close()
    return (pd.concat([p[0] for p in parts], ignore_index=True),
            pd.concat([p[1] for p in parts], ignore_index=True))  # fmt: skip


def _fold_funnel(run: _Run, f: Funnel, wanted: Sequence[str]) -> None:
    """Fold the new events into one funnel's user state: entries moved earlier or new,
    then every user who entered within a window before the earliest new event followed
    again from the events since then."""
    con, name = run.con, literal(f.name)
    new = q.Source(where=run.where(new=True))
    relevant = f"subject IS NOT NULL AND (type IN {literals(wanted)} OR kind IN {literals(wanted)})"
    earliest = _scalar(con, f"SELECT epoch_us(min(ts)) {new.rows(relevant)}")
    if earliest is None:
        return
    since = pd.Timestamp(int(earliest), unit="us", tz="UTC") - pd.Timedelta(days=f.window_days)
    step = f.steps[0]
    con.execute(
        "CREATE OR REPLACE TEMP TABLE new_entries AS SELECT product, subject, min(ts) AS t0 "
        + new.rows(f"subject IS NOT NULL AND (type = {literal(step)} OR kind = {literal(step)})")
        + " GROUP BY product, subject"
    )
    con.execute(
        "UPDATE state_funnels_users AS s SET t0 = n.t0 FROM new_entries AS n "
        f"WHERE s.funnel = {name} AND s.product = n.product AND s.subject = n.subject "
        "AND n.t0 < s.t0"
    )
    con.execute(
        f"INSERT INTO state_funnels_users SELECT {name}, n.product, n.subject, n.t0, n.t0, 0, "
        "NULL FROM new_entries AS n WHERE NOT EXISTS (SELECT 1 FROM state_funnels_users AS s "
        f"WHERE s.funnel = {name} AND s.product = n.product AND s.subject = n.subject)"
    )
    recent = f"s.funnel = {name} AND s.t0 >= CAST({literal(since.isoformat())} AS TIMESTAMPTZ)"
    entries = f"(SELECT s.product AS product, s.subject AS subject, s.t0 AS t0 FROM state_funnels_users AS s WHERE {recent})"
    users = q.funnel_users(f.steps, f.window_days, wanted,
                           q.Source(where=run.where(since=since)), entries=entries)  # fmt: skip
    con.execute(f"CREATE OR REPLACE TEMP TABLE redo AS SELECT {name} AS funnel, * FROM ({users})")
    con.execute(f"DELETE FROM state_funnels_users AS s WHERE {recent}")
    con.execute("INSERT INTO state_funnels_users SELECT * FROM redo")
    con.execute("DROP TABLE redo")
    con.execute("DROP TABLE new_entries")


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
