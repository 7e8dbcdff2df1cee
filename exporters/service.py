"""Wiring from ``growthwatch.yaml`` to running exporters (``serve`` and ``backfill``).

One place builds the ledger, the state file, the stores, the metrics engine, the streams,
the webhook receiver and the scheduler from a ``Config``, so the two commands and the
tests assemble the same thing. Files live under ``storage.data_dir``: ``ledger.duckdb``
(events), ``series.duckdb`` (embedded metric series), ``exporters.sqlite`` (cursors,
webhook inbox, per-object state, rejected records), ``metrics-state.json`` (the engine's
last processed ledger seq) and ``influx-spool/``.
"""

from __future__ import annotations

import importlib
import importlib.util
import logging
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol

from prometheus_client import start_http_server

from exporters import telemetry
from exporters.base import Ingestor, Stream
from exporters.registry import build_stream, scheduled_types
from exporters.scheduler import Scheduler
from exporters.series_hook import LiveSeriesHook
from exporters.state import StateStore
from exporters.stripe import StripeStream
from exporters.stripe_webhook import StripeWebhookReceiver, WebhookRoute
from growthwatch.config import Config, ConfigError, SourceConfig
from growthwatch.metrics.engine import STATE_FILE, MetricsEngine, Store
from growthwatch.metrics.settings import MetricsSettings
from growthwatch.stores.influx import InfluxError, InfluxStore
from growthwatch.stores.ledger import Ledger
from growthwatch.stores.series import SeriesStore

log = logging.getLogger(__name__)

def all_sources(config: Config) -> list[SourceConfig]:
    return [s for product in config.products for s in product.sources]


def select_source(config: Config, name: str) -> SourceConfig:
    """``product/source-name``, or a source name/type that only one product has."""
    sources = all_sources(config)
    matches = [s for s in sources if f"{s.product}/{s.name}" == name]
    if not matches:
        matches = [s for s in sources if name in (s.name, s.type)]
    if len(matches) == 1:
        return matches[0]
    known = ", ".join(f"{s.product}/{s.name}" for s in sources) or "none"
    if not matches:
        raise ValueError(f"no source {name!r} in the config (configured: {known})")
    raise ValueError(f"{name!r} is ambiguous: say which one of {known}")


def influx_store(config: Config) -> InfluxStore | None:
    if config.influxdb is None:
        return None
    return InfluxStore.from_config(config.influxdb, spool_dir=config.data_dir / "influx-spool")


# Loopback unless the config says otherwise: a webhook endpoint open to the world is a
# decision (the stack's config binds the container's interface), not a default.
DEFAULT_HOST = "127.0.0.1"
DEFAULT_METRICS_PORT = 9108  # the Prometheus exporter convention; its own port, never the webhooks'

# Components that run inside ``growthwatch serve``: each module, when installed, has
# ``attach(service) -> Attached | None`` (None: not configured). A component joins the
# service by adding its module here; it finds the ledger, stores, engine, series hook
# (``service.hook.add_listener``) and config on the ``Service`` object.
COMPONENTS: tuple[str, ...] = (
    "detectors.service",
    "dashboards.live",
    "reports.service",
    "bigquery_archive.service",
)


class Attached(Protocol):
    """What a component's ``attach`` returns: something ``serve`` closes on shutdown."""

    def close(self) -> None: ...


class Service:
    """Everything ``growthwatch serve`` runs, built from one config."""

    def __init__(self, config: Config, *, base: Path | None = None) -> None:
        self.config = config
        self.base = base
        self.ledger = Ledger(config.ledger_path)
        self.state = StateStore(config.data_dir / "exporters.sqlite")
        self.influx = influx_store(config)
        if self.influx is not None:
            try:
                self.influx.ensure_database()
            except InfluxError as exc:  # writes spool until it answers; serve still starts
                log.warning("InfluxDB not ready (%s); points are spooled to %s and replayed "
                            "when it answers", exc, self.influx.spool.directory
                            if self.influx.spool else "memory")  # fmt: skip
        metrics = MetricsSettings.from_config(config)
        self.series = SeriesStore(config.ledger_path.with_name("series.duckdb"),
                                  memory_limit=metrics.series_memory_limit)  # fmt: skip
        stores: list[Store] = [self.series, *([self.influx] if self.influx else [])]
        self.engine = MetricsEngine(
            self.ledger, metrics,
            state_path=config.data_dir / STATE_FILE,
        )  # fmt: skip
        raw = config.influxdb.raw_events if config.influxdb else False
        self.hook = LiveSeriesHook(
            influx=self.influx, engine=self.engine, stores=stores, raw_events=raw
        )
        self.ingestor = Ingestor(self.ledger, self.state, self.hook)
        self.streams: list[Stream] = []
        self.receiver: StripeWebhookReceiver | None = None
        self.scheduler: Scheduler | None = None
        self.stores = stores
        self._stopping = threading.Event()
        self.metrics_server: Any = None
        self.not_started: dict[str, str] = {}  # source id -> why (e.g. a ${VAR} unset)
        self.components: dict[str, Attached] = {}

    def stream(self, source: SourceConfig) -> Stream:
        stream = build_stream(source, self.state, self.base)
        self.streams.append(stream)
        return stream

    def start(self, *, schedule: bool = True) -> Service:
        server = self.config.section("server")
        host = str(server.get("host", DEFAULT_HOST))
        streams: list[Stream] = []
        routes: list[WebhookRoute] = []
        for source in all_sources(self.config):
            if source.type not in scheduled_types():
                continue
            # One source with missing credentials (an unset ${VAR}) never stops the others:
            # it is reported and skipped, the rest of the service starts.
            try:
                stream = self.stream(source)
                if isinstance(stream, StripeStream) and (secret := stream.webhook_secret()):
                    routes.append(WebhookRoute(stream, secret))
                streams.append(stream)
            except ConfigError as exc:
                first = exc.problems[0] if exc.problems else None
                reason = f"{first.message} ({first.hint})" if first and first.hint else (
                    first.message if first else str(exc))  # fmt: skip
                self.not_started[f"{source.product}/{source.name}"] = reason
                log.error("%s/%s not started: %s", source.product, source.name, reason)
        self.receiver = StripeWebhookReceiver(
            self.ingestor, routes, host=host, port=int(server.get("port", 8000))
        ).start()
        metrics_port = int(server.get("metrics_port", DEFAULT_METRICS_PORT))
        metrics_host = str(server.get("metrics_host", host))
        try:
            self.metrics_server, _ = start_http_server(metrics_port, addr=metrics_host,
                                                       registry=telemetry.REGISTRY)  # fmt: skip
        except OSError as exc:  # a busy port costs the metrics, never the webhooks
            log.error("/metrics not served on %s:%d: %s", metrics_host, metrics_port, exc)
        if schedule:
            self.scheduler = Scheduler(self.ingestor, streams).start()
        self._attach_components()
        self._pruner = threading.Thread(target=self._prune_loop, name="state-prune", daemon=True)
        self._pruner.start()
        threading.Thread(target=self._load_keys, name="ledger-keys", daemon=True).start()
        return self

    def _load_keys(self) -> None:
        """The ledger's key set, read once at start (see ``Ledger.load_keys``); a failure is
        logged and the first append loads it instead."""
        try:
            self.ledger.load_keys()
        except Exception:
            if not self._stopping.is_set():  # closed before it ran: nothing to say
                log.exception("loading the ledger's keys at start failed")

    def _prune_loop(self) -> None:
        """Every 6 hours (and at start): drop processed webhook payloads and rejections past
        their retention (``storage.inbox_retention_days``, ``rejections_retention_days``)."""
        storage = self.config.section("storage")
        inbox_days = float(storage.get("inbox_retention_days", 30))
        rejected_days = float(storage.get("rejections_retention_days", 90))
        while True:
            try:
                inbox, rejected = self.state.prune(inbox_days=inbox_days,
                                                   rejected_days=rejected_days)  # fmt: skip
                if inbox or rejected:
                    log.info("pruned %d webhook payload(s) and %d rejection(s)", inbox, rejected)
            except Exception:
                log.exception("pruning the state file failed")
            if self._stopping.wait(6 * 3600):
                return

    def _attach_components(self) -> None:
        for name in COMPONENTS:
            if importlib.util.find_spec(name.rpartition(".")[0]) is None:
                continue
            try:
                module = importlib.import_module(name)
            except ModuleNotFoundError as exc:
                if exc.name == name:
                    continue  # the component has no serve part (yet)
                raise
            attached = module.attach(self)
            if attached is not None:
                self.components[name] = attached
                log.info("serve: %s attached", name)

    def close(self) -> None:
        self._stopping.set()
        for name, component in reversed(list(self.components.items())):
            try:
                component.close()
            except Exception:
                log.exception("serve: closing %s failed", name)
        if self.scheduler is not None:
            self.scheduler.stop()
        if self.receiver is not None:
            self.receiver.stop()
        if self.metrics_server is not None:
            self.metrics_server.shutdown()
            self.metrics_server.server_close()
        self.hook.wait_idle(timeout=10)
        self.hook.close()
        for stream in self.streams:
            stream.close()
        self.state.close()
        self.series.close()
        self.ledger.close()

    def __enter__(self) -> Service:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def describe(streams: Sequence[Stream]) -> list[str]:
    return [f"{s.stream_id} ({s.source_type}, every {s.schedule}, lookback {s.lookback})"
            for s in streams]  # fmt: skip
