"""A real InfluxDB loaded by the demo pipeline (and the embedded series store of the same
run) for the dashboard query tests, plus fixture points of the detector's ``anomalies``
measurement in exactly the shape of contracts.md."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest

from growthwatch import InfluxStore, SeriesStore
from growthwatch.demo.pipeline import run_demo
from growthwatch.demo.spec import DemoSpec
from growthwatch.testing.servers import InfluxServer

SPEC = DemoSpec(products=3, months=14, events_per_day=3000)
T = int(datetime(2026, 9, 1, tzinfo=UTC).timestamp() * 1000)
H = 3_600_000


def anomaly_lines(p1: str, p2: str) -> list[str]:
    """Three incidents: p1 cancellations opened then escalated (open), p1 net revenue
    opened then resolved (closed), p2 signups opened (open). Expected open: p1 1, p2 1."""

    def line(product: str, metric: str, severity: str, t: int, state: str, open_: int,
             alert: str, started: int, obs: float) -> str:  # fmt: skip
        return (
            f"anomalies,method=seasonal_mad,metric={metric},product={product},segment=all,"
            f"severity={severity} alert_id=\"{alert}\",expected=8,explanation=\"{metric} "
            f"{obs:g} vs 8 expected (3-14)\",lower=3,observed={obs},open={open_}i,"
            f"score=0.9,started_ms={started}i,state=\"{state}\",upper=14 {t * 1_000_000}"
        )

    return [
        line(p1, "customers_daily.cancellations", "warning", T, "open", 1, "a1", T, 20),
        line(p1, "customers_daily.cancellations", "critical", T + H, "escalated", 1, "a1", T, 41),
        line(p1, "revenue_daily.net_rc", "warning", T + 2 * H, "open", 1, "a2", T + 2 * H, 1),
        line(p1, "revenue_daily.net_rc", "warning", T + 5 * H, "resolved", 0, "a2", T + 2 * H, 9),
        line(p2, "product_daily.signups", "critical", T + 3 * H, "open", 1, "a3", T + 3 * H, 90),
    ]


@dataclass
class Demo:
    influx: InfluxStore
    series: SeriesStore
    products: list[str]
    start: datetime
    end: datetime


@pytest.fixture(scope="session")
def demo(influx_server: InfluxServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Demo]:
    data_dir: Path = tmp_path_factory.mktemp("demo")
    influx = InfluxStore(influx_server.url, "dash_demo")
    run_demo(SPEC, data_dir, influx=influx, raw_events=False)
    products = [p["id"] for p in json.loads((data_dir / "products.json").read_text())]
    influx.write_lines(anomaly_lines(products[0], products[1]))
    series = SeriesStore(data_dir / "series.duckdb")
    start = datetime.combine(SPEC.start, datetime.min.time(), UTC)
    end = datetime.combine(SPEC.end, datetime.min.time(), UTC)
    yield Demo(influx, series, products, start, end)
    series.close()
