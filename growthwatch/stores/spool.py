"""A durable on-disk queue of gzip'd line-protocol bodies, for when InfluxDB is away.

Files are named by a zero-padded sequence number and written atomically (temp file, fsync,
rename), so a crash leaves either a whole batch or none. Replay goes oldest first and
removes a file only after InfluxDB acknowledged it; points are keyed by (measurement, tags,
time), so a batch that was written but whose acknowledgement was lost is harmless to send
again.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from pathlib import Path

from growthwatch.telemetry import track_spool


class Spool:
    def __init__(self, directory: Path) -> None:
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        track_spool(self)  # growthwatch_influx_spool_points / _oldest_age_seconds

    def _files(self) -> list[Path]:
        return sorted(self.directory.glob("*.lp.gz"))

    def __len__(self) -> int:
        return len(self._files())

    def lines(self) -> int:
        """How many points wait in the spool (read from the file names)."""
        return sum(int(p.name.split(".")[0].split("-")[1]) for p in self._files())

    def oldest_mtime(self) -> float | None:
        """Modification time of the oldest spooled batch (None: the spool is empty)."""
        for path in self._files():
            try:
                return path.stat().st_mtime
            except FileNotFoundError:  # drained meanwhile
                continue
        return None

    def put(self, body: bytes, lines: int) -> Path:
        with self._lock:
            files = self._files()
            seq = int(files[-1].name.split("-")[0]) + 1 if files else 1
            final = self.directory / f"{seq:012d}-{lines}.lp.gz"
            tmp = final.with_suffix(".tmp")
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)  # private: customer data
            with os.fdopen(fd, "wb") as fh:
                fh.write(body)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, final)
            return final

    def drain(self, send: Callable[[bytes], object]) -> int:
        """Send every spooled body in order; stop at the first failure (it propagates).

        Returns the number of points sent.
        """
        sent = 0
        with self._lock:
            for path in self._files():
                send(path.read_bytes())
                sent += int(path.name.split(".")[0].split("-")[1])
                path.unlink()
        return sent
