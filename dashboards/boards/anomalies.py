"""Anomalies: the detector's incidents as a timeline and a table (severity, explanation,
state), from the ``anomalies`` measurement of contracts.md."""

from __future__ import annotations

from grafana_foundation_sdk.builders import dashboard as dash_b

from dashboards import anomaly_queries as aq
from dashboards import panels as p
from dashboards.common import (
    board,
    board_link,
    detector_annotations,
    period_var,
    product_link,
    product_var,
    segment_var,
)  # fmt: skip
from dashboards.queries import ANOMALIES, Influx, tag_matches

FILE = "anomalies.json"
STATES = p.text_map({"critical": ("critical", "red"), "warning": ("warning", "orange"),
                     "open": ("open", "orange"), "escalated": ("escalated", "red"),
                     "resolved": ("resolved", "green")})  # fmt: skip


def build() -> dash_b.Dashboard:
    d = board("anomalies", "growthwatch: Anomalies",
              "What the detector found: open incidents, their timeline and every state "
              "transition with its explanation.")  # fmt: skip
    segment = segment_var(ANOMALIES, "segment", "Segment").query(
        f'SHOW TAG VALUES FROM "{ANOMALIES}" WITH KEY = "segment" WHERE '
        + tag_matches(ANOMALIES, "product", "product")
    )
    d = d.with_variable(product_var(include_all_option=True)).with_variable(segment)
    d = d.with_variable(period_var())
    d = d.annotation(detector_annotations())
    d = d.link(board_link("portfolio", "Portfolio overview"))
    filters = aq.board_filters()
    d = d.with_panel(p.stat_panel(
        "Open incidents", "Incidents whose last transition is open or escalated.",
        [Influx(aq.open_count(filters), alias="open")], steps=p.OPEN_ALERTS, span=6,
        sparkline=False, change=False).no_value("0"))  # fmt: skip
    d = d.with_panel(p.stat_panel(
        "Open incidents by product", "Open incidents per product; click for its detail board.",
        [Influx(aq.open_count(filters, by=["product"]), alias="$tag_product")],
        steps=p.OPEN_ALERTS, span=18, sparkline=False, change=False,
    ).data_links([product_link()]))  # fmt: skip
    where = " AND ".join([*filters, "$timeFilter"])
    d = d.with_panel(p.timeseries_panel(
        "Timeline: anomaly score", "Each transition's score (0-1) by metric and severity: a "
        "point per open, escalation and resolution.",
        [Influx(f'SELECT "score" FROM "{ANOMALIES}" WHERE {where} GROUP BY "metric", "severity"',
                alias="$tag_metric ($tag_severity)")],
        unit="percentunit", steps=((None, "green"), (0.5, "orange"), (0.8, "red")),
        show_thresholds=True, span=12))  # fmt: skip
    d = d.with_panel(p.timeseries_panel(
        "Observed vs expected", "At each transition: the observed value against the "
        "expected value and its band (lower, upper).",
        [Influx(f'SELECT "observed", "expected", "lower", "upper" FROM "{ANOMALIES}" WHERE '
                f'{where} GROUP BY "metric"', alias="$tag_metric $col")], span=12))  # fmt: skip
    d = d.with_panel(p.table_panel(
        "Current state of every incident", "One row per incident (product, metric, segment): "
        "its last transition, severity and explanation.",
        [Influx(aq.latest_state(filters), table=True)],
        transformations=[p.merge(), p.organize(exclude=["started_ms"])],
        mappings=STATES,
        colored={"open": ((None, "green"), (1, "red"))}))  # fmt: skip
    d = d.with_panel(p.table_panel(
        "Transitions", "Every transition the detector wrote, newest first, with its "
        "explanation.",
        [Influx(f'SELECT "state", "explanation", "observed", "expected", "lower", "upper", '
                f'"score", "alert_id" FROM "{ANOMALIES}" WHERE {where} GROUP BY "product", '
                f'"metric", "segment", "severity", "method" ORDER BY time DESC', table=True)],
        transformations=[p.merge()], mappings=STATES,
        height=10))  # fmt: skip
    return d
