"""CSV import: one-off history in the growth-event shape.

The columns are those of ``growthwatch.frames`` (``product, type, ts, value, currency,
subject, mrr_before, mrr_after, metadata, source, source_id, kind``; ``plan``/``channel``
may be given or are taken from ``metadata``). ``product`` defaults to the configured
product and ``source`` to ``csv``; ``source_id`` is required, because it is what makes a
second import of the same file change nothing. ``ts`` must carry its zone
(``2025-03-01T12:00:00Z``); naive times are rejected rather than guessed.

The file is read with the ``csv`` module in chunks, so a row with too many or too few
fields is rejected on its own (``malformed_row``) and every other row is checked by
``check_frame`` inside the ledger. Only rows with ``ts`` in the requested range are
stored, so ``growthwatch backfill product/csv --since DATE`` imports from DATE on.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator, Mapping
from datetime import datetime
from pathlib import Path
from typing import Any, ClassVar

import pandas as pd

from exporters.base import Batch, Rejection, SourceError, Stream
from exporters.state import StateStore
from growthwatch.config import SourceConfig
from growthwatch.frames import REQUIRED_INPUT

SOURCE = "csv"


def _time(text: str) -> datetime | None:
    try:
        return datetime.fromisoformat(text.strip()) if text.strip() else None
    except ValueError:
        return None


class CsvStream(Stream):
    source_type: ClassVar[str] = SOURCE
    options: ClassVar[Mapping[str, Any]] = {"path": {"type": "string"}}
    required: ClassVar[tuple[str, ...]] = ("path",)
    scheduled: ClassVar[bool] = False  # a one-off import: `growthwatch backfill`

    @classmethod
    def build(cls, config: SourceConfig, state: StateStore, base: Path | None = None) -> Stream:
        return cls(config, state, base=base)
    replication_key: ClassVar[str] = "ts"
    schema: ClassVar[dict[str, str]] = {
        "product": "string (default: the configured product)",
        "type": "string (growthwatch event type)",
        "ts": "ISO 8601 timestamp with zone",
        "value": "number",
        "currency": "ISO 4217 (money types)",
        "subject": "string (customer/user id)",
        "mrr_before": "number (subscription types)",
        "mrr_after": "number (subscription types)",
        "metadata": "JSON object",
        "source": "string (default csv)",
        "source_id": "string (required: the row's identity in its source)",
        "kind": "string (default: the type)",
    }
    chunk_rows: ClassVar[int] = 50_000

    def __init__(self, config: SourceConfig, state: StateStore, *, base: Path | None = None) -> None:
        super().__init__(config, state)
        path = Path(str(config.options["path"]))
        self.path = path if path.is_absolute() or base is None else base / path

    def default_start(self, now: datetime) -> datetime:
        return self.start_date or datetime(1970, 1, 1, tzinfo=now.tzinfo)

    def run(self, since: datetime, until: datetime) -> Iterator[Batch]:
        if not self.path.exists():
            raise SourceError(f"csv: {self.path} does not exist")
        with self.path.open(newline="", encoding="utf-8") as fh:
            total = max(sum(1 for _ in fh) - 1, 1)
            fh.seek(0)
            reader = csv.DictReader(fh)
            header = reader.fieldnames or []
            missing = [c for c in REQUIRED_INPUT if c not in header and c not in ("product",
                                                                                   "source")]  # fmt: skip
            if missing:
                raise SourceError(f"csv: {self.path} lacks column(s) {', '.join(missing)}")
            rows: list[dict[str, Any]] = []
            rejected: list[Rejection] = []
            done = 0
            for line_no, row in enumerate(reader, start=2):
                done += 1
                if None in row or any(v is None for v in row.values()):
                    rejected.append(Rejection(
                        "malformed_row", f"{self.path.name}:{line_no}: wrong number of fields",
                        json.dumps(row, default=str)[:2000],
                    ))  # fmt: skip
                    continue
                record: dict[str, Any] = {k: (v if v != "" else None) for k, v in row.items()}
                record["product"] = record.get("product") or self.product
                record["source"] = record.get("source") or SOURCE
                when = _time(row.get("ts") or "")
                if when is not None and when.tzinfo is not None and not since <= when < until:
                    continue
                record["ts"] = when
                rows.append(record)
                if len(rows) >= self.chunk_rows:
                    yield Batch(events=_frame(rows), rejected=rejected, progress=done / total)
                    rows, rejected = [], []
            yield Batch(events=_frame(rows), rejected=rejected, cursor=until, progress=1.0)


def _frame(rows: list[dict[str, Any]]) -> pd.DataFrame:
    frame = pd.DataFrame.from_records(rows)
    if not frame.empty:
        frame["ts"] = frame["ts"].astype(object)
    return frame
