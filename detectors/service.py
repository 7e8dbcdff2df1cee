"""The detector inside ``growthwatch serve``: evaluate as soon as points land, and on a
schedule.

``attach(service)`` (called by ``exporters.service``) returns None without a ``detector``
config section. Otherwise it listens to the live series hook: every metrics update names
the products it touched, and a worker thread evaluates their watched metrics at once
(webhook -> ledger -> series update -> here -> alert book -> sinks). A second loop
evaluates every product every ``detector.interval`` for the pulled sources and so that
alerts resolve when nothing arrives. Work coalesces: a burst of webhooks for one product
is a few evaluations, never a queue of thousands. Evaluation time comes from
``service.clock`` when the service has one (tests), else the wall clock.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from detectors import telemetry
from detectors.alerts import SEVERITY_RANK, AlertBook, Finding, Transition
from detectors.evaluate import amount_findings, daily_twin, intraday_findings, series_findings
from detectors.settings import DetectorSettings
from detectors.sinks import Sink
from detectors.sinks.anomalies import AnomalySink
from detectors.sinks.grafana import GrafanaAnnotations
from detectors.sinks.notify import Notifier, routes_from_config
from growthwatch import ConfigError, PointBatch, resolve_env

log = logging.getLogger(__name__)
BOOK_FILE = "detector.sqlite"


class DetectorService:
    def __init__(
        self, settings: DetectorSettings, *, ledger: Any, reader: Any, book: AlertBook,
        sinks: list[Sink], clock: Callable[[], float] = time.time,
    ) -> None:  # fmt: skip
        self.settings = settings
        self.ledger = ledger
        self.reader = reader
        self.book = book
        self.sinks = sinks
        self.clock = clock
        self.measurements = {m.ref.measurement for m in settings.metrics}
        self._pending: set[str] = set()
        self._cond = threading.Condition()
        self._stop = threading.Event()
        self._idle = threading.Event()
        self._idle.set()
        self._threads = [
            threading.Thread(target=self._worker, name="detector", daemon=True),
            threading.Thread(target=self._schedule, name="detector-schedule", daemon=True),
        ]

    def start(self) -> DetectorService:
        for thread in self._threads:
            thread.start()
        return self

    def on_batches(self, batches: list[PointBatch]) -> None:
        """Series listener: queue the products whose watched series just changed."""
        products: set[str] = set()
        for batch in batches:
            if batch.measurement in self.measurements and "product" in batch.frame:
                products.update(str(p) for p in batch.frame["product"].unique())
        products.discard("all")
        if products:
            self.request(products)

    def request(self, products: set[str]) -> None:
        with self._cond:
            self._pending |= products
            self._idle.clear()
            self._cond.notify()

    def _worker(self) -> None:
        while not self._stop.is_set():
            with self._cond:
                while not self._pending and not self._stop.is_set():
                    self._idle.set()
                    self._cond.wait(timeout=0.5)
                todo, self._pending = sorted(self._pending), set()
            for product in todo:
                try:
                    self.evaluate(product)
                except Exception:
                    log.exception("detector: evaluating %s failed", product)

    def _schedule(self) -> None:
        interval = max(self.settings.interval.total_seconds(), 1.0)
        while not self._stop.wait(interval):
            try:
                self.request(set(self.ledger.products()))
            except Exception:
                log.exception("detector: scheduled evaluation failed")

    def wait_idle(self, timeout: float = 30.0) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._cond:
                if not self._pending and self._idle.is_set():
                    return True
            time.sleep(0.02)
        return False

    def evaluate(self, product: str, now: datetime | None = None) -> list[Transition]:
        """Judge every watched metric of ``product`` now; hand transitions to the sinks."""
        started = time.perf_counter()
        now = now or datetime.fromtimestamp(self.clock(), UTC)
        findings: list[Finding] = []
        for metric in self.settings.metrics:
            if self.settings.intraday and metric.event_type is not None:
                findings += intraday_findings(self.ledger, metric, self.settings, product, [now])
                findings += series_findings(self.reader, daily_twin(metric), self.settings,
                                            product, since=now - timedelta(days=2), until=now,
                                            as_metric=metric.name)  # fmt: skip
            elif self.settings.intraday and metric.amount_event_type is not None:
                findings += amount_findings(self.ledger, metric, self.settings, product, [now])
                findings += series_findings(self.reader, metric, self.settings, product,
                                            since=now - timedelta(days=2), until=now)  # fmt: skip
            else:
                since = now - timedelta(days=2)
                found = series_findings(self.reader, metric, self.settings, product,
                                        since=since, until=now)  # fmt: skip
                findings += found
        transitions = [t for f in findings if (t := self.book.observe(f)) is not None]
        for transition in transitions:
            for sink in self.sinks:
                try:
                    sink.emit(transition)
                except Exception:
                    log.exception("detector: sink %s failed", type(sink).__name__)
        telemetry.EVALUATIONS.labels(product).inc()
        telemetry.LAST_EVALUATION.set(time.time())
        telemetry.EVALUATION_DURATION.observe(time.perf_counter() - started)
        self._count_open()
        return transitions

    def _count_open(self) -> None:
        counts = dict.fromkeys(("warning", "critical"), 0)
        for alert in self.book.open_alerts():
            if SEVERITY_RANK.get(alert.severity):
                counts[alert.severity] = counts.get(alert.severity, 0) + 1
        for severity, n in counts.items():
            telemetry.ALERTS_OPEN.labels(severity).set(n)

    def close(self) -> None:
        self._stop.set()
        with self._cond:
            self._cond.notify_all()
        for thread in self._threads:
            if thread.is_alive():
                thread.join(timeout=10)
        self.book.close()


def build_sinks(config: Any, stores: list[Any], book: AlertBook) -> list[Sink]:
    sinks: list[Sink] = [AnomalySink(stores)]
    grafana = config.section("grafana")
    if grafana.get("url") and grafana.get("annotations", True):
        try:
            token = resolve_env(grafana["token"], "grafana.token") if grafana.get("token") else None
            sinks.append(GrafanaAnnotations(str(grafana["url"]), token, book))
        except ConfigError as exc:  # the other sinks still run
            first = exc.problems[0] if exc.problems else None
            log.error("Grafana annotations are off: %s", first.message if first else exc)
    routes = routes_from_config(config.section("alerts"))
    if routes:
        sinks.append(Notifier(routes))
    return sinks


def attach(service: Any) -> DetectorService | None:
    """Run the detector inside ``serve`` (None when the config has no ``detector``)."""
    config = service.config
    if "detector" not in config.raw:
        return None
    settings = DetectorSettings.from_config(config)
    book = AlertBook(config.data_dir / BOOK_FILE, resolve_after=settings.resolve_after,
                     cooldown=settings.cooldown)  # fmt: skip
    detector = DetectorService(
        settings, ledger=service.ledger, reader=service.series, book=book,
        sinks=build_sinks(config, list(service.stores), book),
        clock=getattr(service, "clock", time.time),
    )  # fmt: skip
    service.hook.add_listener(detector.on_batches)
    return detector.start()
