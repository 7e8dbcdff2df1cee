"""The exporters' own durable state: cursors, the webhook inbox, per-object state.

Why a separate SQLite file and not tables in the ledger's DuckDB file: DuckDB allows one
writing process per file and the ledger owns its connection privately, while the exporters
need small, frequent, individually durable transactions (one per webhook, fsync'd before
Stripe gets its 2xx). SQLite in WAL mode with ``synchronous=FULL`` gives exactly that, from
the standard library. Everything here is keyed by a *stream id* (``product/source-name``),
so several products and sources share one file.

Tables:
- ``cursors``: the replication-key value each stream has durably reached (and a backfill's
  own resume point), JSON values;
- ``inbox``: every verified webhook payload, written before the HTTP answer; ``processed_at``
  says whether it reached the ledger. Events pulled from the Events API go through the same
  table, so a webhook and a pull of the same ``evt_`` id are processed once;
- ``objects``: the last-applied state of a source object (a Stripe subscription's status and
  MRR, a GA4 day/channel's last value), which makes out-of-order delivery and revisions of
  already-read data safe;
- ``rejected``: every record a source sent that could not become an event, with the reason.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from growthwatch.stores.files import make_private

_SCHEMA = """
CREATE TABLE IF NOT EXISTS cursors (
    stream TEXT NOT NULL,
    name TEXT NOT NULL,
    value TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    PRIMARY KEY (stream, name)
);
CREATE TABLE IF NOT EXISTS inbox (
    event_id TEXT NOT NULL,
    stream TEXT NOT NULL,
    received_at TEXT NOT NULL,
    via TEXT NOT NULL,
    payload TEXT NOT NULL,
    processed_at TEXT,
    outcome TEXT,
    PRIMARY KEY (stream, event_id)
);
CREATE INDEX IF NOT EXISTS inbox_pending ON inbox (processed_at) WHERE processed_at IS NULL;
CREATE TABLE IF NOT EXISTS objects (
    stream TEXT NOT NULL,
    object_id TEXT NOT NULL,
    state TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    PRIMARY KEY (stream, object_id)
);
CREATE TABLE IF NOT EXISTS rejected (
    rejected_at TEXT NOT NULL,
    stream TEXT NOT NULL,
    reason TEXT NOT NULL,
    detail TEXT NOT NULL,
    record TEXT
);
"""


@dataclass(frozen=True)
class InboxItem:
    event_id: str
    stream: str
    payload: str
    via: str


def _now() -> str:
    return datetime.now(UTC).isoformat()


class StateStore:
    """Thread-safe access to the exporters' SQLite state file (``:memory:`` for tests)."""

    def __init__(self, path: str | Path = ":memory:") -> None:
        self.path = str(path)
        if self.path != ":memory:":
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        self._con = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        self._lock = threading.RLock()
        with self._lock:
            self._con.execute("PRAGMA journal_mode=WAL")
            # FULL: a committed inbox row survives a power cut, which is what lets the
            # receiver answer 2xx before processing.
            self._con.execute("PRAGMA synchronous=FULL")
            self._con.executescript(_SCHEMA)
            self._migrate()
        make_private(self.path)  # webhook payloads and cursors: the owner's only

    def _migrate(self) -> None:
        """Additive changes to files written by older versions (columns, indexes)."""
        columns = {r[1] for r in self._con.execute("PRAGMA table_info(rejected)")}
        if "fingerprint" not in columns:
            self._con.execute("ALTER TABLE rejected ADD COLUMN fingerprint TEXT")
        self._con.execute("CREATE UNIQUE INDEX IF NOT EXISTS rejected_once "
                          "ON rejected (stream, fingerprint)")  # fmt: skip

    def close(self) -> None:
        with self._lock:
            self._con.close()

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """One atomic unit (several writes commit together or not at all)."""
        with self._lock:
            self._con.execute("BEGIN IMMEDIATE")
            try:
                yield self._con
            except BaseException:
                self._con.execute("ROLLBACK")
                raise
            self._con.execute("COMMIT")

    # -- cursors ------------------------------------------------------------------------

    def get_cursor(self, stream: str, name: str = "cursor") -> Any:
        with self._lock:
            row = self._con.execute(
                "SELECT value FROM cursors WHERE stream = ? AND name = ?", (stream, name)
            ).fetchone()
        return json.loads(row[0]) if row else None

    def set_cursor(self, stream: str, value: Any, name: str = "cursor") -> None:
        with self._lock:
            self._con.execute(
                "INSERT OR REPLACE INTO cursors VALUES (?, ?, ?, ?)",
                (stream, name, json.dumps(value, default=str), _now()),
            )

    def delete_cursor(self, stream: str, name: str) -> None:
        with self._lock:
            self._con.execute("DELETE FROM cursors WHERE stream = ? AND name = ?", (stream, name))

    # -- inbox --------------------------------------------------------------------------

    def inbox_put(self, stream: str, event_id: str, payload: str, via: str) -> bool:
        """Store a payload durably; False if this event id was already there (a retry)."""
        with self._lock:
            cur = self._con.execute(
                "INSERT OR IGNORE INTO inbox (event_id, stream, received_at, via, payload) "
                "VALUES (?, ?, ?, ?, ?)",
                (event_id, stream, _now(), via, payload),
            )
            return cur.rowcount == 1

    def inbox_is_processed(self, stream: str, event_id: str) -> bool:
        with self._lock:
            row = self._con.execute(
                "SELECT processed_at FROM inbox WHERE stream = ? AND event_id = ?",
                (stream, event_id),
            ).fetchone()
        return bool(row and row[0])

    def inbox_pending(self, stream: str | None = None) -> list[InboxItem]:
        """Payloads stored but not processed (a crash between answer and ledger)."""
        sql = "SELECT event_id, stream, payload, via FROM inbox WHERE processed_at IS NULL"
        params: tuple[str, ...] = ()
        if stream is not None:
            sql += " AND stream = ?"
            params = (stream,)
        with self._lock:
            rows = self._con.execute(sql + " ORDER BY received_at", params).fetchall()
        return [InboxItem(*row) for row in rows]

    def inbox_count(self, stream: str | None = None) -> int:
        sql, params = "SELECT count(*) FROM inbox", ()
        if stream is not None:
            sql, params = sql + " WHERE stream = ?", (stream,)  # type: ignore[assignment]
        with self._lock:
            return int(self._con.execute(sql, params).fetchone()[0])

    # -- per-object state ---------------------------------------------------------------

    def get_object(self, stream: str, object_id: str) -> dict[str, Any] | None:
        with self._lock:
            row = self._con.execute(
                "SELECT state FROM objects WHERE stream = ? AND object_id = ?",
                (stream, object_id),
            ).fetchone()
        return json.loads(row[0]) if row else None

    def put_object(self, stream: str, object_id: str, state: dict[str, Any]) -> None:
        with self._lock:
            self._con.execute(
                "INSERT OR REPLACE INTO objects VALUES (?, ?, ?, ?)",
                (stream, object_id, json.dumps(state, default=str, sort_keys=True), _now()),
            )

    def objects_with_prefix(self, stream: str, prefix: str) -> dict[str, dict[str, Any]]:
        """Every object state of ``stream`` whose id starts with ``prefix``, by id."""
        with self._lock:
            rows = self._con.execute(
                "SELECT object_id, state FROM objects WHERE stream = ? AND object_id >= ? "
                "AND object_id < ? ORDER BY object_id",
                (stream, prefix, prefix + "\uffff"),
            ).fetchall()
        return {row[0]: json.loads(row[1]) for row in rows}

    # -- rejects ------------------------------------------------------------------------

    def reject(self, stream: str, reason: str, detail: str, record: str | None) -> bool:
        """Record a rejection once per distinct record: a re-import of the same file, or a
        re-read of a lookback window, does not record the same bad row again. Returns
        whether it was new."""
        fingerprint = hashlib.sha256(
            "\x1f".join((reason, detail, record or "")).encode()
        ).hexdigest()[:32]
        with self._lock:
            cur = self._con.execute(
                "INSERT OR IGNORE INTO rejected (rejected_at, stream, reason, detail, record, "
                "fingerprint) VALUES (?, ?, ?, ?, ?, ?)",
                (_now(), stream, reason, detail[:1000],
                 None if record is None else record[:20000], fingerprint),
            )  # fmt: skip
            return cur.rowcount == 1

    def prune(self, *, inbox_days: float, rejected_days: float) -> tuple[int, int]:
        """Delete processed webhook payloads and rejections older than their retention;
        unprocessed payloads are never deleted. Returns (payloads, rejections) removed."""
        now = datetime.now(UTC)
        inbox_before = (now - timedelta(days=inbox_days)).isoformat()
        rejected_before = (now - timedelta(days=rejected_days)).isoformat()
        with self._lock:
            inbox = self._con.execute(
                "DELETE FROM inbox WHERE processed_at IS NOT NULL AND processed_at < ?",
                (inbox_before,),
            ).rowcount
            rejected = self._con.execute(
                "DELETE FROM rejected WHERE rejected_at < ?", (rejected_before,)
            ).rowcount
        return inbox, rejected

    def rejected(self, stream: str | None = None) -> list[dict[str, Any]]:
        sql, params = "SELECT rejected_at, stream, reason, detail, record FROM rejected", ()
        if stream is not None:
            sql, params = sql + " WHERE stream = ?", (stream,)  # type: ignore[assignment]
        with self._lock:
            rows = self._con.execute(sql + " ORDER BY rowid", params).fetchall()
        keys = ("rejected_at", "stream", "reason", "detail", "record")
        return [dict(zip(keys, r, strict=True)) for r in rows]
