"""Grafana alerting as code: rules, contact points, notification policies and templates,
rendered to ``provisioning/alerting/*.yaml`` (Grafana's file provisioning format).

Paging ownership (contracts.md): the detector's apprise notifications own paging for
growth metrics; Grafana's rules page only for pipeline health (lag, errors, spool, a
stalled detector). Grafana's growth-metric rules carry ``page = "no"`` and go to Slack;
set ``PAGE_GROWTH_RULES = True`` and rebuild to let them page too (then turn the
detector's paging route off, or one incident pages twice).

Every InfluxQL query here goes through the same Grafana macro expansion and real-InfluxDB
test as the dashboards' panels.
"""

from __future__ import annotations

from typing import Any

from dashboards import anomaly_queries as aq
from dashboards.queries import INFLUX, PROMETHEUS, Col, Expr, select

PAGE_GROWTH_RULES = False  # growth metrics page through the detector (see module docstring)
FOLDER_UID = "growthwatch"
ORG = 1


def _influx(ref: str, query: str, seconds: int) -> dict[str, Any]:
    return {
        "refId": ref,
        "relativeTimeRange": {"from": seconds, "to": 0},
        "datasourceUid": INFLUX.uid,
        "model": {"refId": ref, "query": query, "rawQuery": True,
                  "resultFormat": "time_series", "intervalMs": 60000, "maxDataPoints": 43200},
    }  # fmt: skip


def _prom(ref: str, expr: str, seconds: int = 600) -> dict[str, Any]:
    return {
        "refId": ref,
        "relativeTimeRange": {"from": seconds, "to": 0},
        "datasourceUid": PROMETHEUS.uid,
        "model": {"refId": ref, "expr": expr, "instant": True, "intervalMs": 15000,
                  "maxDataPoints": 43200},
    }  # fmt: skip


def _reduce(ref: str, source: str) -> dict[str, Any]:
    return {"refId": ref, "datasourceUid": "__expr__", "relativeTimeRange": {"from": 0, "to": 0},
            "model": {"refId": ref, "type": "reduce", "expression": source, "reducer": "last",
                      "settings": {"mode": "dropNN"}}}  # fmt: skip


def _threshold(ref: str, source: str, op: str, value: float) -> dict[str, Any]:
    return {"refId": ref, "datasourceUid": "__expr__", "relativeTimeRange": {"from": 0, "to": 0},
            "model": {"refId": ref, "type": "threshold", "expression": source,
                      "conditions": [{"evaluator": {"type": op, "params": [value]}}]}}  # fmt: skip


def _rule(uid: str, title: str, query: dict[str, Any], op: str, value: float, *, severity: str,
          kind: str, summary: str, for_: str = "5m", no_data: str = "OK",
          dashboard: str = "") -> dict[str, Any]:  # fmt: skip
    page = "yes" if kind == "pipeline" or PAGE_GROWTH_RULES else "no"
    rule: dict[str, Any] = {
        "uid": uid,
        "title": title,
        "condition": "C",
        "data": [query, _reduce("B", "A"), _threshold("C", "B", op, value)],
        "noDataState": no_data,
        "execErrState": "Error",
        "for": for_,
        "annotations": {"summary": summary,
                        "description": "{{ $labels.product }}{{ $labels.source }}: value {{ $values.B }}"},
        "labels": {"severity": severity, "kind": kind, "page": page, "team": "growth"},
        "isPaused": False,
    }  # fmt: skip
    if dashboard:
        rule["annotations"]["__dashboardUid__"] = dashboard
    return rule


def influx_rules() -> list[dict[str, Any]]:
    """Growth-metric rules over InfluxDB (series grouped by product become alert instances)."""
    churn = select("customers_daily", [Col("churn_rate", "mean", "churn_rate")],
                   group_tags=["product"])  # fmt: skip
    change = Expr('(last("mrr") - first("mrr")) / first("mrr")', ("mrr",), "mrr_change")
    mrr = select("mrr_daily", [change], group_tags=["product"])
    return [
        _rule("gw-churn-rate", "Customer churn rate high", _influx("A", churn, 7 * 86400), "gt",
              0.005, severity="warning", kind="growth", dashboard="gw-product",
              summary="Mean daily customer churn over 7 days above 0.5 %"),
        _rule("gw-mrr-drop", "MRR dropped", _influx("A", mrr, 7 * 86400), "lt", -0.05,
              severity="critical", kind="growth", dashboard="gw-revenue",
              summary="MRR fell more than 5 % in 7 days"),
        _rule("gw-open-anomalies", "Open anomalies", _influx(
            "A", aq.open_count(by=["product"]), 30 * 86400), "gt", 0, severity="warning",
            kind="growth", for_="0s", dashboard="gw-anomalies",
            summary="The detector has open anomalies"),
    ]  # fmt: skip


def prometheus_rules() -> list[dict[str, Any]]:
    """Pipeline-health rules over Prometheus: these own paging."""
    return [
        _rule("gw-cursor-lag", "Source cursor lag", _prom(
            "A", "max by (source, product) (growthwatch_cursor_lag_seconds)"), "gt", 3600,
            severity="critical", kind="pipeline", dashboard="gw-pipeline",
            summary="A source's cursor is more than an hour behind"),
        _rule("gw-source-errors", "Source API errors", _prom(
            "A", "sum by (source) (rate(growthwatch_source_api_errors_total[15m]))"), "gt", 0.1,
            severity="warning", kind="pipeline", dashboard="gw-pipeline",
            summary="A source's API answers with errors"),
        _rule("gw-rejected", "Rejected records", _prom(
            "A", "sum by (source) (rate(growthwatch_events_rejected_total[15m]))"), "gt", 1,
            severity="warning", kind="pipeline", dashboard="gw-pipeline",
            summary="Records are being rejected"),
        _rule("gw-spool-age", "InfluxDB spool growing old", _prom(
            "A", "max(growthwatch_influx_spool_oldest_age_seconds)"), "gt", 900,
            severity="critical", kind="pipeline", dashboard="gw-pipeline",
            summary="Points have waited in the InfluxDB spool for 15 minutes"),
        _rule("gw-detector-stalled", "Detector stalled", _prom(
            "A", "time() - growthwatch_detector_last_evaluation_timestamp_seconds"), "gt", 1800,
            severity="critical", kind="pipeline", dashboard="gw-pipeline", no_data="Alerting",
            summary="The detector has not evaluated for 30 minutes"),
    ]  # fmt: skip


def rules_file() -> dict[str, Any]:
    groups = [
        {"orgId": ORG, "name": "growth-metrics", "folder": "growthwatch", "interval": "5m",
         "rules": influx_rules()},
        {"orgId": ORG, "name": "pipeline-health", "folder": "growthwatch", "interval": "1m",
         "rules": prometheus_rules()},
    ]  # fmt: skip
    return {"apiVersion": 1, "groups": groups}


SLACK_TITLE = (
    '{{ define "growthwatch.slack.title" }}[{{ .Status | toUpper }}{{ if eq .Status "firing" }}'
    ":{{ .Alerts.Firing | len }}{{ end }}] {{ .CommonLabels.alertname }}"
    "{{ if .CommonLabels.product }} · {{ .CommonLabels.product }}{{ end }}{{ end }}"
)
SLACK_TEXT = (
    '{{ define "growthwatch.slack.text" }}{{ range .Alerts }}*{{ .Labels.severity }}* '
    "{{ .Annotations.summary }}\n{{ .Annotations.description }}\n"
    "{{ if .DashboardURL }}<{{ .DashboardURL }}|dashboard>{{ end }}"
    "{{ if .SilenceURL }} · <{{ .SilenceURL }}|silence>{{ end }}\n{{ end }}{{ end }}"
)
PAGERDUTY_SUMMARY = (
    '{{ define "growthwatch.pagerduty.summary" }}{{ .CommonLabels.alertname }}: '
    "{{ .CommonAnnotations.summary }}{{ if .CommonLabels.product }} ({{ .CommonLabels.product }})"
    "{{ end }}{{ if .CommonLabels.source }} ({{ .CommonLabels.source }}){{ end }}{{ end }}"
)


def contact_points_file() -> dict[str, Any]:
    slack_settings = {"title": '{{ template "growthwatch.slack.title" . }}',
                      "text": '{{ template "growthwatch.slack.text" . }}'}  # fmt: skip
    return {
        "apiVersion": 1,
        "contactPoints": [
            {"orgId": ORG, "name": "growthwatch-slack", "receivers": [{
                "uid": "gw-slack", "type": "slack",
                "settings": {"url": "${GROWTHWATCH_SLACK_WEBHOOK_URL}", **slack_settings}}]},
            {"orgId": ORG, "name": "growthwatch-slack-portfolio", "receivers": [{
                "uid": "gw-slack-portfolio", "type": "slack",
                "settings": {"url": "${GROWTHWATCH_SLACK_PORTFOLIO_WEBHOOK_URL}",
                             **slack_settings}}]},
            {"orgId": ORG, "name": "growthwatch-pagerduty", "receivers": [{
                "uid": "gw-pagerduty", "type": "pagerduty",
                "settings": {"integrationKey": "${GROWTHWATCH_PAGERDUTY_ROUTING_KEY}",
                             "severity": "{{ .CommonLabels.severity }}",
                             "summary": '{{ template "growthwatch.pagerduty.summary" . }}'}}]},
        ],
        "templates": [
            {"orgId": ORG, "name": "growthwatch.slack", "template": SLACK_TITLE + "\n" + SLACK_TEXT},
            {"orgId": ORG, "name": "growthwatch.pagerduty", "template": PAGERDUTY_SUMMARY},
        ],
    }  # fmt: skip


def policies_file() -> dict[str, Any]:
    """Routing: paging (page = yes, critical) to PagerDuty; the portfolio's alerts to its
    Slack channel; everything else to the products' Slack channel, grouped by product."""
    return {
        "apiVersion": 1,
        "policies": [{
            "orgId": ORG,
            "receiver": "growthwatch-slack",
            "group_by": ["alertname", "product", "source"],
            "group_wait": "30s", "group_interval": "5m", "repeat_interval": "4h",
            "routes": [
                {"receiver": "growthwatch-pagerduty",
                 "object_matchers": [["page", "=", "yes"], ["severity", "=", "critical"]],
                 "continue": True, "repeat_interval": "1h"},
                {"receiver": "growthwatch-slack-portfolio",
                 "object_matchers": [["product", "=", "all"]]},
                {"receiver": "growthwatch-slack",
                 "object_matchers": [["product", "=~", ".+"]],
                 "group_by": ["alertname", "product"]},
                {"receiver": "growthwatch-slack",
                 "object_matchers": [["kind", "=", "pipeline"]],
                 "group_by": ["alertname", "source"], "repeat_interval": "1h"},
            ],
        }],
    }  # fmt: skip


def files() -> dict[str, dict[str, Any]]:
    return {
        "rules.yaml": rules_file(),
        "contact-points.yaml": contact_points_file(),
        "policies.yaml": policies_file(),
    }
