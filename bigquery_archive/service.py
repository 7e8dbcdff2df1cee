"""The archive inside ``growthwatch serve``: closed days are archived on a schedule.

``attach(service)`` (called by ``exporters.service``) starts one daemon thread when the
config has an ``archive`` section: every ``schedule.every`` it archives the closed days
not yet archived (and the late events of archived ones), then applies retention. The
ledger and series store are the service's own (one process owns the DuckDB files).
``close()`` stops it between two days; the position is saved after every day, so the next
start continues where it stopped.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from bigquery_archive.archiver import Archiver
from bigquery_archive.connect import open_archive, open_position
from bigquery_archive.history import history_types
from bigquery_archive.retention import trim_influx, trim_ledger
from bigquery_archive.settings import ArchiveSettings
from growthwatch import MetricsSettings

log = logging.getLogger(__name__)


class ScheduledArchive:
    def __init__(
        self,
        service: Any,
        settings: ArchiveSettings,
        *,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.service = service
        self.settings = settings
        self.archive = open_archive(settings, service.ledger)
        self.position = open_position(self.archive, service.config.data_dir)
        self.archiver = Archiver(
            service.ledger, self.archive, self.position, series=service.series,
            close_after=settings.schedule.close_after, now=now,
        )  # fmt: skip
        self.now = now
        self.metrics = MetricsSettings.from_config(service.config)
        self._stop = threading.Event()
        self.runs = 0
        self.thread = threading.Thread(target=self._loop, name="archive", daemon=True)
        self.thread.start()

    def run_once(self) -> None:
        work = self.archiver.plan()
        self.archiver.run(work, metrics=self.settings.schedule.metrics, stop=self._stop)
        if not self.archive.embedded and not self._stop.is_set():
            now = self.now()
            retention = self.settings.retention
            trim_ledger(self.service.ledger, self.position, retention,
                        history_types(self.metrics), now=now)  # fmt: skip
            trim_influx(self.service.influx, self.service.ledger, self.position, retention,
                        now=now)  # fmt: skip
        self.runs += 1

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                self.run_once()
            except Exception:  # a failed run is retried on the next tick, never fatal
                log.exception("archive: scheduled run failed")
            self._stop.wait(self.settings.schedule.every.total_seconds())

    def close(self) -> None:
        self._stop.set()
        self.thread.join(timeout=60)
        self.archive.close()


def attach(service: Any) -> ScheduledArchive | None:
    settings = ArchiveSettings.from_config(service.config)
    if not settings.configured:
        return None
    return ScheduledArchive(service, settings)
