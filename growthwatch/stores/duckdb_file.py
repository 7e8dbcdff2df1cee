"""One embedded DuckDB file, shared by the ledger and the series store.

DuckDB allows one writing process per file; inside it, a connection is not safe for
concurrent use, so every store serialises its statements on one re-entrant lock and hands
out per-thread cursors for read-only SQL.
"""

from __future__ import annotations

import threading
from pathlib import Path

import duckdb

from growthwatch.stores.files import make_private


class DuckDBFile:
    schema: str = ""  # DDL run on open; every statement must be idempotent (IF NOT EXISTS)

    def __init__(self, path: str | Path = ":memory:") -> None:
        self.path = str(path)
        if self.path != ":memory:":
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        self._con = duckdb.connect(self.path)
        # DuckDB draws its own progress bar on the terminal for a statement over 2 s; the
        # CLI has its own (rich), and a service's log is no terminal.
        self._con.execute("SET enable_progress_bar = false")
        self._lock = threading.RLock()
        self._con.execute(self.schema)
        make_private(self.path)

    def close(self) -> None:
        with self._lock:
            self._con.close()

    def __enter__(self) -> DuckDBFile:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def connection(self) -> duckdb.DuckDBPyConnection:
        """A cursor on the database for read-only SQL (take one per thread)."""
        return self._con.cursor()
