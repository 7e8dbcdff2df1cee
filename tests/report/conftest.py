"""Fixtures of the board report's tests: a small demo portfolio (3 products, 14 months) in
the embedded store and a real InfluxDB, with detector-shaped ``anomalies`` points."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from report_fixtures import MONTH, NOW, SPEC, Demo, anomaly_batch

from growthwatch import InfluxStore, SeriesStore
from growthwatch.demo.pipeline import run_demo
from growthwatch.testing.servers import InfluxServer
from reports.build import BuiltReport, build_report, product_names


@pytest.fixture(scope="session")
def demo(tmp_path_factory: pytest.TempPathFactory, influx_server: InfluxServer) -> Iterator[Demo]:
    data_dir = tmp_path_factory.mktemp("report-demo")
    influx = InfluxStore(influx_server.url, "report_demo", spool_dir=data_dir / "spool")
    run_demo(SPEC, data_dir, influx=influx, raw_events=False)
    series = SeriesStore(data_dir / "series.duckdb")
    for store in (series, influx):
        store.write([anomaly_batch()])
    yield Demo(data_dir, series, influx)
    series.close()


@pytest.fixture(scope="session")
def built(demo: Demo, tmp_path_factory: pytest.TempPathFactory) -> BuiltReport:
    out = tmp_path_factory.mktemp("report-out")
    return build_report(demo.series, MONTH, now=NOW, pdf=out / "report.pdf",
                        html=out / "report.html", names=product_names(demo.data_dir))  # fmt: skip
