"""growthwatch's core: what every component (exporters, detectors, dashboards, the archive,
the report) builds on. Import these names from ``growthwatch`` itself; anything deeper is
the core's own business and may change (``tests/test_layout.py`` checks that the other
components keep to this surface).

Names are loaded on first use (PEP 562), so ``import growthwatch`` stays cheap for the CLI.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

_EXPORTS: dict[str, str] = {
    # events
    "GrowthEvent": "growthwatch.events",
    "EventType": "growthwatch.events",
    "EventValidationError": "growthwatch.events",
    "idempotency_key": "growthwatch.events",
    # currencies (ISO 4217 minor units: how many decimals money is printed with)
    "MINOR_UNITS": "growthwatch.currency",
    # event frames
    "events_to_frame": "growthwatch.frames",
    "frame_to_events": "growthwatch.frames",
    "check_frame": "growthwatch.frames",
    "RowProblem": "growthwatch.frames",
    # points and series seams
    "Point": "growthwatch.points",
    "PointBatch": "growthwatch.points",
    "SeriesReader": "growthwatch.stores.interfaces",
    "SeriesWriter": "growthwatch.stores.interfaces",
    "SeriesDeleter": "growthwatch.stores.interfaces",
    "SeriesStoreLike": "growthwatch.stores.interfaces",
    "WriteResult": "growthwatch.stores.interfaces",
    # stores
    "Ledger": "growthwatch.stores.ledger",
    "AppendResult": "growthwatch.stores.ledger",
    "InfluxStore": "growthwatch.stores.influx",
    "SeriesStore": "growthwatch.stores.series",
    "encode_batch": "growthwatch.stores.lineprotocol",
    # now, injectable
    "clock": "growthwatch",
    "event_points": "growthwatch.stores.event_points",
    # retry
    "RetryPolicy": "growthwatch.retry",
    "Retryable": "growthwatch.retry",
    "RetriesExhausted": "growthwatch.retry",
    # config
    "Config": "growthwatch.config.loader",
    "ConfigError": "growthwatch.config.loader",
    "load_config": "growthwatch.config.loader",
    "resolve_env": "growthwatch.config.loader",
    # metrics
    "MetricsEngine": "growthwatch.metrics.engine",
    "MetricsSettings": "growthwatch.metrics.settings",
    "MetricRef": "growthwatch.metrics.refs",
    "MetricRefError": "growthwatch.metrics.refs",
    "MEASUREMENTS": "growthwatch.metrics.schema",
    "Measurement": "growthwatch.metrics.schema",
    "field_unit": "growthwatch.metrics.schema",
    "compute": "growthwatch.metrics.engine",
    # events older than a trimmed ledger (the archive registers its reader)
    "OlderEvents": "growthwatch.older_events",
    "register_older_events": "growthwatch.older_events",
    # the demo's ground truth (detectors and benchmarks score against it)
    "Incident": "growthwatch.demo.incidents",
    "incidents": "growthwatch.demo.incidents",
}

__all__ = [
    "MEASUREMENTS",
    "MINOR_UNITS",
    "AppendResult",
    "Config",
    "ConfigError",
    "EventType",
    "EventValidationError",
    "GrowthEvent",
    "Incident",
    "InfluxStore",
    "Ledger",
    "Measurement",
    "MetricRef",
    "MetricRefError",
    "MetricsEngine",
    "MetricsSettings",
    "OlderEvents",
    "Point",
    "PointBatch",
    "RetriesExhausted",
    "RetryPolicy",
    "Retryable",
    "RowProblem",
    "SeriesDeleter",
    "SeriesReader",
    "SeriesStore",
    "SeriesStoreLike",
    "SeriesWriter",
    "WriteResult",
    "check_frame",
    "clock",
    "compute",
    "encode_batch",
    "event_points",
    "events_to_frame",
    "field_unit",
    "frame_to_events",
    "idempotency_key",
    "incidents",
    "load_config",
    "register_older_events",
    "resolve_env",
]

if TYPE_CHECKING:
    from growthwatch.config.loader import Config, ConfigError, load_config, resolve_env
    from growthwatch.currency import MINOR_UNITS
    from growthwatch.demo.incidents import Incident, incidents
    from growthwatch.events import EventType, EventValidationError, GrowthEvent, idempotency_key
    from growthwatch.frames import RowProblem, check_frame, events_to_frame, frame_to_events
    from growthwatch.metrics.engine import MetricsEngine, compute
    from growthwatch.metrics.refs import MetricRef, MetricRefError
    from growthwatch.metrics.schema import MEASUREMENTS, Measurement, field_unit
    from growthwatch.metrics.settings import MetricsSettings
    from growthwatch.older_events import OlderEvents, register_older_events
    from growthwatch.points import Point, PointBatch
    from growthwatch.retry import RetriesExhausted, Retryable, RetryPolicy
    from growthwatch.stores.event_points import event_points
    from growthwatch.stores.influx import InfluxStore
    from growthwatch.stores.interfaces import (
        SeriesDeleter,
        SeriesReader,
        SeriesStoreLike,
        SeriesWriter,
        WriteResult,
    )
    from growthwatch.stores.ledger import AppendResult, Ledger
    from growthwatch.stores.lineprotocol import encode_batch
    from growthwatch.stores.series import SeriesStore


def __getattr__(name: str) -> Any:
    if name == "clock":  # a module, not a name inside one
        value = import_module("growthwatch.clock")
        globals()[name] = value
        return value
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'growthwatch' has no attribute {name!r}")
    value = getattr(import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__
