"""Prometheus metrics about the exporters themselves (not growth metrics).

Why its own registry: tests and the benchmark create many receivers in one process, and a
private ``CollectorRegistry`` keeps the default one (process metrics) free of collisions;
``growthwatch serve`` exposes this registry at ``/metrics``. Names follow Prometheus
conventions: ``growthwatch_`` prefix, base units (seconds), ``_total`` for counters,
labels of low cardinality only (source type, product, reason, HTTP status).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from growthwatch.telemetry import CORE_REGISTRY, Include

REGISTRY = CollectorRegistry(auto_describe=True)
REGISTRY.register(Include(CORE_REGISTRY))  # the core's own metrics (InfluxDB spool)

EVENTS_INGESTED = Counter(
    "growthwatch_events_ingested",
    "Growth events newly stored in the ledger, per source type and product.",
    ["source", "product"],
    registry=REGISTRY,
)
EVENTS_DUPLICATE = Counter(
    "growthwatch_events_duplicate",
    "Growth events a source sent again (already in the ledger; not counted twice).",
    ["source", "product"],
    registry=REGISTRY,
)
EVENTS_REJECTED = Counter(
    "growthwatch_events_rejected",
    "Source records rejected (not turned into events), by reason.",
    ["source", "product", "reason"],
    registry=REGISTRY,
)
PULL_DURATION = Histogram(
    "growthwatch_pull_duration_seconds",
    "Wall time of one scheduled pull or backfill run of a source.",
    ["source", "product"],
    buckets=(0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 900, 3600),
    registry=REGISTRY,
)
METRICS_FAILING = Gauge(
    "growthwatch_metrics_product_failing",
    "1 while a product's metrics cannot be computed (its reason is in the log and in "
    "`growthwatch status`), e.g. money in a currency without an exchange rate",
    ["product"],
    registry=REGISTRY,
)
CURSOR_LAG = Gauge(
    "growthwatch_cursor_lag_seconds",
    "Now minus the replication-key value a source's cursor has durably reached.",
    ["source", "product"],
    registry=REGISTRY,
)
LAST_SUCCESS = Gauge(
    "growthwatch_last_success_timestamp_seconds",
    "Unix time of the last pull of a source that completed without error.",
    ["source", "product"],
    registry=REGISTRY,
)
API_ERRORS = Counter(
    "growthwatch_source_api_errors",
    "Error answers from a source's API (HTTP status, or 'network' for no answer).",
    ["source", "status"],
    registry=REGISTRY,
)
WEBHOOKS = Counter(
    "growthwatch_webhooks_received",
    "Webhook deliveries by outcome (accepted, duplicate, rejected_signature, ...).",
    ["source", "product", "outcome"],
    registry=REGISTRY,
)
WEBHOOK_PROCESSING = Histogram(
    "growthwatch_webhook_processing_seconds",
    "Time from a webhook's arrival to its events being in the ledger and series.",
    ["source"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5),
    registry=REGISTRY,
)


def render() -> tuple[bytes, str]:
    """The exposition text and its content type (for a ``/metrics`` handler)."""
    return generate_latest(REGISTRY), CONTENT_TYPE_LATEST


def api_error(source: str, status: int | str | None) -> None:
    API_ERRORS.labels(source, str(status) if status else "network").inc()


@contextmanager
def pull_timer(source: str, product: str) -> Iterator[None]:
    """Time a pull; on success set the last-success gauge (failures leave it stale)."""
    started = time.perf_counter()
    try:
        yield
    finally:
        PULL_DURATION.labels(source, product).observe(time.perf_counter() - started)
    LAST_SUCCESS.labels(source, product).set(time.time())
