"""Where alert transitions go: one module per sink (anomalies series, Grafana, apprise).

A sink has ``emit(transition)``; a failing sink is logged by the caller and never stops
the others.
"""

from __future__ import annotations

from typing import Protocol

from detectors.alerts import Transition


class Sink(Protocol):
    def emit(self, transition: Transition) -> None: ...
