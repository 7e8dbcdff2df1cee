"""The ``anomalies`` measurement: one point per alert transition, to every store.

Shape fixed by the contract (dashboards and the report read it): tags product, metric,
segment, severity, method; fields observed, expected, lower, upper, score, open, state,
alert_id, explanation, started_ms.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from detectors.alerts import Transition
from growthwatch import Point, PointBatch, SeriesWriter

MEASUREMENT = "anomalies"


def anomaly_point(t: Transition) -> Point:
    f, a = t.finding, t.alert

    def num(x: float) -> float:
        return float(x) if math.isfinite(x) else 0.0

    return Point(
        MEASUREMENT,
        {"product": a.product, "metric": a.metric, "segment": a.segment,
         "severity": a.severity, "method": f.method},
        {"observed": num(f.observed), "expected": num(f.expected), "lower": num(f.lower),
         "upper": num(f.upper), "score": min(max(num(f.score), 0.0), 1.0),
         "open": 0 if t.state == "resolved" else 1, "state": t.state,
         "alert_id": a.alert_id, "explanation": f.explanation,
         "started_ms": int(a.started.timestamp() * 1000)},
        f.time,
    )  # fmt: skip


class AnomalySink:
    def __init__(self, stores: Sequence[SeriesWriter]) -> None:
        self.stores = list(stores)

    def emit(self, transition: Transition) -> None:
        batches = PointBatch.from_points([anomaly_point(transition)])
        for store in self.stores:
            store.write(batches)
