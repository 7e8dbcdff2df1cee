"""The fixture recorder's port of Grafana's InfluxQL response parser, checked on small
hand-written InfluxDB answers (the panel's parsers are tested on what it produces)."""

from __future__ import annotations

import importlib.util
import json
from datetime import UTC, datetime
from pathlib import Path
from types import ModuleType

import requests

from growthwatch.testing.servers import InfluxServer

ROOT = Path(__file__).resolve().parents[2]
PLUGIN = ROOT / "panel-plugin"


def _recorder() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "record_fixtures", PLUGIN / "scripts" / "record_fixtures.py"
    )
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


rec = _recorder()

SERIES = [
    {"name": "funnel_branches", "tags": {"step": "1:signup", "next": "(none)"},
     "columns": ["time", "users"], "values": [[1767225600000, 10555]]},
    {"name": "funnel_branches", "tags": {"step": "1:signup", "next": "payment"},
     "columns": ["time", "users"], "values": [[1767225600000, 0]]},
]  # fmt: skip


def test_expand_replaces_variables_then_time_filter() -> None:
    q = "SELECT x FROM m WHERE p = '$product' AND f = '$funnel' AND $timeFilter"
    out = rec.expand(
        q,
        {"product": "all", "funnel": "f1"},
        datetime(2026, 1, 1, tzinfo=UTC),
        datetime(2026, 1, 2, tzinfo=UTC),
    )
    assert out == (
        "SELECT x FROM m WHERE p = 'all' AND f = 'f1' "
        "AND time >= 1767225600000ms and time <= 1767312000000ms"
    )


def test_table_format_is_one_frame_time_tags_then_columns() -> None:
    (frame,) = rec.frames_table(SERIES, "B")
    fields = frame["schema"]["fields"]
    assert frame["schema"]["name"] == "funnel_branches"
    assert frame["schema"]["refId"] == "B"
    assert [(f["name"], f["type"]) for f in fields] == [
        ("Time", "time"), ("next", "string"), ("step", "string"), ("users", "number"),
    ]  # fmt: skip
    assert frame["data"]["values"] == [
        [1767225600000, 1767225600000],
        ["(none)", "payment"],
        ["1:signup", "1:signup"],
        [10555.0, 0.0],
    ]


def test_time_series_format_is_one_frame_per_series_and_column() -> None:
    frames = rec.frames_time_series(SERIES, "B")
    assert [f["schema"]["name"] for f in frames] == [
        "funnel_branches.users { next: (none), step: 1:signup }",
        "funnel_branches.users { next: payment, step: 1:signup }",
    ]
    value = frames[0]["schema"]["fields"][1]
    assert value["name"] == "Value"
    assert value["labels"] == {"step": "1:signup", "next": "(none)"}
    assert value["config"]["displayNameFromDS"] == frames[0]["schema"]["name"]
    assert frames[1]["data"]["values"] == [[1767225600000], [0.0]]


def test_null_values_stay_null_and_untyped_columns_are_numbers() -> None:
    series = [{"name": "cohort_retention", "tags": {"age": "0"},
               "columns": ["time", "rate", "mrr"], "values": [[0, 0.5, None], [1, None, None]]}]  # fmt: skip
    (frame,) = rec.frames_table(series, "A")
    fields = {f["name"]: f for f in frame["schema"]["fields"]}
    assert fields["mrr"]["type"] == "number"
    assert frame["data"]["values"][2] == [0.5, None]
    assert frame["data"]["values"][3] == [None, None]


def test_committed_fixtures_are_the_conversion_of_the_committed_responses() -> None:
    """The frames next to each recorded response are exactly what the converter makes of it
    (nobody edited one without the other)."""
    fixtures = PLUGIN / "src" / "__fixtures__"
    for vis in ("cohort-heatmap", "cohort-heatmap-revenue", "funnel", "waterfall"):
        raw = json.loads((fixtures / f"{vis}.influx.json").read_text())
        table: list[object] = []
        series: list[object] = []
        for ref_id, body in raw.items():
            rows = body["results"][0].get("series", [])
            assert rows, f"{vis} {ref_id}: the recorded query returned no series"
            table += rec.frames_table(rows, ref_id)
            series += rec.frames_time_series(rows, ref_id)
        assert json.loads((fixtures / f"{vis}.table.json").read_text()) == table
        assert json.loads((fixtures / f"{vis}.time_series.json").read_text()) == series


def test_queries_json_has_one_entry_per_visualisation_with_the_plugin_id() -> None:
    spec = json.loads((PLUGIN / "queries.json").read_text())
    plugin = json.loads((PLUGIN / "src" / "plugin.json").read_text())
    assert spec["pluginId"] == plugin["id"] == "growthwatch-growth-panel"
    assert set(spec["visualisations"]) == {"cohort-heatmap", "funnel", "waterfall"}
    for name, entry in spec["visualisations"].items():
        assert entry["options"]["visualisation"] == name
        for target in entry["targets"]:
            assert target["rawQuery"] is True
            assert target["format"] == target["resultFormat"] == "table"
            assert "$timeFilter" in target["query"] and "'$product'" in target["query"]


def test_the_dashboard_queries_run_on_a_real_influxdb(
    influx_server: InfluxServer, influx_db: str
) -> None:
    """Every query of queries.json, expanded as Grafana does, on points of the schema's
    shape: the answer has the columns and tags the panel's parsers read, sums add up."""
    url = influx_server.url
    requests.post(f"{url}/query", params={"q": f'CREATE DATABASE "{influx_db}"'}, timeout=10)
    jan, feb = 1767225600, 1769904000  # 2026-01-01, 2026-02-01 (s)
    lines = [
        f"cohort_retention,product=all,basis=logo,age=0 cohort_size=10i,retained=9i,rate=0.9 {jan}",
        f"cohort_retention,product=all,basis=logo,age=1 cohort_size=10i,retained=5i,rate=0.5 {jan}",
        f"cohort_retention,product=all,basis=revenue,age=0 cohort_size=4i,retained=4i,rate=1,mrr=40 {jan}",
        f"cohort_retention,product=other,basis=logo,age=0 cohort_size=7i,retained=7i,rate=1 {jan}",
        f"funnel_steps,product=all,funnel=f,step=1:signup users=100i,dropoff=60i {jan}",
        f"funnel_steps,product=all,funnel=f,step=1:signup users=50i,dropoff=30i {feb}",
        f"funnel_steps,product=all,funnel=f,step=2:activation users=40i,dropoff=0i {jan}",
        f"funnel_steps,product=all,funnel=f,step=2:activation users=20i,dropoff=0i {feb}",
        f"funnel_branches,product=all,funnel=f,step=1:signup,next=(none) users=60i {jan}",
        f"funnel_branches,product=all,funnel=f,step=1:signup,next=(none) users=30i {feb}",
        f"churn_monthly,product=all mrr_start=100,new=10,expansion=5,reactivation=1,"
        f"contraction=2,churn=4,fx_impact=0,mrr_end=110 {jan}",
    ]
    resp = requests.post(
        f"{url}/write",
        params={"db": influx_db, "precision": "s"},
        data="\n".join(lines),
        timeout=10,
    )
    assert resp.status_code == 204, resp.text
    spec = json.loads((PLUGIN / "queries.json").read_text())
    start, end = datetime(2026, 1, 1, tzinfo=UTC), datetime(2026, 3, 1, tzinfo=UTC)
    got: dict[str, list[dict[str, object]]] = {}
    for vis, entry in spec["visualisations"].items():
        for target in entry["targets"]:
            q = rec.expand(target["query"], {"product": "all", "funnel": "f"}, start, end)
            body = requests.get(
                f"{url}/query", params={"db": influx_db, "q": q, "epoch": "ms"}, timeout=10
            ).json()
            assert "error" not in body["results"][0], (vis, q, body)
            (frame,) = rec.frames_table(body["results"][0]["series"], target["refId"])
            names = [f["name"] for f in frame["schema"]["fields"]]
            cols = dict(zip(names, frame["data"]["values"], strict=True))
            got[f"{vis}/{target['refId']}"] = [
                dict(zip(cols, row, strict=True)) for row in zip(*cols.values(), strict=True)
            ]
    heat = got["cohort-heatmap/A"]
    assert {(r["age"], r["rate"], r["cohort_size"]) for r in heat} == {
        ("0", 0.9, 10.0),
        ("1", 0.5, 10.0),
    }
    steps = {r["step"]: r["users"] for r in got["funnel/A"]}
    assert steps == {"1:signup": 150.0, "2:activation": 60.0}
    assert [(r["step"], r["next"], r["users"]) for r in got["funnel/B"]] == [
        ("1:signup", "(none)", 90.0)
    ]
    (month,) = got["waterfall/A"]
    assert (
        month["mrr_start"]
        + month["new"]
        + month["expansion"]
        + month["reactivation"]
        - month["contraction"]
        - month["churn"]
        + month["fx_impact"]
        == month["mrr_end"]
    )
