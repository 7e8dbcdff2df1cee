"""The Pipeline health board and pipeline alert rules read metrics that exist: the
exporters' (exporters.telemetry), the core's spool gauges, and the detector's of
contracts.md; the spool gauges report what the spool really holds."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from dashboards.build import ALERTING_DIR, dashboards
from dashboards.live import STREAM
from exporters import telemetry
from growthwatch import MEASUREMENTS, InfluxStore
from growthwatch.cli import main
from growthwatch.stores.spool import Spool

DETECTOR_CONTRACT = {  # contracts.md; registered by the detector branch
    "growthwatch_detector_evaluations_total", "growthwatch_detector_alerts_open",
    "growthwatch_detector_notifications_total",
    "growthwatch_detector_last_evaluation_timestamp_seconds",
    "growthwatch_detector_evaluation_duration_seconds_bucket",
}  # fmt: skip


def exposed() -> set[str]:
    text = telemetry.render()[0].decode()
    names = set()
    for family in text_string_to_metric_families(text):
        names.add(family.name)
        names |= {s.name for s in family.samples}
    for family in telemetry.REGISTRY.collect():  # counters/histograms without samples yet
        names.add(family.name)
        suffixes = {"counter": ("_total",), "histogram": ("_bucket", "_sum", "_count")}
        names |= {family.name + s for s in suffixes.get(family.type, ())}
    return names


def used_metric_names() -> set[str]:
    exprs = []
    for _, model in dashboards():
        for panel in model["panels"]:
            exprs += [t["expr"] for t in panel.get("targets", []) if "expr" in t]
    rules = yaml.safe_load((ALERTING_DIR / "rules.yaml").read_text())
    for group in rules["groups"]:
        for rule in group["rules"]:
            exprs += [d["model"]["expr"] for d in rule["data"] if "expr" in d["model"]]
    return {n for e in exprs for n in re.findall(r"growthwatch_\w+", e)}


def test_every_prometheus_metric_used_is_exported() -> None:
    used = used_metric_names()
    assert {"growthwatch_cursor_lag_seconds", "growthwatch_influx_spool_points",
            "growthwatch_detector_alerts_open"} <= used  # fmt: skip
    missing = used - exposed() - DETECTOR_CONTRACT
    assert not missing, sorted(missing)


def scrape() -> dict[str, float]:
    text = telemetry.render()[0].decode()
    return {s.name: s.value for f in text_string_to_metric_families(text) for s in f.samples
            if s.name.startswith("growthwatch_influx_spool")}  # fmt: skip


def test_spool_gauges_follow_the_spool(tmp_path: Path) -> None:
    base = scrape()["growthwatch_influx_spool_points"]  # other tests' spools may be alive
    spool = Spool(tmp_path / "spool")
    spool.put(b"a", 120)
    spool.put(b"b", 30)
    first = spool._files()[0]
    import os
    import time

    os.utime(first, (time.time() - 600, time.time() - 600))
    got = scrape()
    assert got["growthwatch_influx_spool_points"] == base + 150
    assert got["growthwatch_influx_spool_oldest_age_seconds"] >= 600
    spool.drain(lambda body: None)
    assert scrape()["growthwatch_influx_spool_points"] == base


def test_influx_store_spool_is_counted_when_influx_is_down(tmp_path: Path) -> None:
    store = InfluxStore("http://127.0.0.1:9", "x", spool_dir=tmp_path / "s", max_retries=0)
    before = scrape()["growthwatch_influx_spool_points"]
    store.write_lines(["m v=1i 1", "m v=2i 2"])
    assert scrape()["growthwatch_influx_spool_points"] == before + 2


def test_live_panel_reads_the_stream_the_pusher_writes() -> None:
    model = dict(dashboards())["product-detail.json"]
    live = [t for p in model["panels"] for t in p.get("targets", [])
            if t.get("queryType") == "measurements"]  # fmt: skip
    assert live, "Product detail has a Grafana Live panel"
    for target in live:
        prefix, stream, measurement = target["channel"].split("/")
        assert (prefix, stream) == ("stream", STREAM)
        assert measurement in {m.name for m in MEASUREMENTS}


def test_cli_build_check(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["dashboards", "build", "--check"]) == 0
    assert "match the code" in capsys.readouterr().out
