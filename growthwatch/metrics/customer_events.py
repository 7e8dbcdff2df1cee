"""The subscription-side events, copied into an indexed table so one customer's history is
a lookup, not a scan of the ledger.

Why: an update of the subscription and trial families recomputes the customers new events
touch (``growthwatch.metrics.touched``), which needs all their events of a few types. The
ledger's ``events`` table has no index on the customer, so that read scans every row
(0.8 s on the 10M-event demo ledger, ten times that at 100M). This table holds the events
of ``TYPES`` only (subscription events, payments, failed payments, trial starts: about 5%
of a typical ledger) with an ART index on ``subject``, kept in step with the ledger:
each sync appends the events after the ``seq`` it covers (a ``seq`` range: zone maps, no
scan). A ledger that lost events below that ``seq`` (a trim, a repair: the event count
differs) makes it rebuild from the ledger.

Tables in the ledger file (created ``IF NOT EXISTS``): ``state_subscriptions_events`` (the
copy) and ``state_subscriptions_events_seq`` (one row: the ``seq`` it covers and the
ledger's event count then).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Sequence

import pandas as pd
import pyarrow as pa

from growthwatch.events import EventType
from growthwatch.metrics._frame import LEDGER_ORDER
from growthwatch.metrics.mrr import MRR_TYPES
from growthwatch.metrics.reads import LedgerView, events_frame, select_list
from growthwatch.metrics.touched import event_count

log = logging.getLogger(__name__)
TYPES = tuple(dict.fromkeys((*MRR_TYPES, EventType.TRIAL_STARTED.value)))
TABLE = "state_subscriptions_events"
TYPES_SQL = ", ".join(f"'{t}'" for t in TYPES)  # our own constants: safe to inline


def sync(view: LedgerView, upto: int) -> None:
    """Bring the copy to ``seq <= upto`` (rebuilt when the ledger lost events it holds)."""
    sync_copies(view, upto, [(TABLE, TYPES_SQL)])


_STAGE = "state_copy_stage"


def sync_copies(view: LedgerView, upto: int, copies: Sequence[tuple[str, str]]) -> None:
    """Bring each indexed copy (``table``, the events of ``types_sql``: a list of our own
    type constants, inlined) to ``seq <= upto``: append the events after the ``seq`` it
    covers (kept in ``<table>_seq`` with the ledger's event count then), or rebuild it
    when the ledger lost events below that ``seq``. One transaction; one way for every
    such copy.

    Copies rebuilt together are cut from one read of the ledger: their types are a few
    percent of the events but on nearly every vector of rows, so each read decompresses
    every column of the whole table (1.5 s on the 10M demo ledger; the two copies of
    the segment family took 4.0 s, now 3.7: most of it is writing them). That read goes
    into a temporary table before the transaction (DuckDB scans a table created in the
    open transaction on one thread)."""
    cursor = view.ledger.connection
    rebuilt: list[tuple[str, str]] = []
    behind: list[tuple[str, str, int]] = []
    staged = False  # (an update's sync, the common case, makes no stage to drop)
    try:
        for table, types_sql in copies:
            seq_table = f"{table}_seq"
            cursor.execute(f"CREATE TABLE IF NOT EXISTS {seq_table} (seq BIGINT, count BIGINT)")
            rows = cursor.execute(f"SELECT seq, count FROM {seq_table}").fetchall()
            covered = int(rows[0][0]) if rows else None
            if covered is None or covered > upto or event_count(view, covered) != rows[0][1]:
                rebuilt.append((table, types_sql))
            elif covered < upto:
                behind.append((table, types_sql, covered))
        if not rebuilt and not behind:
            return
        source = "events"
        if len(rebuilt) > 1:
            staged = True
            every = ", ".join(types_sql for _, types_sql in rebuilt)
            cursor.execute(f"CREATE OR REPLACE TEMP TABLE {_STAGE} AS SELECT * FROM events "
                           f"WHERE seq <= ? AND type IN ({every})", [upto])  # fmt: skip
            source = _STAGE
        cursor.execute("BEGIN TRANSACTION")
        for table, types_sql in rebuilt:
            cursor.execute(f"DROP TABLE IF EXISTS {table}")
            cursor.execute(f"CREATE TABLE {table} AS SELECT * FROM {source} WHERE seq <= ? "
                           f"AND type IN ({types_sql})", [upto])  # fmt: skip
            cursor.execute(f"CREATE INDEX {table}_subject ON {table} (subject)")
        for table, types_sql, covered in behind:
            cursor.execute(f"INSERT INTO {table} SELECT * FROM events WHERE seq > ? AND seq <= ? "
                           f"AND type IN ({types_sql})", [covered, upto])  # fmt: skip
        count = event_count(view, upto)
        for done in [t for t, _ in rebuilt] + [t for t, _, _ in behind]:
            cursor.execute(f"DELETE FROM {done}_seq")
            cursor.execute(f"INSERT INTO {done}_seq VALUES (?, ?)", [upto, count])
        cursor.execute("COMMIT")
    except Exception:
        with contextlib.suppress(Exception):  # nothing begun yet
            cursor.execute("ROLLBACK")
        raise
    finally:
        if staged:
            with contextlib.suppress(Exception):
                cursor.execute(f"DROP TABLE IF EXISTS {_STAGE}")
        cursor.close()
    if rebuilt:
        # A fresh ART index stays in memory until a checkpoint (32 of the 62 MiB DuckDB
        # share of a 10M-event recompute at ``memory_limit_mb`` 450: the segments' reads
        # after it ran out of memory); written to the file it is evictable.
        view.ledger.checkpoint()


def read(
    view: LedgerView, types: Sequence[str], columns: Sequence[str], subjects: Sequence[str]
) -> pd.DataFrame:
    """The copy's events of ``types`` and ``subjects`` (an index lookup), in ledger order and
    ``EVENT_COLUMNS`` layout like ``reads.read_events``, plus their ``seq``; the view's
    excluded products left out. Call ``sync`` first."""
    wanted = set(columns)
    select = select_list(wanted)
    marks = ", ".join("?" for _ in subjects)
    kinds = ", ".join("?" for _ in types)
    # The subjects' rows first, then their types: with both conditions on one scan
    # DuckDB plans a scan of the whole copy instead of the index lookup (989 customers
    # of the 101.5M ledger's 4.6M-row copy: 0.47 s, against 0.03 s from the index).
    sql = (f"WITH theirs AS MATERIALIZED (SELECT * FROM {TABLE} WHERE subject IN ({marks})) "
           f"SELECT {select}, seq FROM theirs WHERE type IN ({kinds}) "
           "ORDER BY ts, idempotency_key")  # fmt: skip
    cursor = view.ledger.connection
    try:
        result = cursor.execute(sql, [*subjects, *types]).arrow()
        table = result if isinstance(result, pa.Table) else result.read_all()
    finally:
        cursor.close()
    frame = events_frame(table, wanted)
    if view.exclude:
        frame = frame[~frame["product"].isin(list(view.exclude)).to_numpy()]
    frame = frame.reset_index(drop=True)
    frame.attrs[LEDGER_ORDER] = True
    return frame
