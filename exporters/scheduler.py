"""Runs every configured pull on its own schedule, one thread per source.

Why threads and not a cron-like queue: pulls are I/O bound, there are a few dozen at most
(10+ products x a few sources), and one thread per source makes "a slow Mixpanel export
never delays a Stripe pull" true by construction. A failing source backs off
exponentially (capped at its schedule) and is counted in Prometheus; the others go on.
Start times are spread over the first interval so that a restart does not fire every
source in the same second (Mixpanel allows 3 queries a second per project).
"""

from __future__ import annotations

import logging
import threading
import zlib
from collections.abc import Sequence

from exporters.base import Ingestor, SourceAuthError, Stream

log = logging.getLogger(__name__)


class Scheduler:
    def __init__(
        self, ingestor: Ingestor, streams: Sequence[Stream], *, first_run_spread: float = 30.0
    ) -> None:
        self.ingestor = ingestor
        self.streams = list(streams)
        self.first_run_spread = first_run_spread
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self.runs: dict[str, int] = {s.stream_id: 0 for s in self.streams}

    def start(self) -> Scheduler:
        for stream in self.streams:
            thread = threading.Thread(
                target=self._loop, args=(stream,), name=f"pull-{stream.stream_id}", daemon=True
            )
            thread.start()
            self._threads.append(thread)
        return self

    def stop(self, timeout: float = 30.0) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=timeout)

    def _delay(self, stream: Stream) -> float:
        """A stable offset per stream within the spread (not random: restarts repeat it)."""
        spread = min(self.first_run_spread, stream.schedule.total_seconds())
        return (zlib.crc32(stream.stream_id.encode()) % 1000) / 1000 * spread

    def _loop(self, stream: Stream) -> None:
        interval = stream.schedule.total_seconds()
        wait = self._delay(stream)
        failures = 0
        while not self._stop.wait(wait):
            try:
                self.ingestor.sync(stream)
                failures = 0
                wait = interval
            except SourceAuthError as exc:
                log.error("%s: %s", stream.stream_id, exc)  # config problem: no fast retry
                wait = interval
            except Exception:
                failures += 1
                wait = min(interval, 30.0 * 2 ** (failures - 1))
                log.exception("%s: pull failed (%d in a row); next try in %.0fs",
                              stream.stream_id, failures, wait)  # fmt: skip
            self.runs[stream.stream_id] += 1
