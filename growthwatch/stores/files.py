"""Files that hold customer data are readable by their owner only (mode 0600).

The ledger, the series store, the exporters' state (webhook payloads, cursors), the spool and
the engine's state carry revenue and customer ids; a 0644 file in a shared data folder lets
every local user read them. Each store makes its files private as it opens them, together
with the journal files its database keeps beside them.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

PRIVATE = 0o600
_COMPANIONS = ("", ".wal", "-wal", "-shm", "-journal")


def make_private(path: str | Path) -> None:
    """chmod 0600 the file and the journal/WAL files its database keeps beside it."""
    base = str(path)
    if base == ":memory:":
        return
    for suffix in _COMPANIONS:
        with contextlib.suppress(FileNotFoundError, PermissionError):
            os.chmod(base + suffix, PRIVATE)


def write_private(path: Path, data: bytes) -> None:
    """Create (or replace) ``path`` with mode 0600 from the start, never briefly 0644."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, PRIVATE)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)
    os.chmod(path, PRIVATE)
