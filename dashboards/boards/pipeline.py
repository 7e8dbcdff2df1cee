"""Pipeline health: the exporters' and the detector's own Prometheus metrics (lag, errors,
last success, ingest rate, spool size). Every metric name is one ``serve`` exports
(``exporters.telemetry``, the InfluxDB spool gauges, the detector's of contracts.md)."""

from __future__ import annotations

from grafana_foundation_sdk.builders import dashboard as dash_b

from dashboards import panels as p
from dashboards.common import board, board_link
from dashboards.queries import prom

FILE = "pipeline-health.json"


def build() -> dash_b.Dashboard:
    d = board("pipeline", "growthwatch: Pipeline health",
              "Is data flowing? Ingest, lag, errors, last success, the InfluxDB spool and the "
              "detector's own health, from Prometheus.")  # fmt: skip
    d = d.time("now-6h", "now").refresh("10s")
    d = d.link(board_link("anomalies", "Anomalies"))
    d = d.with_row(dash_b.Row("Sources"))
    d = d.with_panel(p.timeseries_panel(
        "Ingest rate", "Growth events newly stored in the ledger per second, by source and product.",
        [prom("sum by (source, product) (rate(growthwatch_events_ingested_total[5m]))",
              legend="{{product}}/{{source}}")], unit="ops"))  # fmt: skip
    d = d.with_panel(p.timeseries_panel(
        "Rejected records", "Source records rejected per second, by reason (kept with the "
        "reason in exporters.sqlite).",
        [prom("sum by (source, reason) (rate(growthwatch_events_rejected_total[5m]))",
              legend="{{source}}: {{reason}}")], unit="ops", steps=p.ERRORS,
        show_thresholds=True))  # fmt: skip
    d = d.with_panel(p.timeseries_panel(
        "Cursor lag", "Now minus the replication key each source's cursor durably reached.",
        [prom("max by (source, product) (growthwatch_cursor_lag_seconds)",
              legend="{{product}}/{{source}}")], unit="s", steps=p.LAG_SECONDS,
        show_thresholds=True))  # fmt: skip
    d = d.with_panel(p.stat_panel(
        "Since last successful pull", "Seconds since each source's last pull without error.",
        [prom("time() - max by (source, product) (growthwatch_last_success_timestamp_seconds)",
              legend="{{product}}/{{source}}")], unit="s", steps=p.LAG_SECONDS, span=12,
        sparkline=False, change=False))  # fmt: skip
    d = d.with_panel(p.timeseries_panel(
        "Source API errors", "Error answers from the sources' APIs per second, by HTTP status "
        "('network': no answer).",
        [prom("sum by (source, status) (rate(growthwatch_source_api_errors_total[5m]))",
              legend="{{source}} {{status}}")], unit="ops", steps=p.ERRORS,
        show_thresholds=True))  # fmt: skip
    d = d.with_panel(p.timeseries_panel(
        "Pull duration p95", "95th percentile of a scheduled pull's wall time, by source.",
        [prom("histogram_quantile(0.95, sum by (le, source) "
              "(rate(growthwatch_pull_duration_seconds_bucket[15m])))", legend="{{source}}")],
        unit="s"))  # fmt: skip
    d = d.with_panel(p.timeseries_panel(
        "Webhooks", "Webhook deliveries per second by outcome (accepted, duplicate, "
        "rejected_signature, ...).",
        [prom("sum by (outcome) (rate(growthwatch_webhooks_received_total[5m]))",
              legend="{{outcome}}")], unit="ops", span=24))  # fmt: skip
    d = d.with_row(dash_b.Row("InfluxDB spool"))
    d = d.with_panel(p.timeseries_panel(
        "Spooled points", "Points waiting on disk because InfluxDB did not answer; they are "
        "replayed oldest first when it does.",
        [prom("max(growthwatch_influx_spool_points)", legend="points")], steps=p.SPOOL,
        show_thresholds=True))  # fmt: skip
    d = d.with_panel(p.timeseries_panel(
        "Oldest spooled batch", "Age of the oldest spooled batch: how stale InfluxDB (and so "
        "these dashboards) may be.",
        [prom("max(growthwatch_influx_spool_oldest_age_seconds)", legend="age")], unit="s",
        steps=p.LAG_SECONDS, show_thresholds=True))  # fmt: skip
    d = d.with_row(dash_b.Row("Detector"))
    d = d.with_panel(p.timeseries_panel(
        "Detector evaluations", "Evaluations per second by product.",
        [prom("sum by (product) (rate(growthwatch_detector_evaluations_total[15m]))",
              legend="{{product}}")], unit="ops", span=8))  # fmt: skip
    d = d.with_panel(p.stat_panel(
        "Alerts open (detector)", "Alerts the detector holds open, by severity.",
        [prom("sum by (severity) (growthwatch_detector_alerts_open)", legend="{{severity}}")],
        steps=p.OPEN_ALERTS, span=8, change=False))  # fmt: skip
    d = d.with_panel(p.stat_panel(
        "Since last evaluation", "Seconds since the detector last evaluated the series.",
        [prom("time() - growthwatch_detector_last_evaluation_timestamp_seconds", legend="age")],
        unit="s", steps=p.LAG_SECONDS, span=8, sparkline=False, change=False))  # fmt: skip
    d = d.with_panel(p.timeseries_panel(
        "Notifications", "Detector notifications per second by route and outcome (sent, failed).",
        [prom("sum by (route, outcome) (rate(growthwatch_detector_notifications_total[15m]))",
              legend="{{route}} {{outcome}}")], unit="ops"))  # fmt: skip
    d = d.with_panel(p.timeseries_panel(
        "Evaluation duration p95", "95th percentile of one detector evaluation's wall time.",
        [prom("histogram_quantile(0.95, sum by (le) "
              "(rate(growthwatch_detector_evaluation_duration_seconds_bucket[15m])))",
              legend="p95")], unit="s"))  # fmt: skip
    return d
