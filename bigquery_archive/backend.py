"""The one interface both archive backends implement: BigQuery, or the ledger itself.

With BigQuery configured, days are copied there and older history can leave the ledger.
Without it, the embedded ledger *is* the archive: loads copy nothing (the rows are already
where reads look), reads come from the ledger, and retention refuses to trim (the ledger
would lose events nothing else holds). The commands are the same either way.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Protocol

import pandas as pd


@dataclass(frozen=True)
class LoadOutcome:
    staged: int  # rows sent
    inserted: int  # rows that were new to the archive (0 on a repeated load)


class Archive(Protocol):
    """Where archived days live."""

    name: str  # for messages: "bigquery project.dataset" or "ledger (embedded)"
    embedded: bool  # True: the ledger is the archive (nothing to copy, nothing to trim)

    def ensure(self) -> list[str]:
        """Create or migrate the tables; returns what was done (for the log)."""
        ...

    def load_events(self, day_start: datetime, path: Path, rows: int) -> LoadOutcome:
        """Add the NDJSON rows of one UTC day exactly once (by idempotency key)."""
        ...

    def load_metric_rows(self, day_start: datetime, path: Path, rows: int) -> LoadOutcome:
        """Make one day's archived metric rows equal to these."""
        ...

    def read_events(
        self,
        start: datetime,
        end: datetime,
        *,
        types: Sequence[str] | None = None,
        products: Sequence[str] | None = None,
    ) -> pd.DataFrame:
        """Archived events of [start, end) in ``growthwatch.frames`` layout."""
        ...

    def day_counts(self, start: datetime, end: datetime) -> dict[str, int]:
        """Archived events per UTC day (ISO date -> rows)."""
        ...

    def sum_value(
        self, start: datetime, end: datetime, types: Sequence[str]
    ) -> dict[tuple[str, str, str | None], Decimal]:
        """Exact sum of ``value`` per (product, type, currency) over [start, end)."""
        ...

    def close(self) -> None: ...
