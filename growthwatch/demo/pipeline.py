"""The demo pipeline: generate -> ledger -> daily series -> embedded store (+ InfluxDB).

Every stage is idempotent, so running the demo twice with the same seed leaves every store
exactly as it was: the ledger reports the events as duplicates, series points and InfluxDB
points are overwritten with the same values. The raw event points are written while the
ledger fills (``growthwatch.ingest``), one per event of this run, new or already there.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path

import pandas as pd

from growthwatch.demo.generator import DemoSpec, catalog, generate, write_ground_truth
from growthwatch.demo.subscriptions import OPENING_LEAD_S
from growthwatch.ingest import ingest
from growthwatch.metrics.engine import STATE_FILE, MetricsEngine, metric_batches
from growthwatch.metrics.fx import FxTable
from growthwatch.metrics.settings import Funnel, MetricsSettings
from growthwatch.points import PointBatch
from growthwatch.stores.influx import InfluxStore
from growthwatch.stores.interfaces import WriteResult
from growthwatch.stores.ledger import Ledger
from growthwatch.stores.series import SeriesStore

Progress = Callable[[str, int], None]  # (stage, events just processed)
# The demo catalog prices in EUR/GBP/JPY at fixed rates (0.9, 0.8, 150 per USD); the
# metrics report the portfolio in USD at the inverse rates.
DEMO_METRICS = MetricsSettings(
    fx=FxTable.constant(
        "USD", {"EUR": Decimal("1.111111"), "GBP": Decimal("1.25"), "JPY": Decimal("0.006667")}
    ),
    # The generator's visitors, users and customers have unrelated ids, so only steps of
    # one id space can be followed per user.
    funnels=(Funnel("signup-to-activation", ("signup", "activation")),),
)


@dataclass
class DemoResult:
    data_dir: Path
    ledger_path: Path
    ground_truth: Path
    generated: int = 0
    inserted: int = 0
    duplicates: int = 0
    rejected: int = 0
    series_points: int = 0
    influx: WriteResult = field(default_factory=WriteResult)
    seconds: float = 0.0
    summary: pd.DataFrame = field(default_factory=pd.DataFrame)


def run_demo(
    spec: DemoSpec,
    data_dir: Path,
    *,
    influx: InfluxStore | None = None,
    raw_events: bool = True,
    progress: Progress | None = None,
) -> DemoResult:
    started = time.perf_counter()
    data_dir.mkdir(parents=True, exist_ok=True)
    ledger_path = data_dir / "ledger.duckdb"
    result = DemoResult(
        data_dir, ledger_path, write_ground_truth(spec, data_dir / "incidents.json")
    )
    (data_dir / "products.json").write_text(
        json.dumps([p.to_dict() for p in catalog(spec)], indent=2) + "\n"
    )
    if influx is not None:
        influx.ensure_database()
    ledger = Ledger(ledger_path)
    try:
        # The ledger append and the raw points overlap (growthwatch.ingest): each stored
        # event, new or already there, becomes one point as its piece leaves the ledger.
        ingested = ingest(generate(spec), ledger, influx if raw_events else None,
                          progress=progress)  # fmt: skip
        result.generated = ingested.received
        result.inserted = ingested.inserted
        result.duplicates = ingested.duplicates
        result.rejected = ingested.rejected
        result.influx += ingested.influx
        # from the opening base on (dated OPENING_LEAD_S before the range)
        begin = pd.Timestamp(spec.start, tz="UTC") - pd.Timedelta(seconds=OPENING_LEAD_S)
        events = ledger.read(start=begin.to_pydatetime(), with_seq=True)
        batches = metric_batches(events, DEMO_METRICS)
        series = SeriesStore(ledger_path.with_name("series.duckdb"))
        try:
            result.series_points = series.write(batches).points
        finally:
            series.close()
        if influx is not None:
            result.influx += influx.write(batches)
        result.summary = product_summary(events, batches)
        # Leave the folder ready for `metrics update` and `serve`: the series above are a
        # full computation of this ledger.
        MetricsEngine(ledger, DEMO_METRICS, state_path=data_dir / STATE_FILE).mark_computed()
    finally:
        ledger.close()
    result.seconds = time.perf_counter() - started
    return result


def product_summary(events: pd.DataFrame, batches: list[PointBatch]) -> pd.DataFrame:
    """One row per product: events, net revenue, signups, cancellations, active customers."""
    by_name = {b.measurement: b.frame[b.frame["product"] != "all"] for b in batches}
    revenue = by_name["revenue_daily"].groupby(["product", "currency"], as_index=False)["net"].sum()
    revenue = revenue.groupby("product").agg(
        currency=("currency", "first"), net_revenue=("net", "sum")
    )
    counts = events.groupby("product").size().rename("events")
    signups = by_name["product_daily"].groupby("product")["signups"].sum().rename("signups")
    cancels = (
        by_name["customers_daily"].groupby("product")["cancellations"].sum().rename("cancellations")
    )
    customers = by_name["customers_daily"].sort_values("time").groupby("product")["active"].last()
    summary = pd.concat(
        [counts, revenue, signups, cancels, customers.rename("active_customers")], axis=1
    )
    summary.index.name = "product"
    return summary.fillna({"signups": 0, "cancellations": 0, "active_customers": 0}).reset_index()
