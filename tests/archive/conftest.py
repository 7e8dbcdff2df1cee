"""Archive fixtures: a demo ledger archived once into the session's BigQuery emulator."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from archive_cases import NOW, SPEC, Archived, build_ledger, new_archive

from bigquery_archive.archiver import Archiver
from bigquery_archive.position import ArchivePosition
from growthwatch.testing.servers import BigQueryEmulator


@pytest.fixture(scope="session")
def archived(
    bigquery_emulator: BigQueryEmulator, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Archived]:
    """The demo ledger, every day archived (events only) into a fresh dataset."""
    root = tmp_path_factory.mktemp("archived")
    ledger = build_ledger(root / "ledger.duckdb", odd=True)
    archive = new_archive(bigquery_emulator)
    position = ArchivePosition(root / "archive-state.json", archive.name)
    archiver = Archiver(ledger, archive, position, now=lambda: NOW)
    archiver.run(archiver.plan(), metrics=False)
    # The ledger's first day: the demo dates its opening customer base just before
    # SPEC.start, so that the first reported month opens with it.
    (first,) = ledger.connection.execute("SELECT min(ts)::DATE FROM events").fetchone()
    yield Archived(ledger, archive, position, first, SPEC.end)
    ledger.close()
