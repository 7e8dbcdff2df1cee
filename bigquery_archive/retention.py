"""Retention: once days are archived, the ledger and InfluxDB keep only a recent window.

* Ledger (``retention.ledger_days``): events older than the window are deleted, but only
  up to the first day the archive does not hold in full (an unarchived event is never
  deleted), and never the history types (``history.py``), which the metrics engine needs
  from the beginning, nor each user's first ``active_use`` (the lifecycle's first
  activity); the boundary is recorded in the position, and ``ArchiveReader``
  serves what lies before it from the archive.
* InfluxDB (``retention.influx_days``): points older than the window are deleted from the
  fine-grained measurements (raw ``growth_events``, hourly and daily series), again only
  before the first unarchived day. Monthly, yearly and cohort series are small and stay.

Both are pure in their boundary (``boundary``) and thin in their effect.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from bigquery_archive.archiver import day_start
from bigquery_archive.history import FIRST_TYPES
from bigquery_archive.position import ArchivePosition
from bigquery_archive.rows import ledger_days
from bigquery_archive.settings import RetentionSettings
from growthwatch import MEASUREMENTS, Ledger

log = logging.getLogger(__name__)
FINE_MEASUREMENTS: tuple[str, ...] = (
    "growth_events",
    *(m.name for m in MEASUREMENTS if m.bucket in ("hour", "day", "event")),
)


@dataclass(frozen=True)
class TrimResult:
    store: str
    before: date | None  # nothing older than this day remains (None: nothing trimmed)
    deleted: int  # rows (ledger) or measurements cleared (InfluxDB)

    def as_row(self) -> dict[str, object]:
        return {"store": self.store, "before": self.before.isoformat() if self.before else "",
                "deleted": self.deleted}  # fmt: skip


def boundary(today: date, keep_days: int, first_unarchived: date | None) -> date:
    """The day before which data may go: ``keep_days`` back, but not past the first day
    the archive lacks."""
    cut = today - timedelta(days=keep_days)
    return cut if first_unarchived is None else min(cut, first_unarchived)


def first_unarchived(ledger: Ledger, position: ArchivePosition, end: date) -> date | None:
    """The first day before ``end`` whose ledger rows are not all archived."""
    for day, _n, max_seq in ledger_days(ledger, None, day_start(end)).itertuples(index=False):
        if int(max_seq) > position.seq_of(day):
            return day  # type: ignore[no-any-return,unused-ignore]
    return None


def trim_ledger(
    ledger: Ledger,
    position: ArchivePosition,
    settings: RetentionSettings,
    keep_types: tuple[str, ...],
    *,
    now: datetime,
    dry_run: bool = False,
) -> TrimResult:
    if not settings.ledger_days:
        return TrimResult("ledger", None, 0)
    today = now.astimezone(UTC).date()
    cut = boundary(today, settings.ledger_days, first_unarchived(ledger, position, today))
    if dry_run:
        return TrimResult("ledger", cut, ledger.count(end=day_start(cut)))
    deleted = ledger.delete_before(day_start(cut), keep_types=keep_types,
                                   keep_first_of=FIRST_TYPES)  # fmt: skip
    position.trimmed_before = max(cut.isoformat(), position.trimmed_before or "")
    position.save()
    log.info("retention: ledger events before %s deleted: %d", cut, deleted)
    return TrimResult("ledger", cut, deleted)


def trim_influx(
    influx: object,
    ledger: Ledger,
    position: ArchivePosition,
    settings: RetentionSettings,
    *,
    now: datetime,
    dry_run: bool = False,
) -> TrimResult:
    if not settings.influx_days or influx is None:
        return TrimResult("influxdb", None, 0)
    today = now.astimezone(UTC).date()
    cut = boundary(today, settings.influx_days, first_unarchived(ledger, position, today))
    if not dry_run:
        stamp = day_start(cut).strftime("%Y-%m-%dT%H:%M:%SZ")
        for name in FINE_MEASUREMENTS:
            influx.query(f"DELETE FROM \"{name}\" WHERE time < '{stamp}'",  # type: ignore[attr-defined]
                         method="POST")  # fmt: skip
        position.influx_trimmed_before = max(cut.isoformat(),
                                             position.influx_trimmed_before or "")  # fmt: skip
        position.save()
    return TrimResult("influxdb", cut, len(FINE_MEASUREMENTS))
