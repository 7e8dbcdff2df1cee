"""Pick the backend the config asks for: BigQuery, or the ledger when none is configured."""

from __future__ import annotations

from pathlib import Path

from bigquery_archive.backend import Archive
from bigquery_archive.embedded import LedgerArchive
from bigquery_archive.position import STATE_FILE, ArchivePosition
from bigquery_archive.settings import ArchiveSettings
from growthwatch import Ledger


def open_archive(settings: ArchiveSettings, ledger: Ledger) -> Archive:
    if settings.bigquery is None:
        return LedgerArchive(ledger)
    from bigquery_archive.bq_client import BigQueryArchive

    return BigQueryArchive(settings.bigquery)


def open_position(archive: Archive, data_dir: Path) -> ArchivePosition:
    return ArchivePosition.load(data_dir / STATE_FILE, archive.name)
