"""Archive test data: a small demo ledger with exact-decimal traps, and fresh datasets.

Expected values in these tests come from the ledger itself (DuckDB's exact DECIMAL sums,
its own rows) or from the engine run on the original ledger, never from the archive code.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path

from bigquery_archive.bq_client import BigQueryArchive
from bigquery_archive.position import ArchivePosition
from bigquery_archive.settings import BigQuerySettings
from growthwatch import GrowthEvent, Ledger
from growthwatch.demo.generator import generate
from growthwatch.demo.spec import DemoSpec
from growthwatch.testing.servers import BigQueryEmulator

SPEC = DemoSpec(products=2, days=90, events_per_day=150)  # 2026-08-03 .. 2026-10-31
NOW = datetime(2026, 11, 2, 6, tzinfo=UTC)  # every demo day is closed
# Payments whose float sum drifts: exactness must come from NUMERIC, not luck.
ODD_AMOUNTS = ("0.10", "0.20", "19.99", "1234567.89", "0.01", "333333.333333", "0.07")


def odd_payments() -> list[GrowthEvent]:
    return [
        GrowthEvent(product="acme-crm", type="payment", value=Decimal(v), currency="USD",
                    subject=f"odd-{i}", source="test", source_id=f"odd-{i}",
                    timestamp=datetime(2026, 10, 3 + i, 12, tzinfo=UTC))
        for i, v in enumerate(ODD_AMOUNTS)
    ]  # fmt: skip


def build_ledger(path: Path, spec: DemoSpec = SPEC, *, odd: bool = False) -> Ledger:
    ledger = Ledger(path)
    for chunk in generate(spec):
        ledger.append(chunk)
    if odd:
        ledger.append(odd_payments())
    return ledger


def new_archive(emulator: BigQueryEmulator, *, storage: bool = True) -> BigQueryArchive:
    """An archive on a fresh dataset; reads through the Storage Read API unless
    ``storage`` is False (REST pages)."""
    dataset = "t_" + uuid.uuid4().hex[:10]
    return BigQueryArchive(BigQuerySettings(
        emulator.project, dataset, api_endpoint=emulator.url,
        storage_endpoint=emulator.storage_endpoint if storage else None,
    ))  # fmt: skip


@dataclass
class Archived:
    ledger: Ledger
    archive: BigQueryArchive
    position: ArchivePosition
    first: date
    end: date  # exclusive


