"""Record the panel's test fixtures from a real InfluxDB fed by the demo pipeline.

Why: the panel's parsers must read exactly what Grafana hands a panel for the dashboards'
InfluxQL, not a shape someone imagined. This script starts a private ``influxd``, runs
``growthwatch demo`` into it, runs every query of ``panel-plugin/queries.json`` with
Grafana's macro expansion (template variables, then ``$timeFilter``), and saves

* ``<visualisation>.influx.json``: the raw InfluxDB ``/query`` responses (``epoch=ms``, as
  Grafana's InfluxDB datasource asks for), keyed by refId;
* ``<visualisation>.table.json`` and ``<visualisation>.time_series.json``: the data frames
  (Grafana's wire format, ``{schema, data}``) that Grafana's InfluxQL response parser
  (pkg/tsdb/influxdb/influxql/buffered/response_parser.go) makes of them for
  ``resultFormat`` table and time series;
* ``meta.json``: time range, variables and the expanded queries.

Besides the entries of ``queries.json`` it records ``cohort-heatmap-revenue``: the heatmap
query with ``"basis" = 'revenue'`` (revenue retention, the same shape with MRR).

Run from the repository root: ``.venv/bin/python panel-plugin/scripts/record_fixtures.py``.
It is deterministic (fixed seed and end date), so re-recording changes nothing.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import requests

from growthwatch.testing.servers import InfluxServer

PLUGIN = Path(__file__).resolve().parents[1]
ROOT = PLUGIN.parent
FIXTURES = PLUGIN / "src" / "__fixtures__"
DB = "growthwatch"
# Mid-month end: the last calendar month is still open, so the heatmap has maturing cells
# and the waterfall's last month is month-to-date, as on a live dashboard.
END = "2026-06-16"
RANGE_FROM = datetime(2026, 1, 1, tzinfo=UTC)
RANGE_TO = datetime(2026, 6, 16, tzinfo=UTC)
VARIABLES = {"product": "all", "funnel": "signup-to-activation"}

Json = dict[str, Any]


def expand(query: str, variables: dict[str, str], start: datetime, end: datetime) -> str:
    """Grafana's order: template variables first, then ``$timeFilter`` in epoch ms."""
    for name, value in sorted(variables.items(), key=lambda kv: -len(kv[0])):
        query = query.replace(f"${name}", value)
    start_ms, end_ms = int(start.timestamp() * 1000), int(end.timestamp() * 1000)
    return query.replace("$timeFilter", f"time >= {start_ms}ms and time <= {end_ms}ms")


def _type_of(values: list[list[Any]], col: int) -> str:
    """The first non-null value's JSON type decides the field type (Grafana's Typeof)."""
    for row in values:
        value = row[col]
        if value is None:
            continue
        if isinstance(value, bool):
            return "boolean"
        if isinstance(value, str):
            return "string"
        return "number"
    return "number"


def _field(name: str, kind: str, labels: dict[str, str] | None, config: Json | None) -> Json:
    frame_type = {"time": "time.Time", "number": "float64", "string": "string",
                  "boolean": "bool"}[kind]  # fmt: skip
    field: Json = {"name": name, "type": kind, "typeInfo": {"frame": frame_type}}
    if kind != "time":
        field["typeInfo"]["nullable"] = True
    if labels:
        field["labels"] = dict(labels)
    if config:
        field["config"] = config
    return field


def _number(value: Any) -> float | None:
    return None if value is None else float(value)


def frames_table(series: list[Json], ref_id: str) -> list[Json]:
    """``resultFormat: table``: one frame, Time, one string field per tag, value columns."""
    if not series:
        return []
    columns: list[str] = series[0]["columns"]
    tags = sorted(series[0].get("tags", {}))  # Go iterates the tag map; sorted is one order
    fields: list[Json] = [_field("Time", "time", None, None)]
    values: list[list[Any]] = [[row[0] for s in series for row in s["values"]]]
    for tag in tags:
        fields.append(_field(tag, "string", None, {"displayNameFromDS": tag}))
        values.append([s.get("tags", {}).get(tag) for s in series for _ in s["values"]])
    for col in range(1, len(columns)):
        rows = [row for s in series for row in s["values"]]
        kind = _type_of(rows, col)
        fields.append(_field(columns[col], kind, None, {"displayNameFromDS": columns[col]}))
        values.append([_number(r[col]) if kind == "number" else r[col] for r in rows])
    return [{"schema": {"name": series[0]["name"], "refId": ref_id, "fields": fields},
             "data": {"values": values}}]  # fmt: skip


def _series_name(measurement: str, column: str, tags: dict[str, str]) -> str:
    """Grafana's BuildFrameNameFromQuery without an alias: ``m.col { k: v, k2: v2 }``."""
    name = f"{measurement}.{column}"
    if tags:
        name += " { " + ", ".join(f"{k}: {v}" for k, v in sorted(tags.items())) + " }"
    return name


def frames_time_series(series: list[Json], ref_id: str) -> list[Json]:
    """``resultFormat: time_series``: one frame per (series, column): Time and ``Value``
    with the series' tags as labels and ``m.col {tags}`` as frame and display name."""
    frames: list[Json] = []
    for s in series:
        tags: dict[str, str] = s.get("tags", {})
        for col, column in enumerate(s["columns"]):
            if column == "time":
                continue
            kind = _type_of(s["values"], col)
            name = _series_name(s["name"], column, tags)
            fields = [_field("Time", "time", None, None),
                      _field("Value", kind, tags, {"displayNameFromDS": name})]  # fmt: skip
            values = [
                [row[0] for row in s["values"]],
                [_number(r[col]) if kind == "number" else r[col] for r in s["values"]],
            ]
            frames.append({"schema": {"name": name, "refId": ref_id, "fields": fields},
                           "data": {"values": values}})  # fmt: skip
    return frames


def run_query(url: str, query: str) -> Json:
    resp = requests.get(f"{url}/query", params={"db": DB, "q": query, "epoch": "ms"}, timeout=60)
    resp.raise_for_status()
    body: Json = resp.json()
    if "error" in body["results"][0]:
        raise RuntimeError(f"{query}: {body['results'][0]['error']}")
    return body


def write_json(path: Path, payload: Any) -> None:
    path.write_text(json.dumps(payload, indent=1, sort_keys=False) + "\n")


def record(influx_url: str, out: Path) -> None:
    spec: Json = json.loads((PLUGIN / "queries.json").read_text())
    out.mkdir(parents=True, exist_ok=True)
    meta: Json = {"from": RANGE_FROM.isoformat(), "to": RANGE_TO.isoformat(),
                  "variables": VARIABLES, "demo_end": END, "queries": {}}  # fmt: skip
    visualisations: dict[str, Json] = dict(spec["visualisations"])
    # revenue retention: the heatmap's query with the other basis (same shape, MRR filled)
    heatmap = visualisations["cohort-heatmap"]
    visualisations["cohort-heatmap-revenue"] = {
        "targets": [
            {**t, "query": t["query"].replace("\"basis\" = 'logo'", "\"basis\" = 'revenue'")}
            for t in heatmap["targets"]
        ]
    }
    for vis, entry in visualisations.items():
        raw: Json = {}
        table: list[Json] = []
        time_series: list[Json] = []
        for target in entry["targets"]:
            query = expand(target["query"], VARIABLES, RANGE_FROM, RANGE_TO)
            meta["queries"][f"{vis}/{target['refId']}"] = query
            body = run_query(influx_url, query)
            raw[target["refId"]] = body
            series = body["results"][0].get("series", [])
            table += frames_table(series, target["refId"])
            time_series += frames_time_series(series, target["refId"])
            print(f"{vis} {target['refId']}: {len(series)} series, "
                  f"{sum(len(s['values']) for s in series)} rows")  # fmt: skip
        write_json(out / f"{vis}.influx.json", raw)
        write_json(out / f"{vis}.table.json", table)
        write_json(out / f"{vis}.time_series.json", time_series)
    write_json(out / "meta.json", meta)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=FIXTURES, help="fixture folder")
    args = parser.parse_args()
    server = InfluxServer().start()
    try:
        with tempfile.TemporaryDirectory(prefix="gw-panel-demo-") as data_dir:
            subprocess.run(
                [str(ROOT / ".venv" / "bin" / "growthwatch"), "demo", "--products", "3",
                 "--months", "6", "--events-per-day", "3000", "--end", END,
                 "--data-dir", data_dir, "--influx-url", server.url, "--no-raw-events"],
                check=True, stdout=subprocess.DEVNULL,
            )  # fmt: skip
            record(server.url, args.out)
    finally:
        server.cleanup()
    return 0


if __name__ == "__main__":
    sys.exit(main())
