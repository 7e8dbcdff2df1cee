"""Custom KPIs: one point per ``kpi`` event, as the source gave it."""

from __future__ import annotations

import pandas as pd

from growthwatch.events import EventType
from growthwatch.metrics import kpis
from growthwatch.metrics.families.base import Family, Frames, LedgerView, Scope
from growthwatch.metrics.settings import MetricsSettings


class Kpis(Family):
    name = "kpis"
    columns = ("idempotency_key", "product", "type", "ts", "value", "metadata")
    measurements = ("kpi",)

    def types(self, settings: MetricsSettings) -> tuple[str, ...]:
        return (EventType.KPI.value,)

    def compute(self, events: pd.DataFrame, scope: Scope) -> Frames:
        return {"kpi": kpis.kpi_series(events)}

    def touch_start(self, earliest: pd.Timestamp, view: LedgerView) -> pd.Timestamp | None:
        return earliest  # a point per event: nothing before it changes
