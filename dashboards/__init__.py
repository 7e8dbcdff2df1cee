"""Grafana dashboards as code; the generated JSON lives in dashboards/json/."""
