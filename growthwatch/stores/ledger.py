"""The ledger: every growth event once, in an embedded DuckDB file.

The ledger is the source of truth that metrics are recomputed from, so it must never count
an event twice: every event has an idempotency key (stored as a 16-byte UUID), and an
append stores only the events whose key the ledger does not hold yet (and, of events an
append brings twice, the first); a replayed webhook or a re-run backfill reports its events
as duplicates and changes nothing. Which keys the ledger holds is an exact in-memory set
(``growthwatch.stores.keyset``), loaded from the table on the first append and kept in step
with it by ``seq``, not a DuckDB primary key: the ART index cost the bulk insert about as
much again as storing the rows (see ``_insert``). All writes to one file in this process go
through one lock (``_file_state``), so the check and the insert are one step. Rows that fail
validation are kept in ``rejected_events`` with the reason, so nothing a source sent is
silently lost.

A ledger file made before the key set had ``idempotency_key UUID PRIMARY KEY``; opening it
for writing rebuilds the events table once without the index (``_drop_key_index``: the same
rows, seqs and sequence, in one transaction).

Every stored event gets a growing ``seq``; incremental consumers (metrics, archive) keep
the last ``seq`` they processed and read only what came after.

One process owns a DuckDB file for writing; within it the ledger is thread-safe (the
webhook receiver and the scheduler share one instance).
"""

from __future__ import annotations

import contextlib
import functools
import json
import threading
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import numpy.typing as npt
import pandas as pd
import pyarrow as pa

from growthwatch.events import EventType, GrowthEvent
from growthwatch.frames import EVENT_COLUMNS, RowProblem, check_table, events_to_frame
from growthwatch.stores.duckdb_file import DuckDBFile
from growthwatch.stores.keyset import Keys, KeySet, PieceKeys

# The events table (``{name}``: ``events``, or the new table of ``_drop_key_index``). No
# primary key: ``Ledger._insert`` stores only keys its ``KeySet`` does not hold.
_EVENTS_TABLE = """
CREATE TABLE IF NOT EXISTS {name} (
    idempotency_key UUID NOT NULL,
    seq BIGINT NOT NULL DEFAULT nextval('event_seq'),
    product VARCHAR NOT NULL,
    type VARCHAR NOT NULL,
    ts TIMESTAMPTZ NOT NULL,
    value DECIMAL(18, 6) NOT NULL,
    currency VARCHAR,
    subject VARCHAR,
    mrr_before DECIMAL(18, 6),
    mrr_after DECIMAL(18, 6),
    plan VARCHAR,
    channel VARCHAR,
    metadata VARCHAR,
    source VARCHAR NOT NULL,
    source_id VARCHAR NOT NULL,
    kind VARCHAR NOT NULL,
    ingested_at TIMESTAMPTZ NOT NULL
);
"""
_SCHEMA = (
    "CREATE SEQUENCE IF NOT EXISTS event_seq START 1;\n"
    + _EVENTS_TABLE.format(name="events")
    + """
CREATE TABLE IF NOT EXISTS rejected_events (
    rejected_at TIMESTAMPTZ NOT NULL,
    source VARCHAR,
    field VARCHAR NOT NULL,
    value VARCHAR,
    reason VARCHAR NOT NULL,
    record VARCHAR
);
"""
)

# How each ``EVENT_COLUMNS`` column is read back into frame form: the key as 32 hex digits
# (as ``idempotency_key`` makes it), money as float (frames carry floats, the table exact
# DECIMALs). Every reader of the events table selects through this.
SELECT_EXPR: dict[str, str] = {
    c: (
        "replace(CAST(idempotency_key AS VARCHAR), '-', '')"
        if c == "idempotency_key"
        else f"CAST({c} AS DOUBLE)"
        if c in ("value", "mrr_before", "mrr_after")
        else c
    )
    for c in EVENT_COLUMNS
}
_SELECT = ", ".join(f"{expr} AS {c}" for c, expr in SELECT_EXPR.items())


_COLUMNS = (
    "idempotency_key, product, type, ts, value, currency, subject, mrr_before, mrr_after, "
    "plan, channel, metadata, source, source_id, kind, ingested_at"
)
# The idempotency key in SQL, from the columns of an incoming frame, as its 32 hex digits
# (``_hex_keys`` turns them into the UUID's bytes).
_KEY_HEX = "substr(sha256(source || chr(31) || kind || chr(31) || source_id), 1, 32)"
_MONEY = ("value", "mrr_before", "mrr_after")
# The money columns as a read gives them back (``SELECT_EXPR``: the DECIMAL(18, 6) the
# insert stores, as DOUBLE), so the rows a piece stores are known without reading them.
_MONEY_AS_STORED = ", ".join(f"CAST(CAST({c} AS DECIMAL(18, 6)) AS DOUBLE) AS {c}"
                             for c in _MONEY)  # fmt: skip
_SMALL = 64  # up to this many events are inserted as parameter rows, not through a frame
_ONE_THREAD_ROWS = 10_000  # bulk inserts of at least this many rows run on one thread
# A frame with its keys (``_with_keys``) as the events table's columns (all but ``seq`` and
# ``ingested_at``), money cast to DECIMAL on the way.
_PREPARED_ROWS = """
    SELECT idempotency_key, product, type, ts,
        CAST(value AS DECIMAL(18, 6)) AS value, currency, subject,
        CAST(mrr_before AS DECIMAL(18, 6)) AS mrr_before,
        CAST(mrr_after AS DECIMAL(18, 6)) AS mrr_after,
        plan, channel, metadata, source, source_id, kind
    FROM incoming
"""
_scratch = threading.local()  # per thread: an in-memory DuckDB for ``Ledger.prepare``


@dataclass(frozen=True)
class PreparedFrame:
    """A frame checked and its key hashed (``Ledger.prepare``), ready for
    ``Ledger.append``. A pipeline prepares piece *n + 1* in one thread while the ledger
    inserts piece *n*, so the insert, which holds the ledger's lock, does not hash."""

    frame: pd.DataFrame  # the input, for the records of rejected rows
    rows: pa.Table
    problems: list[RowProblem]
    keys: PieceKeys | None = None  # the rows' keys, sorted, repeats found
    # ``value``, ``mrr_before``, ``mrr_after`` of ``rows`` as the ledger gives them back
    money: pa.Table | None = None


@dataclass(frozen=True)
class AppendResult:
    received: int
    inserted: int
    duplicates: int
    rejected: tuple[RowProblem, ...] = field(default=())
    # With ``append(..., read_back=...)``: the good rows as read under the lock (Arrow, in
    # seq order, one table per part) and the event columns asked for; ``stored`` is them
    # as a frame.
    stored_parts: tuple[pa.Table, ...] | None = field(default=None, compare=False, repr=False)
    stored_columns: tuple[str, ...] = field(default=(), compare=False, repr=False)

    @functools.cached_property
    def stored(self) -> pd.DataFrame | None:
        """The good rows as the ledger holds them, new and already there, in
        ``read(with_seq=True)`` layout, ordered by seq (None without ``read_back``).

        Made on first use, not in ``append``: the conversion to pandas needs no lock, so a
        pipeline does it in the thread that consumes the rows (the encoder), not in the
        ledger's, which sets a bulk ingest's pace."""
        if self.stored_parts is None:
            return None
        return _stored_frame(self.stored_parts, self.stored_columns)

    def __str__(self) -> str:
        return (
            f"{self.received} received, {self.inserted} new, {self.duplicates} duplicate(s), "
            f"{len(self.rejected)} rejected"
        )


@dataclass
class _FileState:
    """What every ``Ledger`` of one file in this process shares: the lock of its writes and
    how many deletes the file has seen (a delete by one makes the others' key sets stale)."""

    lock: threading.RLock = field(default_factory=threading.RLock)
    deletes: int = 0


_files: dict[str, _FileState] = {}
_files_guard = threading.Lock()
_LOAD_ROWS = 1_000_000  # keys loaded into the set per batch (bounded memory on a big file)


def _file_state(path: str) -> _FileState:
    """One state per ledger file in this process. DuckDB lets two connections of one
    process write the same file, and without a primary key the check against the key set
    and the insert must be one step for every writer of the file, not only for one
    ``Ledger``."""
    if path == ":memory:":
        return _FileState()  # every ":memory:" connection is its own database
    key = str(Path(path).resolve())
    with _files_guard:
        return _files.setdefault(key, _FileState())


def _with_keys(rows: pa.Table) -> tuple[pa.Table, pa.Table]:
    """``rows`` with their idempotency keys derived (the insert's key expression, run by a
    private in-memory DuckDB of the calling thread, on one thread: see ``_one_thread``),
    and the money columns as the ledger will give them back (``_MONEY_AS_STORED``).

    DuckDB hashes (``sha256``, hex text); the first 32 hex digits become the 16 key bytes
    here in numpy (``_hex_keys``): DuckDB's own ``CAST(... AS UUID)`` of that text cost as
    much as the hash itself (0.23 of 0.55 s per million events)."""
    con = getattr(_scratch, "con", None)
    if con is None:
        con = _scratch.con = duckdb.connect()
        con.execute("SET threads = 1")
        con.execute("SET arrow_lossless_conversion = true")  # UUIDs as UUIDs
    con.register("incoming", rows)
    try:
        derived = con.execute(f"SELECT {_KEY_HEX}, {_MONEY_AS_STORED} FROM incoming"
                              ).arrow().read_all()  # fmt: skip
    finally:
        con.unregister("incoming")
    key = _hex_keys(derived.column(0), rows.num_rows)
    # Only the key and the money as stored come out of DuckDB: the other columns stay as
    # they are (exporting them all again cost more than the casts the insert does).
    at = rows.schema.get_field_index("idempotency_key")
    if at < 0:
        rows = rows.add_column(0, "idempotency_key", key)
    else:
        rows = rows.set_column(at, "idempotency_key", key)
    return rows, derived.drop_columns([derived.column_names[0]])


_HEX_VALUE = np.full(256, 255, dtype=np.uint8)
_HEX_VALUE[np.frombuffer(b"0123456789abcdef", dtype=np.uint8)] = np.arange(16, dtype=np.uint8)


def _hex_keys(column: pa.ChunkedArray | pa.Array, n: int) -> pa.Array:
    """32 lowercase hex digits per row (``_KEY_HEX``) as DuckDB UUIDs (Arrow ``uuid``:
    the 16 bytes the digits spell, in order, as ``CAST(text AS UUID)`` makes them)."""
    if isinstance(column, pa.ChunkedArray):
        column = column.combine_chunks() if column.num_chunks else pa.array([], pa.string())
    if not pa.types.is_string(column.type):
        column = column.cast(pa.string())
    if column.null_count or len(column) != n:
        raise ValueError("idempotency keys: a key could not be derived")
    offsets = np.frombuffer(column.buffers()[1], dtype=np.int32)[column.offset :
                                                                   column.offset + n + 1]  # fmt: skip
    if n and not (offsets[-1] - offsets[0] == 32 * n and np.all(np.diff(offsets) == 32)):
        raise ValueError("idempotency keys: a derived key is not 32 hex digits")
    start = int(offsets[0]) if n else 0
    text = np.frombuffer(column.buffers()[2] or b"", dtype=np.uint8, count=32 * n, offset=start)
    nibbles = _HEX_VALUE[text].reshape(n, 16, 2)
    if n and int(nibbles.max()) > 15:
        raise ValueError("idempotency keys: a derived key is not lowercase hex")
    raw = (nibbles[:, :, 0] << 4) | nibbles[:, :, 1]
    storage = pa.FixedSizeBinaryArray.from_buffers(
        pa.binary(16), n, [None, pa.py_buffer(np.ascontiguousarray(raw).tobytes())]
    )
    return pa.ExtensionArray.from_storage(pa.uuid(), storage)


class Ledger(DuckDBFile):
    schema = _SCHEMA

    def __init__(self, path: str | Path = ":memory:") -> None:
        super().__init__(path)
        self._file = _file_state(self.path)
        self._lock = self._file.lock
        # Every key of the rows with ``seq <= _keys_seq`` is in ``_keys`` (None: not loaded
        # yet); ``_sync_keys`` loads what came after, or all again after a delete.
        self._keys: KeySet | None = None
        self._keys_seq = 0
        self._keys_deletes = 0
        with self._lock:
            self._drop_key_index()

    @staticmethod
    def prepare(frame: pd.DataFrame) -> PreparedFrame:
        """Check ``frame`` (``check_table``) and derive its keys, outside the ledger's lock
        and without its file."""
        good, problems = check_table(frame, derive_keys=False)
        rows, money = _with_keys(good)
        keys = PieceKeys.of(Keys.from_arrow(rows.column("idempotency_key")))
        return PreparedFrame(frame, rows, problems, keys, money)

    def _drop_key_index(self) -> None:
        """Rebuild an events table made with ``idempotency_key UUID PRIMARY KEY`` (ledgers
        before the key set) without it: DuckDB cannot drop a primary key in place. The
        rows keep their seq and order (streamed in insertion order), the sequence goes on
        where it was; one transaction, so a failure leaves the old table as it was."""
        row = self._con.execute(
            "SELECT count(*) FROM duckdb_constraints() WHERE database_name = current_database() "
            "AND schema_name = 'main' AND table_name = 'events' AND constraint_type = 'PRIMARY KEY'"
        ).fetchone()
        if not row or not row[0]:
            return
        columns = f"idempotency_key, seq, {_COLUMNS.split(', ', 1)[1]}"
        self._con.execute("BEGIN TRANSACTION")
        try:
            self._con.execute("DROP TABLE IF EXISTS events_rebuilt")
            self._con.execute(_EVENTS_TABLE.format(name="events_rebuilt"))
            # No ORDER BY: DuckDB keeps insertion order (``preserve_insertion_order``), so
            # the rows stream across in seq order; a sort of the whole table held a 10M
            # ledger's rows in memory (3.9 GB peak) and would not fit a 100M one.
            self._con.execute(f"INSERT INTO events_rebuilt ({columns}) SELECT {columns} "
                              "FROM events")  # fmt: skip
            self._con.execute("DROP TABLE events")
            self._con.execute("ALTER TABLE events_rebuilt RENAME TO events")
            self._con.execute("COMMIT")
        except BaseException:
            self._con.execute("ROLLBACK")
            raise
        self._con.execute("CHECKPOINT")

    def load_keys(self) -> None:
        """Load the key set now rather than on the first append: ``serve`` calls it at start
        (in the background), so the first webhook does not wait for every key of the
        history to be read (3.6 s wall, 1.4 s CPU at 10M events on the shared 2 cores)."""
        with self._lock:
            self._sync_keys()

    def _sync_keys(self) -> KeySet:
        """The key set, with the keys of every row stored so far (under the lock): rows
        another writer of the file added (another ``Ledger`` on it, plain SQL) come in by
        seq, so the cost follows what is new, not the history."""
        if self._keys is None or self._keys_deletes != self._file.deletes:
            # First use, or a delete (here or by another ``Ledger`` of the file): deleted
            # keys may come back, as they could with the primary key.
            self._keys, self._keys_seq = KeySet(), 0
            self._keys_deletes = self._file.deletes
        top = self._max_seq_after(self._keys_seq)
        if top > self._keys_seq:
            batches = self._con.execute(
                "SELECT CAST(idempotency_key AS BLOB) FROM events WHERE seq > ?", [self._keys_seq]
            ).to_arrow_reader(_LOAD_ROWS)
            for batch in batches:
                self._keys.add(Keys.from_arrow(batch.column(0)))
            self._keys_seq = top
        return self._keys

    def _new_rows(self, piece: PieceKeys) -> tuple[npt.NDArray[np.bool_], KeySet]:
        """Which of a piece's keys to store: not held yet, and each one's first occurrence."""
        held = self._sync_keys()
        return piece.first & ~held.contains(piece.keys, piece.order), held

    def _stored(self, held: KeySet, piece: PieceKeys, new: npt.NDArray[np.bool_]) -> None:
        """The ``new`` keys of ``piece`` were just inserted (every row after ``_keys_seq``):
        add them (in ``hi`` order already: the piece's order, filtered)."""
        order = piece.order[new[piece.order]]
        held.add(piece.keys.take(order), in_order=True)
        self._keys_seq = self._max_seq_after(self._keys_seq)

    def _max_seq_after(self, seq: int) -> int:
        """The largest seq if above ``seq``, else ``seq``: the rows after a seq are the last
        row groups (seqs grow with the table), so this reads those, not the whole column
        as ``max(seq)`` does (20 ms at 20M events, per call)."""
        row = self._con.execute(
            "SELECT coalesce(max(seq), ?) FROM events WHERE seq > ?", [seq, seq]
        ).fetchone()
        return int(row[0]) if row else seq

    def __enter__(self) -> Ledger:
        return self

    def checkpoint(self) -> bool:
        """Write what is committed to the file (DuckDB's ``CHECKPOINT``), which makes its
        memory evictable again; False when it cannot run now (a cursor's transaction is
        open), leaving that to DuckDB's own checkpoints.

        Why here, on the ledger's own connection: a freshly built ART index (a state
        table's ``subject`` index) stays resident until a checkpoint, and a ``CHECKPOINT``
        from a ``connection`` cursor is refused ("other write transactions active") while
        this connection's last statement still has its transaction open, which it has
        after almost any read. Run here, that statement's transaction ends first. Without
        it the cohort, funnel and rollup indexes held 34 of the 62 MiB DuckDB share of a
        10M-event recompute at ``memory_limit_mb`` 450, and every later family ran out of
        memory."""
        with self._lock:
            try:
                self._con.execute("CHECKPOINT")
            except duckdb.Error:
                return False
        return True

    # -- writes -------------------------------------------------------------------------

    def append(
        self,
        events: Iterable[GrowthEvent] | pd.DataFrame | PreparedFrame,
        *,
        read_back: bool | Sequence[str] = False,
    ) -> AppendResult:
        """Store events not seen before; return how many were new, duplicate or rejected.

        A frame (``growthwatch.frames`` layout) is checked row by row: bad rows are kept in
        ``rejected_events`` and reported, the good rows are stored. A ``PreparedFrame``
        (``prepare``) is a frame checked and turned into rows already.

        ``read_back`` also returns the stored rows with their ``seq`` (``AppendResult.stored``),
        read under the same lock, so a consumer that needs the seq (the raw event points)
        gets exactly this append's events without a second query racing other writers. The
        new rows are found by seq (the rows after the largest seq before the insert: cost
        follows the append, not the history); rows that were already there are looked up by
        key only when there are any (a re-run), which scans the keys of the whole table.
        ``read_back`` may name the columns wanted (``seq`` always comes along): the raw
        event points need six of the fifteen, and formatting the others (the key as hex
        text, the metadata) is most of the read's cost.
        """
        columns = _columns(read_back)
        rows: list[GrowthEvent] | None = None
        good: pd.DataFrame | pa.Table
        source_frame = None  # the input of frame rows, for the records of rejected ones
        if isinstance(events, PreparedFrame):
            received, good, problems = len(events.frame), events.rows, events.problems
            source_frame = events.frame
        elif isinstance(events, pd.DataFrame):
            received = len(events)
            good, problems = check_table(events, derive_keys=False)
            source_frame = events
        else:
            rows = list(events)
            received, problems = len(rows), []
            # A webhook brings one event: a frame costs more than the insert itself.
            good = events_to_frame(rows) if len(rows) > _SMALL else pd.DataFrame()
        stored: tuple[pa.Table, ...] | None = None
        with self._lock:
            before = self._count_unlocked()
            last_seq = self._max_seq_unlocked() if read_back else 0
            if rows is not None and len(rows) <= _SMALL:
                if rows and read_back:
                    good = events_to_frame(rows)
                    stored = self._insert(good, read_back_after=last_seq, columns=columns)
                else:
                    self._insert_events(rows)
            elif len(good) if isinstance(good, pd.DataFrame) else good.num_rows:
                stored = self._insert(good, read_back_after=last_seq if read_back else None,
                                      columns=columns,
                                      prepared=isinstance(events, PreparedFrame),
                                      keys=events.keys if isinstance(events, PreparedFrame)
                                      else None,
                                      money=events.money if isinstance(events, PreparedFrame)
                                      else None)  # fmt: skip
            inserted = self._count_unlocked() - before
            if problems:
                self._reject(problems, source_frame)
        if read_back and stored is None:
            stored = ()
        return AppendResult(
            received=received,
            inserted=inserted,
            duplicates=received - len(problems) - inserted,
            rejected=tuple(problems),
            stored_parts=stored,
            stored_columns=columns if read_back else (),
        )

    def _insert_events(self, events: list[GrowthEvent]) -> None:
        """Small batches as parameter rows; the key is the event's own (same formula)."""
        if not events:
            return
        keys = PieceKeys.of(Keys.from_hex([e.idempotency_key for e in events]))
        new, held = self._new_rows(keys)
        events = [e for e, keep in zip(events, new.tolist(), strict=True) if keep]
        if not events:
            return
        now = datetime.now(UTC)
        params = [
            (
                e.idempotency_key, e.product, e.type.value, e.timestamp, str(e.value),
                e.currency, e.subject, _opt(e.mrr_before), _opt(e.mrr_after),
                r["plan"], r["channel"],
                json.dumps(r["metadata"], sort_keys=True) if r["metadata"] else None,
                e.source, e.source_id, e.kind, now,
            )
            for e in events
            for r in (e.to_record(),)
        ]  # fmt: skip
        self._con.executemany(
            f"INSERT INTO events ({_COLUMNS}) VALUES (CAST(? AS UUID), ?, ?, ?, "
            "CAST(? AS DECIMAL(18, 6)), ?, ?, CAST(? AS DECIMAL(18, 6)), "
            "CAST(? AS DECIMAL(18, 6)), ?, ?, ?, ?, ?, ?, ?)",
            params,
        )
        self._stored(held, keys, new)

    def _insert(
        self,
        frame: pd.DataFrame | pa.Table,
        *,
        read_back_after: int | None = None,
        columns: Sequence[str] = tuple(EVENT_COLUMNS),
        prepared: bool = False,
        keys: PieceKeys | None = None,
        money: pa.Table | None = None,
    ) -> tuple[pa.Table, ...] | None:
        """Insert the rows not there yet. The key is derived (``_with_keys``, the formula of
        ``growthwatch.events.idempotency_key``: a test holds the two equal) unless the frame
        is prepared; the rows to store are chosen against the key set, and only those go
        into DuckDB, as one plain ``INSERT`` into a table without an index (about 1.2 s per
        million events against 2.1-3.6 with the ART primary key, which also had to be
        checked again row by row by ``INSERT OR IGNORE`` on a re-run).

        With ``read_back_after`` (the largest seq before this insert), returns the rows of
        ``frame`` as stored: those after that seq, plus those whose key was already there
        (``_stored_rows``).
        """
        now = datetime.now(UTC)
        # As Arrow: DuckDB scans Arrow strings without touching Python objects (several
        # times faster than a pandas scan, and without the GIL).
        table = (
            frame if isinstance(frame, pa.Table) else pa.Table.from_pandas(frame, preserve_index=False)
        )
        if not prepared or money is None:
            table, money = _with_keys(table)
        if keys is None:
            keys = PieceKeys.of(Keys.from_arrow(table.column("idempotency_key")))
        new, held = self._new_rows(keys)
        everything = bool(new.all())
        fresh = table if everything else table.filter(pa.array(new))
        inserted = fresh.num_rows
        if inserted:
            self._con.register("incoming", fresh)
            try:
                with self._one_thread(inserted):
                    self._con.execute(
                        f"INSERT INTO events ({_COLUMNS}) SELECT *, ? FROM ({_PREPARED_ROWS})",
                        [now],
                    )
            finally:
                self._con.unregister("incoming")
            self._stored(held, keys, new)
        if read_back_after is None:
            return None
        stored_money = money if everything else money.filter(pa.array(new))
        return self._stored_rows(table, fresh, stored_money, keys, new, read_back_after,
                                 columns)  # fmt: skip

    def _stored_rows(
        self,
        table: pa.Table,
        fresh: pa.Table,
        money: pa.Table,
        keys: PieceKeys,
        new: npt.NDArray[np.bool_],
        after: int,
        columns: Sequence[str],
    ) -> tuple[pa.Table, ...]:
        """The rows of ``table`` as the ledger holds them, as Arrow tables in seq order
        (``_stored_frame`` makes them the ``read(with_seq=True)`` layout of ``columns``
        and ``seq``): the ones already there read back by key, the new
        ones (``fresh``) taken from the input itself with only their seqs read back.

        Reading the new rows back in full was most of what a bulk piece cost besides the
        insert; their stored values are known: the same text and times, the money as
        ``_with_keys`` computed it, the key as hex. The seqs are read with the keys, in
        seq order, and must spell exactly ``fresh``'s keys in order (one thread inserted
        them, numbering them as it went); if they do not (another writer's rows among
        them), the new rows are read back in full, as before."""
        wanted = ", ".join(f"{SELECT_EXPR[c]} AS {c}" for c in columns)
        parts: list[pa.Table] = []
        if fresh.num_rows < table.num_rows:  # some were already there (or twice in it)
            self._con.register("incoming", table)
            try:
                parts.append(self._con.execute(
                    f"SELECT {wanted}, seq FROM events WHERE seq <= ? AND idempotency_key IN "
                    "(SELECT idempotency_key FROM incoming) ORDER BY seq", [after]
                ).arrow().read_all())  # fmt: skip
            finally:
                self._con.unregister("incoming")
        if fresh.num_rows:
            got = self._con.execute(
                "SELECT CAST(idempotency_key AS BLOB) AS k, seq FROM events WHERE seq > ? "
                "ORDER BY seq", [after]
            ).arrow().read_all()
            mine = keys.keys.take(new)
            back = Keys.from_arrow(got.column("k"))
            if len(back) == len(mine) and np.array_equal(back.hi, mine.hi) \
                    and np.array_equal(back.lo, mine.lo):  # fmt: skip
                parts.append(_as_read(fresh, money, got.column("seq"), columns))
            else:
                parts.append(self._con.execute(
                    f"SELECT {wanted}, seq FROM events WHERE seq > ? ORDER BY seq", [after]
                ).arrow().read_all())  # fmt: skip
        return tuple(parts)

    @contextlib.contextmanager
    def _one_thread(self, rows: int) -> Iterator[None]:
        """Run a bulk insert's statements on one DuckDB thread, then put back exactly the
        thread count that was set before (a user's ``SET threads`` included).

        DuckDB's parallel insert costs about 40% more CPU for the same rows (3.1 vs
        2.2 s per million events, measured side by side): its workers wait on each
        other, and in an ingest pipeline the other core has the rest of the pipeline to
        run. ``threads`` is a setting of the whole database (DuckDB has no per-statement
        or per-connection one), so this is confined to the insert statements of one
        piece under the ledger's lock: a read through a ``connection`` cursor that starts
        during one of them runs on one thread; between pieces every query has them all.
        Small appends (a webhook) are not worth the switch and leave it alone.
        """
        if rows < _ONE_THREAD_ROWS:
            yield
            return
        row = self._con.execute("SELECT current_setting('threads')").fetchone()
        threads = int(row[0]) if row else 1
        if threads <= 1:
            yield
            return
        self._con.execute("SET threads = 1")
        try:
            yield
        finally:
            self._con.execute(f"SET threads = {threads}")

    def _reject(self, problems: list[RowProblem], frame: pd.DataFrame | None) -> None:
        now = datetime.now(UTC)
        rows = []
        for p in problems:
            record = None
            source = None
            if frame is not None and p.row in frame.index:
                raw = frame.loc[p.row]
                record = raw.to_json(date_format="iso", default_handler=str)
                source = raw.get("source") if isinstance(raw.get("source"), str) else None
            rows.append((now, source, p.field, _short(p.value), p.reason, record))
        self._con.executemany("INSERT INTO rejected_events VALUES (?, ?, ?, ?, ?, ?)", rows)

    @property
    def deletions(self) -> int:
        """How many deletions (``delete_before``) this process ran on the file: what a
        count of its events memoised by ``seq`` keys on (appends never change one)."""
        return self._file.deletes

    def delete_before(
        self, end: datetime, *, keep_types: Sequence[str] = (), keep_first_of: Sequence[str] = ()
    ) -> int:
        """Delete events before ``end`` except those of ``keep_types`` and each subject's
        first event of ``keep_first_of`` (per product); returns how many.

        Retention, once an archive holds them (``bigquery_archive.retention``): the ledger
        keeps a recent window plus the types whose metrics need all history, and the first
        activity of every user (the lifecycle's "new" needs to know it, not the rest).
        """
        if end.tzinfo is None:
            raise ValueError(f"time bound must be timezone-aware: {end!r}")
        firsts = [str(t) for t in keep_first_of] or [""]
        with self._lock:
            self._file.deletes += 1  # deleted keys may come back: every key set reloads
            before = self._count_unlocked()
            self._con.execute(
                "DELETE FROM events WHERE ts < ? AND type NOT IN (SELECT unnest(?)) "
                "AND rowid NOT IN (SELECT arg_min(rowid, ts) FROM events WHERE type IN "
                "(SELECT unnest(?)) AND subject IS NOT NULL GROUP BY product, subject)",
                [end, [str(t) for t in keep_types] or [""], firsts],
            )
            return before - self._count_unlocked()

    # -- reads --------------------------------------------------------------------------

    def read(
        self,
        *,
        products: str | Sequence[str] | None = None,
        types: EventType | str | Sequence[EventType | str] | None = None,
        start: datetime | None = None,
        end: datetime | None = None,
        after_seq: int | None = None,
        with_seq: bool = False,
    ) -> pd.DataFrame:
        """Events as a frame in ``EVENT_COLUMNS`` layout, ordered by time then key.

        ``start`` is inclusive and ``end`` exclusive, so adjacent ranges never overlap.
        ``with_seq`` adds the ledger's ``seq`` (int64, unique, stable for this ledger).
        """
        where, params = self._where(products, types, start, end, after_seq)
        select = _SELECT + (", seq" if with_seq else "")
        sql = f"SELECT {select} FROM events {where} ORDER BY ts, idempotency_key"
        with self._lock:
            # Through Arrow: several times faster than .df() for string columns.
            frame = self._con.execute(sql, params).arrow().read_all().to_pandas()
        return _typed_events(frame, with_seq=with_seq)

    def count(
        self,
        *,
        products: str | Sequence[str] | None = None,
        types: EventType | str | Sequence[EventType | str] | None = None,
        start: datetime | None = None,
        end: datetime | None = None,
    ) -> int:
        where, params = self._where(products, types, start, end, None)
        with self._lock:
            row = self._con.execute(f"SELECT count(*) FROM events {where}", params).fetchone()
        return int(row[0]) if row else 0

    def _count_unlocked(self) -> int:
        row = self._con.execute("SELECT count(*) FROM events").fetchone()
        return int(row[0]) if row else 0

    def max_seq(self) -> int:
        with self._lock:
            return self._max_seq_unlocked()

    def _max_seq_unlocked(self) -> int:
        row = self._con.execute("SELECT coalesce(max(seq), 0) FROM events").fetchone()
        return int(row[0]) if row else 0

    def products(self) -> list[str]:
        with self._lock:
            rows = self._con.execute("SELECT DISTINCT product FROM events ORDER BY 1").fetchall()
        return [r[0] for r in rows]

    def rejected(self) -> pd.DataFrame:
        with self._lock:
            return self._con.execute("SELECT * FROM rejected_events ORDER BY rejected_at").df()

    @staticmethod
    def _where(
        products: str | Sequence[str] | None,
        types: EventType | str | Sequence[EventType | str] | None,
        start: datetime | None,
        end: datetime | None,
        after_seq: int | None,
    ) -> tuple[str, list[Any]]:
        clauses: list[str] = []
        params: list[Any] = []
        if products is not None:
            items = [products] if isinstance(products, str) else list(products)
            clauses.append("product IN (SELECT unnest(?))")
            params.append(items)
        if types is not None:
            names = [str(types)] if isinstance(types, str) else [str(t) for t in types]
            clauses.append("type IN (SELECT unnest(?))")
            params.append(names)
        for bound, op in ((start, ">="), (end, "<")):
            if bound is not None:
                if bound.tzinfo is None:
                    raise ValueError(f"time bound must be timezone-aware: {bound!r}")
                clauses.append(f"ts {op} ?")
                params.append(bound)
        if after_seq is not None:
            clauses.append("seq > ?")
            params.append(after_seq)
        return ("WHERE " + " AND ".join(clauses)) if clauses else "", params


def _typed_events(frame: pd.DataFrame | None, *, with_seq: bool) -> pd.DataFrame:
    """A frame read from the events table in ``EVENT_COLUMNS`` dtypes (empty: no rows)."""
    if frame is None or frame.empty:
        frame = pd.DataFrame({c: pd.Series(dtype=d) for c, d in EVENT_COLUMNS.items()})
        if with_seq:
            frame["seq"] = pd.Series(dtype="int64")
    for col, dtype in EVENT_COLUMNS.items():
        if col in frame:
            frame[col] = frame[col].astype(dtype)
    return frame


def _stored_frame(parts: Sequence[pa.Table], columns: Sequence[str]) -> pd.DataFrame:
    """What ``_stored_rows`` read, as one frame in ``read(with_seq=True)`` layout."""
    frames = [_typed_events(part.to_pandas(), with_seq=True) for part in parts]
    if not frames:
        return _typed_events(None, with_seq=True)[[*columns, "seq"]]
    return frames[0] if len(frames) == 1 else pd.concat(frames, ignore_index=True)


def _as_read(
    fresh: pa.Table, money: pa.Table, seq: pa.ChunkedArray, columns: Sequence[str]
) -> pa.Table:
    """New rows in the layout a read of ``columns`` gives (``SELECT_EXPR``), with ``seq``:
    the key as 32 hex digits, the money as stored (``money``), the rest as inserted."""
    out: dict[str, Any] = {}
    for c in columns:
        if c in _MONEY:
            out[c] = money.column(c)
        elif c == "idempotency_key":
            out[c] = _key_hex(fresh.column(c))
        else:
            out[c] = fresh.column(c)
    out["seq"] = seq
    return pa.table(out)


_HEX_DIGITS = np.frombuffer(b"0123456789abcdef", dtype=np.uint8)


def _key_hex(column: pa.ChunkedArray) -> pa.Array:
    """UUID keys as 32 lowercase hex digits, as ``SELECT_EXPR`` reads them."""
    keys = Keys.from_arrow(column)  # the two halves, in the bytes' order
    raw = np.stack([keys.hi, keys.lo], axis=1).view(np.uint8).reshape(-1, 16)
    text = np.empty((len(raw), 32), dtype=np.uint8)
    text[:, 0::2] = _HEX_DIGITS[raw >> 4]
    text[:, 1::2] = _HEX_DIGITS[raw & 15]
    offsets = np.arange(0, 32 * (len(raw) + 1), 32, dtype=np.int32)
    return pa.StringArray.from_buffers(len(raw), pa.py_buffer(offsets.tobytes()),
                                       pa.py_buffer(text.tobytes()))  # fmt: skip


def _columns(read_back: bool | Sequence[str]) -> tuple[str, ...]:
    """The event columns ``append(..., read_back=...)`` returns, checked."""
    if isinstance(read_back, bool):
        return tuple(EVENT_COLUMNS)
    unknown = [c for c in read_back if c not in EVENT_COLUMNS]
    if unknown or isinstance(read_back, str):
        raise ValueError(f"read_back: not event columns: {unknown or read_back!r}")
    return tuple(read_back)


def _opt(value: Decimal | None) -> str | None:
    return None if value is None else str(value)


def _short(value: object) -> str | None:
    if value is None:
        return None
    text = value if isinstance(value, str) else json.dumps(value, default=str)
    return text[:500]
