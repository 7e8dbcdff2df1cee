"""Grafana's expansion of an InfluxQL query before it reaches InfluxDB, reproduced.

Grafana cannot run on our machines, so the tests and the benchmark send every panel's,
variable's, annotation's and alert rule's query to a real InfluxDB the way Grafana would:
template variables first (a multi-value or All variable in a regex becomes ``(a|b)`` or
its ``allValue``), then ``$timeFilter`` -> ``time >= <from>ms and time <= <to>ms``,
``$__interval`` / ``$interval`` -> e.g. ``1h`` and ``$__interval_ms`` -> milliseconds
(as the InfluxDB datasource's ``applyTemplateVariables`` and ``getTimeFilter`` do).
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping, Sequence
from datetime import datetime
from typing import Any

Value = str | Sequence[str]
_VAR = re.compile(r"\$\{(\w+)(?::\w+)?\}|\$(\w+)")


def _ms(when: datetime) -> int:
    return int(when.timestamp() * 1000)


def interval_text(ms: int) -> str:
    """Grafana's rendering of an interval (``kbn.secondsToHms``-like): 1w, 1d, 6h, 5m, 30s."""
    for unit, size in (("w", 604_800_000), ("d", 86_400_000), ("h", 3_600_000), ("m", 60_000),
                       ("s", 1000)):  # fmt: skip
        if ms >= size and ms % size == 0:
            return f"{ms // size}{unit}"
    return f"{ms}ms"


_ROUND = (
    (15, 10), (35, 20), (75, 50), (150, 100), (350, 200), (750, 500), (1500, 1000),
    (3500, 2000), (7500, 5000), (12500, 10000), (17500, 15000), (25000, 20000),
    (45000, 30000), (90000, 60000), (210000, 120000), (450000, 300000), (750000, 600000),
    (1050000, 900000), (1500000, 1200000), (2700000, 1800000), (5400000, 3600000),
    (9000000, 7200000), (16200000, 10800000), (32400000, 21600000), (86400000, 43200000),
    (604800000, 86400000), (1814400000, 604800000), (3628800000, 2592000000),
)


def auto_interval_ms(start: datetime, end: datetime, *, max_data_points: int = 1000,
                     min_interval: str | None = None) -> int:  # fmt: skip
    """Grafana's ``$__interval``: the range over the panel's max data points, rounded as
    ``rangeutil.roundInterval`` does, and never below the panel's min interval."""
    raw = (_ms(end) - _ms(start)) / max(max_data_points, 1)
    ms = next((r for limit, r in _ROUND if raw <= limit), 31536000000) if raw > 10 else 1
    if min_interval:
        unit = {"ms": 1, "s": 1000, "m": 60_000, "h": 3_600_000, "d": 86_400_000, "w": 604_800_000}
        m = re.fullmatch(r"(\d+)(ms|s|m|h|d|w)", min_interval)
        if m is None:
            raise ValueError(f"min interval {min_interval!r} is not like 1d or 10s")
        ms = max(ms, int(m[1]) * unit[m[2]])
    return ms


def _format(value: Value, in_regex: bool) -> str:
    if isinstance(value, str):
        return value
    values = list(value)
    if len(values) == 1:
        return re.escape(values[0]) if in_regex else values[0]
    return "(" + "|".join(re.escape(v) for v in values) + ")"


def expand(query: str, *, variables: Mapping[str, Value], start: datetime, end: datetime,
           interval_ms: int) -> str:  # fmt: skip
    """``query`` as Grafana sends it for the given variables, time range and interval."""
    builtins: dict[str, str] = {
        "timeFilter": f"time >= {_ms(start)}ms and time <= {_ms(end)}ms",
        "__interval_ms": str(interval_ms),
        "__interval": interval_text(interval_ms),
        "interval": interval_text(interval_ms),
    }

    def replace(match: re.Match[str]) -> str:
        name = match.group(1) or match.group(2)
        if name in variables:
            before = query[: match.start()]
            in_regex = before.count("/") % 2 == 1  # inside /.../
            return _format(variables[name], in_regex)
        if name in builtins:
            return builtins[name]
        raise KeyError(f"query uses ${name}, which neither Grafana nor the dashboard defines")

    return _VAR.sub(replace, query)


# -- finding every query of a dashboard ------------------------------------------------------


def panel_queries(model: Mapping[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    """(where, InfluxQL target) for every InfluxDB target of every panel (rows included)."""
    for where, target, _ in panel_targets(model):
        yield where, target


def panel_targets(model: Mapping[str, Any]) -> Iterator[tuple[str, dict[str, Any], Mapping[str, Any]]]:
    """(where, InfluxQL target, its panel): the panel says ``interval``/``maxDataPoints``."""
    def walk(panels: Sequence[Mapping[str, Any]]) -> Iterator[tuple[str, dict[str, Any], Mapping[str, Any]]]:
        for panel in panels:
            yield from walk(panel.get("panels", []))
            for target in panel.get("targets", []) or []:
                if (target.get("datasource") or {}).get("type") == "influxdb":
                    yield f"panel {panel.get('title')!r} {target['refId']}", target, panel

    yield from walk(model.get("panels", []))


def variable_queries(model: Mapping[str, Any]) -> Iterator[tuple[str, str]]:
    for var in model.get("templating", {}).get("list", []):
        if var.get("type") == "query" and (var.get("datasource") or {}).get("type") == "influxdb":
            yield f"variable ${var['name']}", str(var["query"])


def annotation_queries(model: Mapping[str, Any]) -> Iterator[tuple[str, str]]:
    for ann in model.get("annotations", {}).get("list", []):
        if (ann.get("datasource") or {}).get("type") == "influxdb":
            yield f"annotation {ann['name']!r}", str(ann["target"]["query"])


def rule_queries(rules_file: Mapping[str, Any]) -> Iterator[tuple[str, str, int]]:
    """(where, InfluxQL, relative seconds) of every InfluxDB query of the alert rules."""
    for group in rules_file.get("groups", []):
        for rule in group.get("rules", []):
            for data in rule.get("data", []):
                if data.get("datasourceUid") == "growthwatch-influxdb":
                    where = f"rule {rule['title']!r} {data['refId']}"
                    yield where, str(data["model"]["query"]), int(data["relativeTimeRange"]["from"])
