"""The archive as the core's source of events older than a trimmed ledger.

``growthwatch customers`` / ``customer`` (core commands) need the events that retention
deleted from the ledger. The core cannot import this component, so this module offers
``open_archived_events`` to the core's ``older_events`` registry (``bigquery_archive/cli.py``
registers it when the CLI loads the archive's commands). It answers only when the
position records a trim (``trimmed_before``, written by ``trim_ledger``): an untrimmed
ledger, and the embedded backend (which refuses to trim), hold everything themselves.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime
from pathlib import Path
from typing import Any

import pandas as pd

from bigquery_archive.archiver import day_start
from bigquery_archive.backend import Archive
from bigquery_archive.connect import open_archive, open_position
from bigquery_archive.position import ArchivePosition
from bigquery_archive.settings import ArchiveSettings
from growthwatch import Ledger

EPOCH = date(2000, 1, 1)  # lower bound of "all history" reads (still a partition filter)


class ArchivedEvents:
    """``OlderEvents`` over an archive and its position (the trim boundary)."""

    def __init__(self, archive: Archive, position: ArchivePosition) -> None:
        self.archive = archive
        self.position = position
        self.name = archive.name

    def boundary(self) -> datetime | None:
        if not self.position.trimmed_before:
            return None
        return day_start(date.fromisoformat(self.position.trimmed_before))

    def read_before(
        self,
        end: datetime,
        *,
        types: Sequence[str] | None = None,
        products: Sequence[str] | None = None,
        subjects: Sequence[str] | None = None,
    ) -> pd.DataFrame:
        frame = self.archive.read_events(day_start(EPOCH), end, types=types, products=products)
        if subjects is not None:  # the archive's read has no subject filter: one product's rows
            frame = frame[frame["subject"].isin(list(subjects))].reset_index(drop=True)
        return frame

    def close(self) -> None:
        self.archive.close()


def open_archived_events(config: Any, data_dir: Path, ledger: Ledger) -> ArchivedEvents | None:
    """The configured archive when the ledger was trimmed, else None."""
    settings = ArchiveSettings.from_config(config)
    archive = open_archive(settings, ledger)
    position = open_position(archive, data_dir)
    if not position.trimmed_before:
        archive.close()
        return None
    return ArchivedEvents(archive, position)
