"""``growthwatch demo``'s last block: the detector over the demo portfolio, next to the
incidents the generator injected (found / missed / false alerts, delay)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from detectors.evaluate import backtest
from detectors.scoring import Label, Opened, Score, evaluate
from detectors.settings import DetectorSettings
from detectors.sinks.anomalies import anomaly_point
from growthwatch import Ledger, PointBatch, SeriesStore, incidents


def labels_of(spec: Any) -> list[Label]:
    return [Label(i.id, i.product, tuple(f"{m.measurement}.{m.field}" for m in i.metrics),
                  i.start, i.end) for i in incidents(spec)]  # fmt: skip


def run_detector(spec: Any, data_dir: Path, settings: DetectorSettings | None = None) -> Score:
    """Backtest the demo's whole range (after a 28-day warm-up), write its alerts to the
    ``anomalies`` measurement of the demo's series store, and score them."""
    # the demo's metrics keep the default reporting zone (UTC), the detector's default
    settings = settings or DetectorSettings.from_section({})
    ledger = Ledger(data_dir / "ledger.duckdb")
    store = SeriesStore(data_dir / "series.duckdb")
    try:
        products = ledger.products()
        since = pd.Timestamp(spec.start, tz="UTC").to_pydatetime() + pd.Timedelta(days=28)
        until = pd.Timestamp(spec.end, tz="UTC").to_pydatetime()
        transitions = backtest(ledger, store, settings, products, since=since, until=until)
        # What serve would have written: the report's anomaly page and the dashboards'
        # annotations show the demo's alerts.
        if transitions:
            store.write(PointBatch.from_points([anomaly_point(t) for t in transitions]))
    finally:
        store.close()
        ledger.close()
    opened = [Opened(t.alert.product, t.alert.metric, t.finding.time)
              for t in transitions if t.state == "open"]  # fmt: skip
    months = len(products) * (until - since).days / 30.44
    return evaluate(labels_of(spec), opened, months)


def summary_lines(score: Score) -> list[str]:
    lines = [f"detector vs injected incidents: {score.found}/{score.incidents} found, "
             f"{score.false_alerts} false alerts ({score.false_per_product_month:.2f} per "
             f"product-month)"]  # fmt: skip
    for match in score.matches:
        status = (f"found after {match.delay.total_seconds() / 3600:.1f} h"
                  if match.delay is not None else "missed")  # fmt: skip
        lines.append(f"  {match.label.id:<36} {match.label.start:%Y-%m-%d %H:%M}  {status}")
    return lines
