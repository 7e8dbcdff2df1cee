"""Events of any period, wherever they are now: the archive before the ledger's retention
boundary, the ledger after it (drill-down of old periods, ``growthwatch archive events``).

The split is by time, so an event is read from exactly one place (the history types that
the ledger keeps for good are also in the archive; before the boundary they come from the
archive only).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import pandas as pd

from bigquery_archive.archiver import day_start
from bigquery_archive.backend import Archive
from bigquery_archive.position import ArchivePosition
from growthwatch import Ledger


class ArchiveReader:
    def __init__(self, ledger: Ledger, archive: Archive, position: ArchivePosition) -> None:
        self.ledger = ledger
        self.archive = archive
        self.position = position

    def boundary(self) -> datetime | None:
        """Events before this instant are served from the archive."""
        if self.archive.embedded or not self.position.trimmed_before:
            return None
        return day_start(datetime.fromisoformat(self.position.trimmed_before).date())

    def read(
        self,
        start: datetime,
        end: datetime,
        *,
        types: Sequence[str] | None = None,
        products: Sequence[str] | None = None,
    ) -> pd.DataFrame:
        cut = self.boundary()
        parts = []
        if cut is not None and start < cut:
            parts.append(self.archive.read_events(start, min(end, cut), types=types,
                                                  products=products))  # fmt: skip
        if cut is None or end > cut:
            lo = start if cut is None else max(start, cut)
            parts.append(self.ledger.read(products=products, types=types, start=lo, end=end))
        frame = pd.concat(parts, ignore_index=True) if len(parts) > 1 else parts[0]
        return frame.sort_values(["ts", "idempotency_key"], ignore_index=True)
