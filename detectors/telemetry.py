"""Prometheus metrics about the detector itself, on the exporters' registry (``/metrics``)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

from exporters.telemetry import REGISTRY

EVALUATIONS = Counter(
    "growthwatch_detector_evaluations",
    "Series evaluations the detector ran, per product.",
    ["product"],
    registry=REGISTRY,
)
ALERTS_OPEN = Gauge(
    "growthwatch_detector_alerts_open",
    "Alerts open now (opened or escalated, not resolved), per severity.",
    ["severity"],
    registry=REGISTRY,
)
NOTIFICATIONS = Counter(
    "growthwatch_detector_notifications",
    "Notifications per apprise route, by outcome (sent, failed after retries).",
    ["route", "outcome"],
    registry=REGISTRY,
)
LAST_EVALUATION = Gauge(
    "growthwatch_detector_last_evaluation_timestamp_seconds",
    "Unix time the last detector evaluation finished.",
    registry=REGISTRY,
)
EVALUATION_DURATION = Histogram(
    "growthwatch_detector_evaluation_duration_seconds",
    "Wall time of one detector evaluation of one product.",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
    registry=REGISTRY,
)
