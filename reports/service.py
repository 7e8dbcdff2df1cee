"""The board report inside ``growthwatch serve``: sent once a month, retried until it is.

``attach(service)`` (called by ``exporters.service``) starts a ``ReportScheduler`` when the
config has a ``report`` section. On ``report.day`` at ``report.time`` of the reporting
timezone (default the 1st at 06:00) the previous month's report is built from the
embedded series store and delivered to ``report.delivery`` (apprise URLs). The record of
what was sent (``reports/sent.jsonl``) makes it once per month and target: a restart, or a
service started later in the month, sends what is still owed and nothing twice; a target
that failed after the retry policy's attempts is tried again every ``retry_interval``.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from pathlib import Path
from typing import Any

from growthwatch import RetryPolicy, SeriesReader, resolve_env
from reports.build import build_report, default_pdf_path, product_names
from reports.deliver import SentRecord, message, send, target_id
from reports.highlights import highlights
from reports.period import Month, last_complete_month, zone

log = logging.getLogger(__name__)
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def _seconds(duration: str) -> float:
    return float(duration[:-1]) * _UNITS[duration[-1]]


@dataclass(frozen=True)
class ReportSettings:
    """The ``report`` config section, every key with its default."""

    day: int = 1
    at: time = time(6, 0)
    products: tuple[str, ...] = ()
    delivery: tuple[str, ...] = ()  # env references, resolved at the moment of sending
    attach_pdf: bool = True
    link_base: str | None = None
    retry_interval: float = 900.0

    @classmethod
    def from_section(cls, section: Mapping[str, Any]) -> ReportSettings:
        hh, mm = str(section.get("time", "06:00")).split(":")
        return cls(
            day=int(section.get("day", 1)), at=time(int(hh), int(mm)),
            products=tuple(section.get("products") or ()),
            delivery=tuple(section.get("delivery") or ()),
            attach_pdf=bool(section.get("attach_pdf", True)),
            link_base=section.get("link_base"),
            retry_interval=_seconds(str(section.get("retry_interval", "15m"))),
        )  # fmt: skip


class ReportScheduler:
    """Decides which month is owed and sends it; ``tick(now)`` is one synchronous step."""

    def __init__(
        self,
        settings: ReportSettings,
        reader: SeriesReader,
        data_dir: Path,
        *,
        currency: str = "USD",
        timezone: str = "UTC",
        names: Mapping[str, str] | None = None,
        activation_window_days: int = 7,
        policy: RetryPolicy | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.settings = settings
        self.reader = reader
        self.data_dir = data_dir
        self.currency = currency
        self.timezone = timezone
        self.tz = zone(timezone)
        self.names = dict(names or {})
        self.activation_window_days = activation_window_days
        self.policy = policy
        self.clock = clock
        self.record = SentRecord(data_dir / "reports" / "sent.jsonl")
        self.next_try: datetime | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def due_month(self, now: datetime) -> Month:
        """The latest month whose send time (``day`` ``time`` of the month after) has passed."""
        month = last_complete_month(now, self.tz)
        after = month.shift(1).first_day.replace(day=self.settings.day)
        due = datetime.combine(after, self.settings.at, self.tz)
        return month if now >= due else month.shift(-1)

    def targets(self) -> dict[str, str]:
        """The delivery URLs by target id, resolved from the environment now."""
        urls = {}
        for i, ref in enumerate(self.settings.delivery):
            url = resolve_env(ref, f"report.delivery[{i}]")
            urls[target_id(url)] = url
        return urls

    def tick(self, now: datetime | None = None) -> list[Any]:
        """Send the owed month to every target that has not had it; returns the deliveries."""
        now = now or self.clock()
        if self.next_try is not None and now < self.next_try:
            return []
        month = self.due_month(now)
        targets = self.targets()
        done = self.record.delivered(str(month))
        owed = {tid: url for tid, url in targets.items() if tid not in done}
        pdf = default_pdf_path(self.data_dir, month)
        if not owed and (targets or pdf.exists()):
            return []
        built = build_report(
            self.reader, month, now=now, pdf=pdf, currency=self.currency,
            timezone=self.timezone, products=self.settings.products or None, names=self.names,
            activation_window_days=self.activation_window_days,
        )  # fmt: skip
        log.info("board report %s written to %s", month, pdf)
        if not owed:
            return []
        body = message(built.data.title, highlights(built.data), pdf, self.settings.link_base,
                       self.settings.attach_pdf)  # fmt: skip
        results = send(pdf, month=str(month), urls=list(owed.values()), title=built.data.title,
                       body=body, attach=self.settings.attach_pdf, policy=self.policy,
                       record=self.record, now=now)  # fmt: skip
        failed = [r for r in results if not r.ok]
        self.next_try = now + timedelta(seconds=self.settings.retry_interval) if failed else None
        return results

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                self.tick()
            except Exception:
                log.exception("board report: scheduled run failed; retrying later")
                self.next_try = self.clock() + timedelta(seconds=self.settings.retry_interval)
            self._stop.wait(60)

    def start(self) -> ReportScheduler:
        self._thread = threading.Thread(target=self._loop, name="board-report", daemon=True)
        self._thread.start()
        return self

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)


def attach(service: Any) -> ReportScheduler | None:
    """Join ``growthwatch serve``: None without a ``report`` section in the config."""
    config = service.config
    if "report" not in config.raw:
        return None
    section = config.section("report")
    names = {p.id: p.name for p in config.products if p.name and p.name != p.id}
    metrics = config.section("metrics")
    scheduler = ReportScheduler(
        ReportSettings.from_section(section), service.series, Path(config.data_dir),
        currency=config.reporting_currency, timezone=config.timezone,
        names=product_names(Path(config.data_dir), names),
        activation_window_days=int(metrics.get("activation_window_days", 7)),
    )  # fmt: skip
    return scheduler.start()
