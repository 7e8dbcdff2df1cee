"""Prometheus metrics of the core itself (today: the InfluxDB spool).

The core must not import the exporters, so its metrics live on their own
``CORE_REGISTRY``; ``exporters.telemetry.REGISTRY`` includes it, so ``growthwatch serve``
exposes both on one ``/metrics``.
"""

from __future__ import annotations

import time
import weakref
from collections.abc import Iterator
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

if TYPE_CHECKING:
    from growthwatch.stores.spool import Spool

CORE_REGISTRY = CollectorRegistry(auto_describe=True)
_SPOOLS: weakref.WeakSet[Spool] = weakref.WeakSet()


def track_spool(spool: Spool) -> None:
    _SPOOLS.add(spool)


class SpoolCollector(Collector):
    """Read at scrape time from the spool files themselves, so the figures are never stale
    and a crash between put and drain cannot leave a gauge wrong."""

    def __init__(self) -> None:
        self._now = time.time

    def collect(self) -> Iterator[Metric]:
        points = GaugeMetricFamily(
            "growthwatch_influx_spool_points",
            "Points waiting in the on-disk InfluxDB spool (InfluxDB did not answer).",
        )
        age = GaugeMetricFamily(
            "growthwatch_influx_spool_oldest_age_seconds",
            "Age of the oldest spooled batch (0 when the spool is empty).",
        )
        total, oldest = 0, 0.0
        now = self._now()
        for spool in list(_SPOOLS):
            total += spool.lines()
            first = spool.oldest_mtime()
            if first is not None:
                oldest = max(oldest, now - first)
        points.add_metric([], total)
        age.add_metric([], oldest)
        yield points
        yield age


class Include(Collector):
    """Another registry's metrics, for a registry that exposes both."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry

    def collect(self) -> Iterator[Metric]:
        yield from self.registry.collect()


CORE_REGISTRY.register(SpoolCollector())
