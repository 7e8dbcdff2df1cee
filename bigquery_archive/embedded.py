"""The embedded backend: with no BigQuery configured, the ledger plays the archive's role.

Loads copy nothing (the events are already in the ledger, where every read of this
backend looks) and report every row as already archived; reads, counts and sums are the
ledger's own. So ``growthwatch archive`` shows what is there, ``archive replay`` rebuilds
series from the ledger through the metrics engine, and retention is refused.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal
from pathlib import Path

import pandas as pd

from bigquery_archive.backend import LoadOutcome
from growthwatch import Ledger


class LedgerArchive:
    embedded = True
    name = "ledger (embedded; no BigQuery configured)"

    def __init__(self, ledger: Ledger) -> None:
        self.ledger = ledger

    def ensure(self) -> list[str]:
        return []

    def load_events(self, day_start: datetime, path: Path, rows: int) -> LoadOutcome:
        return LoadOutcome(staged=0, inserted=0)

    def load_metric_rows(self, day_start: datetime, path: Path, rows: int) -> LoadOutcome:
        return LoadOutcome(staged=0, inserted=0)

    def read_events(
        self,
        start: datetime,
        end: datetime,
        *,
        types: Sequence[str] | None = None,
        products: Sequence[str] | None = None,
    ) -> pd.DataFrame:
        return self.ledger.read(products=products, types=types, start=start, end=end)

    def day_counts(self, start: datetime, end: datetime) -> dict[str, int]:
        cursor = self.ledger.connection
        try:
            rows = cursor.execute(
                "SELECT CAST(floor(epoch(ts) / 86400) AS BIGINT), count(*) FROM events "
                "WHERE ts >= ? AND ts < ? GROUP BY 1 ORDER BY 1", [start, end],
            ).fetchall()  # fmt: skip
        finally:
            cursor.close()
        return {pd.Timestamp(d * 86400, unit="s").date().isoformat(): int(n) for d, n in rows}

    def sum_value(
        self, start: datetime, end: datetime, types: Sequence[str]
    ) -> dict[tuple[str, str, str | None], Decimal]:
        cursor = self.ledger.connection
        try:
            rows = cursor.execute(
                "SELECT product, type, currency, CAST(sum(value) AS VARCHAR) FROM events "
                "WHERE ts >= ? AND ts < ? AND type IN (SELECT unnest(?)) GROUP BY ALL",
                [start, end, list(types)],
            ).fetchall()
        finally:
            cursor.close()
        return {(p, t, c): Decimal(s) for p, t, c, s in rows}

    def close(self) -> None:
        pass
