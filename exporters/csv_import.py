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
import re
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


class CsvStream(Stream):
    source_type: ClassVar[str] = SOURCE
    options: ClassVar[Mapping[str, Any]] = {"path": {"type": "string"}}
    required: ClassVar[tuple[str, ...]] = ("path",)
    scheduled: ClassVar[bool] = False  # a one-off import: `growthwatch backfill`
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

    @classmethod
    def build(cls, config: SourceConfig, state: StateStore, base: Path | None = None) -> Stream:
        return cls(config, state, base=base)

    def __init__(self, config: SourceConfig, state: StateStore, *, base: Path | None = None) -> None:
        super().__init__(config, state)
        path = Path(str(config.options["path"]))
        self.path = path if path.is_absolute() or base is None else base / path

    def default_start(self, now: datetime) -> datetime:
        return self.start_date or datetime(1970, 1, 1, tzinfo=now.tzinfo)

    def run(self, since: datetime, until: datetime) -> Iterator[Batch]:
        if not self.path.exists():
            raise SourceError(f"csv: {self.path} does not exist")
        name = self.path.name
        # utf-8-sig: a byte-order mark (Excel writes one) is not part of the first column name.
        with self.path.open(newline="", encoding="utf-8-sig", errors="strict") as fh:
            try:
                total = max(sum(1 for _ in fh) - 1, 1)
            except UnicodeDecodeError as exc:
                raise SourceError(f"csv: {name} is not UTF-8 text ({exc.reason} at byte "
                                  f"{exc.start}); save it as UTF-8") from exc  # fmt: skip
            fh.seek(0)
            reader = csv.DictReader(fh)
            header = [h.strip() for h in reader.fieldnames or []]
            reader.fieldnames = header
            missing = [c for c in REQUIRED_INPUT if c not in header and c not in ("product",
                                                                                   "source")]  # fmt: skip
            if missing:
                raise SourceError(f"csv: {name}:1: lacks column(s) {', '.join(missing)}")
            rows: list[dict[str, Any]] = []
            lines: list[int] = []
            rejected: list[Rejection] = []
            done = 0
            for row in reader:
                line_no = reader.line_num  # the file line the row ends on (quoted newlines)
                done += 1
                raw = json.dumps(row, default=str, sort_keys=True)[:2000]
                if None in row or any(v is None for v in row.values()):
                    rejected.append(Rejection(
                        "malformed_row", f"{name}:{line_no}: wrong number of fields", raw))  # fmt: skip
                    continue
                problem = _row_problem(row)
                if problem is not None:
                    column, reason, why = problem
                    rejected.append(Rejection(
                        reason, f"{name}:{line_no}: column {column}={row[column]!r}: {why}", raw))  # fmt: skip
                    continue
                record: dict[str, Any] = {k: (v if v != "" else None) for k, v in row.items()}
                record["product"] = record.get("product") or self.product
                record["source"] = record.get("source") or SOURCE
                when = datetime.fromisoformat(row["ts"].strip())
                if not since <= when < until:
                    continue
                record["ts"] = when
                rows.append(record)
                lines.append(line_no)
                if len(rows) >= self.chunk_rows:
                    yield self._batch(rows, lines, rejected, done / total)
                    rows, lines, rejected = [], [], []
            batch = self._batch(rows, lines, rejected, 1.0)
            batch.cursor = until
            yield batch

    def _batch(self, rows: list[dict[str, Any]], lines: list[int],
               rejected: list[Rejection], progress: float) -> Batch:  # fmt: skip
        """A batch whose frame is indexed by file line, so the ledger's rejections of a
        row name the line (and the column) of the file."""
        frame = _frame(rows)
        frame.index = pd.Index(lines, name="line")
        return Batch(events=frame, rejected=rejected, progress=progress,
                     locate=lambda line: f"{self.path.name}:{line}")  # fmt: skip


_DECIMALS = re.compile(r"^[+-]?\d*\.(\d+)$")
MAX_DECIMALS = 6  # the ledger's DECIMAL(18, 6)


def _row_problem(row: Mapping[str, str]) -> tuple[str, str, str] | None:
    """(column, reason code, why) of the first thing wrong with a row that the ledger's
    own checks would report less clearly, or None."""
    text = (row.get("ts") or "").strip()
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        return "ts", "invalid_ts", "not an ISO 8601 time (e.g. 2025-03-01T12:00:00Z)"
    if when.tzinfo is None:
        return "ts", "naive_timestamp", "no time zone; add Z or an offset such as +01:00"
    for column in ("value", "mrr_before", "mrr_after"):
        match = _DECIMALS.match((row.get(column) or "").strip())
        if match and len(match.group(1).rstrip("0")) > MAX_DECIMALS:
            return (column, "too_precise", f"more than {MAX_DECIMALS} decimals; the ledger "
                    "keeps 6 and would round it")  # fmt: skip
    return None


def _frame(rows: list[dict[str, Any]]) -> pd.DataFrame:
    frame = pd.DataFrame.from_records(rows)
    if not frame.empty:
        frame["ts"] = frame["ts"].astype(object)
    return frame
