"""Grafana as code: the boards (``dashboards.boards``), their queries built from the metrics
schema (``queries``), panel helpers (``panels``), alerting provisioning (``alerting``), the
build/check of the committed files (``build``; ``growthwatch dashboards build``), Grafana's
macro expansion for testing queries on a real InfluxDB (``macros``), Grafana Live push inside
``growthwatch serve`` (``live``) and Grafana's HTTP API (``grafana_api``).

The generated JSON lives in ``dashboards/json/``; Grafana reads it through
``provisioning/dashboards/``.
"""
