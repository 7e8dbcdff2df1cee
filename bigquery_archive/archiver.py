"""Archiving closed days: what to load (plan) and loading it day by day (run).

A day is *closed* once ``close_after`` has passed since its UTC midnight end; only closed
days are archived, so a day is normally loaded once. Late events (a source's lookback, a
retried webhook) still reach the ledger afterwards: ``plan`` compares each closed day's
ledger ``max(seq)`` with the persisted position and schedules the days that grew; ``run``
loads just their new rows (``seq >`` what was archived), and the MERGE adds them.

``run`` saves the position after every day and checks ``stop`` between days, so Ctrl-C,
a shutdown of ``serve`` or a crash costs at most the day in flight, which the next run
loads again (idempotently).
"""

from __future__ import annotations

import logging
import tempfile
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path

from bigquery_archive.backend import Archive
from bigquery_archive.position import ArchivePosition, DayPosition
from bigquery_archive.rows import export_events, ledger_days, metric_rows, write_ndjson
from growthwatch import Ledger, SeriesReader

log = logging.getLogger(__name__)
Progress = Callable[[date, int], None]  # (day done, events of that day)


def day_start(day: date) -> datetime:
    return datetime.combine(day, time(), tzinfo=UTC)


@dataclass(frozen=True)
class DayWork:
    day: date
    ledger_count: int
    ledger_max_seq: int
    after_seq: int  # archived up to this seq already (0: never)

    @property
    def late(self) -> bool:
        return self.after_seq > 0


@dataclass(frozen=True)
class DayResult:
    day: date
    ledger_events: int
    sent: int  # event rows sent this run
    added: int  # event rows the archive did not have
    metric_rows: int
    late: bool

    def as_row(self) -> dict[str, object]:
        return {"day": self.day.isoformat(), "ledger_events": self.ledger_events,
                "sent": self.sent, "added": self.added, "metric_rows": self.metric_rows,
                "late": self.late}  # fmt: skip


class Archiver:
    def __init__(
        self,
        ledger: Ledger,
        archive: Archive,
        position: ArchivePosition,
        *,
        series: SeriesReader | None = None,
        close_after: timedelta = timedelta(hours=2),
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.ledger = ledger
        self.archive = archive
        self.position = position
        self.series = series
        self.close_after = close_after
        self.now = now

    def closed_before(self) -> date:
        """Days before this one are closed."""
        return (self.now() - self.close_after).date()

    def plan(self, since: date | None = None, until: date | None = None) -> list[DayWork]:
        """Closed days in [since, until) whose ledger rows are not all archived yet."""
        end = self.closed_before() if until is None else min(until, self.closed_before())
        summary = ledger_days(self.ledger, None if since is None else day_start(since),
                              day_start(end))  # fmt: skip
        work = []
        for day, n, max_seq in summary.itertuples(index=False):
            done = self.position.seq_of(day)
            if int(max_seq) > done:
                work.append(DayWork(day, int(n), int(max_seq), done))
        return work

    def run(
        self,
        work: Sequence[DayWork],
        *,
        metrics: bool = True,
        progress: Progress | None = None,
        stop: threading.Event | None = None,
    ) -> list[DayResult]:
        """Load each planned day (and, with ``metrics``, its daily metric rows)."""
        results: list[DayResult] = []
        if not work:
            return results
        self.archive.ensure()
        with tempfile.TemporaryDirectory(prefix="gw-archive-") as tmp:
            folder = Path(tmp)
            for item in sorted(work, key=lambda w: w.day):
                if stop is not None and stop.is_set():
                    log.info("archive: stopped before %s", item.day)
                    break
                results.append(self._day(item, folder, metrics))
                if progress is not None:
                    progress(item.day, item.ledger_count)
            late = [w.day for w in work if w.late]
            if metrics and late and not self.archive.embedded and not (stop and stop.is_set()):
                # A late subscription event moves MRR on every later day: refresh those
                # days' metric rows too (their events are unchanged).
                done = {w.day for w in work}
                for iso in sorted(self.position.days):
                    day = date.fromisoformat(iso)
                    if day > min(late) and day not in done:
                        self._metrics(day, folder, self.now())
        return results

    def _metrics(self, day: date, folder: Path, stamp: datetime) -> int:
        if self.series is None:
            return 0
        start = day_start(day)
        rows = metric_rows(self.series, start, start + timedelta(days=1), stamp)
        path = folder / f"metrics-{day:%Y%m%d}.ndjson"
        write_ndjson(rows, path)
        self.archive.load_metric_rows(start, path, len(rows))
        path.unlink(missing_ok=True)
        return len(rows)

    def _day(self, item: DayWork, folder: Path, metrics: bool) -> DayResult:
        start = day_start(item.day)
        end = start + timedelta(days=1)
        stamp = self.now()
        if self.archive.embedded:
            return DayResult(item.day, item.ledger_count, 0, 0, 0, item.late)
        path = folder / f"events-{item.day:%Y%m%d}.ndjson"
        sent = export_events(self.ledger, path, start=start, end=end,
                             after_seq=item.after_seq, archived_at=stamp)  # fmt: skip
        outcome = self.archive.load_events(start, path, sent)
        path.unlink(missing_ok=True)
        n_metrics = self._metrics(item.day, folder, stamp) if metrics else 0
        old = self.position.days.get(item.day.isoformat())
        self.position.days[item.day.isoformat()] = DayPosition(
            max_seq=item.ledger_max_seq, count=item.ledger_count,
            archived=(old.archived if old else 0) + outcome.inserted, at=stamp.isoformat(),
        )  # fmt: skip
        self.position.save()
        log.info("archive %s: %d sent, %d new, %d metric rows", item.day, sent,
                 outcome.inserted, n_metrics)  # fmt: skip
        return DayResult(item.day, item.ledger_count, sent, outcome.inserted, n_metrics,
                         item.late)  # fmt: skip
