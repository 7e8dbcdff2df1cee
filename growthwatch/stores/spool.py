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


class SpoolError(OSError):
    """The spool folder cannot be used (not writable): an error at start-up, not a loss later."""


class SpoolFull(Exception):
    """The spool holds ``max_bytes`` already: dropping the oldest batch would lose data."""


class Spool:
    def __init__(self, directory: Path, *, max_bytes: int | None = None) -> None:
        self.directory = Path(directory)
        self.max_bytes = max_bytes
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            probe = self.directory / ".writable"
            probe.write_bytes(b"")
            probe.unlink()
        except OSError as exc:
            raise SpoolError(f"InfluxDB spool folder {self.directory} cannot be written "
                             f"({exc.strerror or exc}); points would be lost while InfluxDB "
                             "is away: fix its permissions or storage.data_dir") from exc  # fmt: skip
        self._lock = threading.Lock()
        track_spool(self)  # growthwatch_influx_spool_points / _oldest_age_seconds

    def size(self) -> int:
        """Bytes waiting in the spool."""
        total = 0
        for path in self._files():
            try:
                total += path.stat().st_size
            except FileNotFoundError:
                continue
        return total

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
        """Park one batch; ``SpoolFull`` when it would pass ``max_bytes`` (never evicts)."""
        if self.max_bytes is not None and self.size() + len(body) > self.max_bytes:
            raise SpoolFull(f"the InfluxDB spool {self.directory} holds "
                            f"{self.size() / 2**20:.1f} MiB, its limit is "
                            f"{self.max_bytes / 2**20:.1f} MiB")  # fmt: skip
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
