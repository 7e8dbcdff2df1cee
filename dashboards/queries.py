"""Panel queries: InfluxQL built from the metrics schema, and Prometheus expressions.

``grafana-foundation-sdk`` has no InfluxDB query builder, so ``InfluxQuery`` is a small
``Dataquery`` variant of our own that serialises exactly what Grafana's InfluxDB datasource
stores for a raw InfluxQL query (``query``, ``rawQuery``, ``resultFormat``, ``alias``).

Every field a query names is checked against ``growthwatch.MEASUREMENTS`` (through
``MetricRef``) when the dashboard is built, so a renamed field breaks ``dashboards build``
instead of leaving an empty panel in Grafana. The ``anomalies`` measurement belongs to the
detector (see ``ANOMALY_FIELDS``): its names are the contract's, checked here until the
detector adds it to the schema.

Partial periods and maturing cohorts: when a measurement of the schema carries one of the
``MARKER_FIELDS`` (``partial`` on ``churn_monthly``/``churn_yearly``, ``maturing`` on the
activation cohorts), ``marker_field`` finds it and the panel helpers add a marked series
for those points. Adding the field to the schema is the one line needed; nothing here
changes.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from grafana_foundation_sdk.builders import prometheus
from grafana_foundation_sdk.cog import builder as cogbuilder
from grafana_foundation_sdk.cog import variants as cogvariants
from grafana_foundation_sdk.models import common

from growthwatch import MEASUREMENTS, MetricRef

INFLUX = common.DataSourceRef(type_val="influxdb", uid="growthwatch-influxdb")
PROMETHEUS = common.DataSourceRef(type_val="prometheus", uid="growthwatch-prometheus")
BIGQUERY = common.DataSourceRef(type_val="grafana-bigquery-datasource", uid="growthwatch-bigquery")

# The detector's measurement (contracts.md): tags and fields by name.
ANOMALIES = "anomalies"
ANOMALY_TAGS = ("product", "metric", "segment", "severity", "method")
ANOMALY_FIELDS = ("observed", "expected", "lower", "upper", "score", "open", "state",
                  "alert_id", "explanation", "started_ms")  # fmt: skip

MARKER_FIELDS = ("partial", "maturing")


class InfluxQLError(ValueError):
    """A query names a measurement or field the metrics schema does not have."""


def _spec_fields(measurement: str) -> tuple[str, ...]:
    if measurement == ANOMALIES:
        return ANOMALY_FIELDS
    for m in MEASUREMENTS:
        if m.name == measurement:
            return m.fields
    raise InfluxQLError(f"measurement {measurement!r} is not in growthwatch's metrics schema")


def _spec_tags(measurement: str) -> tuple[str, ...]:
    if measurement == ANOMALIES:
        return ANOMALY_TAGS
    for m in MEASUREMENTS:
        if m.name == measurement:
            return m.tags
    raise InfluxQLError(f"measurement {measurement!r} is not in growthwatch's metrics schema")


def check_field(measurement: str, field: str) -> str:
    """``field`` if ``measurement`` has it (via ``MetricRef`` for schema measurements)."""
    if measurement == ANOMALIES:
        if field not in ANOMALY_FIELDS:
            raise InfluxQLError(f"anomalies has no field {field!r} (contract: {ANOMALY_FIELDS})")
        return field
    try:
        MetricRef.parse(f"{measurement}.{field}")
    except ValueError as exc:
        raise InfluxQLError(str(exc)) from exc
    return field


def check_tag(measurement: str, tag: str) -> str:
    if tag not in _spec_tags(measurement):
        raise InfluxQLError(f"{measurement} has no tag {tag!r} (tags: {_spec_tags(measurement)})")
    return tag


def marker_field(measurement: str) -> str | None:
    """The partial/maturing flag of ``measurement`` if the schema has one, else None."""
    fields = _spec_fields(measurement)
    return next((f for f in MARKER_FIELDS if f in fields), None)


def marker_set(marker: str) -> str:
    """The InfluxQL condition "this point is partial / still maturing": the engine writes
    the flags as integer fields (1 marked, 0 not), InfluxQL compares them as numbers."""
    return f'"{marker}" = 1'


@dataclass(frozen=True)
class Col:
    """One selected column: ``fn("field") AS "alias"`` (fn may be empty for raw values)."""

    field: str
    fn: str = ""
    alias: str = ""
    scale: float | None = None  # e.g. -1 for outflows in a waterfall, 100 for percent

    def render(self, measurement: str) -> str:
        check_field(measurement, self.field)
        expr = f'"{self.field}"' if not self.fn else f'{self.fn}("{self.field}")'
        if self.scale is not None:
            expr = f"{expr} * {self.scale:g}"
        alias = self.alias or (self.field if self.fn or self.scale is not None else "")
        return f'{expr} AS "{alias}"' if alias else expr


@dataclass(frozen=True)
class Expr:
    """A computed column (math over aggregates) whose ``fields`` are checked like a Col's,
    e.g. ``Expr('(last("mrr") - first("mrr")) / first("mrr")', ("mrr",), "mrr_change")``."""

    text: str
    fields: tuple[str, ...]
    alias: str

    def render(self, measurement: str) -> str:
        for f in self.fields:
            check_field(measurement, f)
        return f'{self.text} AS "{self.alias}"'


def select(
    measurement: str,
    columns: Sequence[Col | Expr | str],
    *,
    where: Iterable[str] = (),
    group_time: str | None = None,
    group_tags: Sequence[str] = (),
    fill: str | None = None,
    tail: str = "",
) -> str:
    """InfluxQL ``SELECT`` over a schema measurement with Grafana's ``$timeFilter``.

    ``where`` items are InfluxQL conditions (tags checked by the callers' helpers below).
    """
    cols = [Col(c) if isinstance(c, str) else c for c in columns]
    for tag in group_tags:
        check_tag(measurement, tag)
    q = f'SELECT {", ".join(c.render(measurement) for c in cols)} FROM "{measurement}"'
    q += " WHERE " + " AND ".join([*where, "$timeFilter"])
    groups = ([f"time({group_time})"] if group_time else []) + [f'"{t}"' for t in group_tags]
    if groups:
        q += " GROUP BY " + ", ".join(groups)
    if fill:
        q += f" fill({fill})"
    if tail:
        q += " " + tail
    return q


def tag_is(measurement: str, tag: str, value: str) -> str:
    """``"tag" = 'value'`` (value may be a Grafana variable such as ``$product``)."""
    return f"\"{check_tag(measurement, tag)}\" = '{value}'"


def tag_matches(measurement: str, tag: str, variable: str) -> str:
    """``"tag" =~ /^$var$/``: a multi-value or All variable (allValue ``.*``)."""
    return f'"{check_tag(measurement, tag)}" =~ /^${variable}$/'


def tag_not(measurement: str, tag: str, value: str) -> str:
    return f"\"{check_tag(measurement, tag)}\" != '{value}'"


def show_tag_values(measurement: str, tag: str, where: str = "") -> str:
    """A variable's query: the values of ``tag`` in ``measurement``."""
    q = f'SHOW TAG VALUES FROM "{measurement}" WITH KEY = "{check_tag(measurement, tag)}"'
    return q + (f" WHERE {where}" if where else "")


class InfluxQuery(cogvariants.Dataquery):
    """A raw InfluxQL target as Grafana's InfluxDB datasource saves it."""

    def __init__(self, query: str, *, ref_id: str = "A", result_format: str = "time_series",
                 alias: str = "", hide: bool = False) -> None:  # fmt: skip
        self.query = query
        self.ref_id = ref_id
        self.result_format = result_format
        self.alias = alias
        self.hide = hide

    def to_json(self) -> dict[str, object]:
        out: dict[str, object] = {
            "refId": self.ref_id,
            "datasource": INFLUX.to_json(),
            "query": self.query,
            "rawQuery": True,
            "resultFormat": self.result_format,
        }
        if self.alias:
            out["alias"] = self.alias
        if self.hide:
            out["hide"] = True
        return out


class Influx(cogbuilder.Builder[InfluxQuery]):
    """Builder form, so an ``InfluxQuery`` goes wherever the SDK takes a target."""

    def __init__(self, query: str, *, ref_id: str = "A", table: bool = False,
                 alias: str = "") -> None:  # fmt: skip
        self._internal = InfluxQuery(
            query, ref_id=ref_id, result_format="table" if table else "time_series", alias=alias
        )

    def build(self) -> InfluxQuery:
        return self._internal


def prom(expr: str, *, ref_id: str = "A", legend: str = "") -> prometheus.Dataquery:
    """A Prometheus target on the provisioned Prometheus datasource."""
    q = prometheus.Dataquery().expr(expr).ref_id(ref_id).datasource(PROMETHEUS).range()
    if legend:
        q = q.legend_format(legend)
    return q


GRAFANA_DS = common.DataSourceRef(type_val="datasource", uid="grafana")


class LiveQuery(cogvariants.Dataquery):
    """A Grafana Live subscription (the built-in Grafana datasource's "measurements" query):
    the panel draws the points ``dashboards.live`` pushes on ``stream/<stream>/<measurement>``."""

    def __init__(self, channel: str, fields: Sequence[str], ref_id: str = "A") -> None:
        self.channel = channel
        self.fields = list(fields)
        self.ref_id = ref_id

    def to_json(self) -> dict[str, object]:
        return {"refId": self.ref_id, "datasource": GRAFANA_DS.to_json(),
                "queryType": "measurements", "channel": self.channel,
                "filter": {"fields": ["time", *self.fields]}}  # fmt: skip


class Live(cogbuilder.Builder[LiveQuery]):
    def __init__(self, stream: str, measurement: str, fields: Sequence[str]) -> None:
        for f in fields:
            check_field(measurement, f)
        self._internal = LiveQuery(f"stream/{stream}/{measurement}", fields)

    def build(self) -> LiveQuery:
        return self._internal
