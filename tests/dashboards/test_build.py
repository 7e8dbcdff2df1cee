"""The generated Grafana files: no drift from the code, valid against Grafana's schemas,
and the conventions every board keeps (descriptions, units, links, variables, markers)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from dashboards import panels, queries
from dashboards.build import ALERTING_DIR, JSON_DIR, dashboard_json, dashboards, drift, render
from dashboards.cli import run_build

SCHEMAS = Path(__file__).resolve().parents[1] / "schemas"
BOARD_TYPES = {"timeseries", "stat", "table", "heatmap", "barchart", "text", "row"}
ROOT = Path(__file__).resolve().parents[2]


def schema(name: str) -> dict[str, Any]:
    return json.loads((SCHEMAS / name).read_text())


def definition(name: str, ref: str) -> jsonschema.Draft7Validator:
    doc = schema(name)
    return jsonschema.Draft7Validator({**doc, "$ref": f"#/definitions/{ref}"})


def all_panels(model: dict[str, Any]) -> list[dict[str, Any]]:
    out = []
    for p in model["panels"]:
        out.append(p)
        out.extend(p.get("panels", []))
    return out


def test_committed_files_are_what_the_code_generates() -> None:
    files = render()
    assert {p.name for p in files} >= {"portfolio-overview.json", "product-detail.json",
                                       "revenue.json", "retention-funnels.json", "anomalies.json",
                                       "pipeline-health.json", "rules.yaml"}  # fmt: skip
    assert drift(files) == []


def test_drift_is_detected_and_check_fails(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                           capsys: pytest.CaptureFixture[str]) -> None:  # fmt: skip
    files = render()
    edited = dict(files)
    target = JSON_DIR / "revenue.json"
    edited[target] = files[target].replace("Revenue waterfall", "Revenue waterfal")
    assert drift(edited) == ["dashboards/json/revenue.json: differs from the code"]
    import argparse

    monkeypatch.setattr("dashboards.build.render", lambda: edited)
    assert run_build(argparse.Namespace(check=True)) == 1
    assert "revenue.json: differs" in capsys.readouterr().out


@pytest.mark.parametrize("name", sorted(p.name for p in JSON_DIR.glob("*.json")))
def test_dashboard_validates_against_grafana_schema(name: str) -> None:
    model = json.loads((JSON_DIR / name).read_text())
    jsonschema.Draft7Validator(schema("dashboard.jsonschema.json")).validate(model)
    for panel in all_panels(model):
        kind = panel["type"]
        if kind == panels.GROWTH_PANEL_PLUGIN:  # the D3 panel: its own options, from its repo
            spec = panels.plugin_spec({"cohort-heatmap": "cohort", "funnel": "funnel",
                                       "waterfall": "waterfall"}[panel["options"]["visualisation"]])  # fmt: skip
            assert panel["options"] == spec["options"], name
            assert [t["query"] for t in panel["targets"]] == [t["query"] for t in spec["targets"]]
            continue
        assert kind in BOARD_TYPES, f"{name}: panel type {kind} (plugin only via growth_panel)"
        if (SCHEMAS / f"{kind}.jsonschema.json").exists():
            definition(f"{kind}.jsonschema.json", "Options").validate(panel.get("options", {}))


def test_every_panel_has_a_description_unit_and_thresholds() -> None:
    for name, model in dashboards():
        for panel in all_panels(model):
            if panel["type"] == "row":
                continue
            where = f"{name}: {panel['title']}"
            assert len(panel.get("description", "")) > 20, where
            if panel["type"] != "text":
                defaults = panel["fieldConfig"]["defaults"]
                assert defaults["unit"], where
                assert defaults["thresholds"]["steps"][0]["value"] is None, where
                assert panel["targets"], where


def test_boards_link_each_other_and_have_the_variables() -> None:
    boards = dict(dashboards())
    uids = {m["uid"] for m in boards.values()}
    assert len(uids) == 6
    for name, model in boards.items():
        (dropdown,) = [link for link in model["links"] if link["type"] == "dashboards"]
        assert dropdown["tags"] == ["growthwatch"] and dropdown["keepTime"], name
        assert all(t in model["tags"] for t in dropdown["tags"])
        assert model["refresh"] in ("10s", "30s"), name
        for link in model["links"]:  # every URL link points at one of the boards
            if link["type"] == "link":
                assert link["url"].split("?")[0].removeprefix("/d/") in uids, (name, link)
    names = {n: {v["name"] for v in m["templating"].get("list", [])} for n, m in boards.items()}
    assert names["product-detail.json"] == {"product", "segment", "period"}
    assert names["revenue.json"] == {"product", "segment", "period"}
    assert names["anomalies.json"] == {"product", "segment", "period"}
    assert "funnel" in names["retention-funnels.json"]
    product = boards["product-detail.json"]
    assert [a["name"] for a in product["annotations"]["list"]] == ["Anomalies", "Detector notes"]
    assert "anomalies" in product["annotations"]["list"][0]["target"]["query"]


def test_open_anomalies_are_on_top_of_the_portfolio() -> None:
    model = dict(dashboards())["portfolio-overview.json"]
    first = [p for p in model["panels"] if p["gridPos"]["y"] <= 1]
    assert {p["title"] for p in first} == {"Open anomalies", "Open anomalies: what and why"}
    assert all("anomalies" in p["targets"][0]["query"] for p in first if p["type"] != "row")


def test_unknown_fields_fail_the_build() -> None:
    with pytest.raises(queries.InfluxQLError, match="nope"):
        queries.select("mrr_daily", [queries.Col("nope")])
    with pytest.raises(queries.InfluxQLError, match="mrr_weekly"):
        queries.select("mrr_weekly", ["mrr"])
    with pytest.raises(queries.InfluxQLError, match="no tag"):
        queries.tag_is("mrr_daily", "channel", "x")


def test_partial_and_maturing_flags_are_picked_up_from_the_schema(monkeypatch: pytest.MonkeyPatch) -> None:  # fmt: skip
    """When churn_monthly gains ``partial`` and product_daily ``maturing`` (another branch),
    the boards mark those points with no change here: simulate the schema having them."""
    real = queries._spec_fields

    def with_flags(m: str) -> tuple[str, ...]:
        extra = {"churn_monthly": ("partial",), "churn_yearly": ("partial",),
                 "product_daily": ("maturing",)}.get(m, ())  # fmt: skip
        return (*real(m), *extra)

    monkeypatch.setattr(queries, "_spec_fields", with_flags)
    monkeypatch.setattr(queries, "check_field", lambda m, f: f)
    assert queries.marker_field("churn_monthly") == "partial"
    _, model = dashboard_json("dashboards.boards.product")
    monthly = next(p for p in model["panels"] if p["title"] == "Monthly churn")
    assert '"partial" = 1' in monthly["targets"][1]["query"]
    (override,) = monthly["fieldConfig"]["overrides"]
    assert override["matcher"]["options"]["names"] == ["customer churn (partial)",
                                                       "gross MRR churn (partial)"]  # fmt: skip
    jsonschema.Draft7Validator(schema("dashboard.jsonschema.json")).validate(model)
    _, retention = dashboard_json("dashboards.boards.retention")
    activation = next(p for p in retention["panels"] if p["title"].startswith("Activation rate"))
    assert '"maturing" = 1' in activation["targets"][1]["query"]


def test_growth_panel_is_a_one_argument_switch() -> None:
    built_in = panels.barchart_panel("Funnel", "Users per step of the funnel.",
                                     [queries.Influx('SELECT 1 FROM "x"')])  # fmt: skip
    assert panels.growth_panel("funnel", built_in, plugin=False).build().type_val == "barchart"
    plugin = panels.growth_panel("funnel", built_in).build()
    spec = json.loads((ROOT / "panel-plugin" / "queries.json").read_text())["visualisations"]
    assert plugin.type_val == "growthwatch-growth-panel"
    assert plugin.options == spec["funnel"]["options"]  # the plugin's own options and targets
    assert [t.query for t in plugin.targets] == [t["query"] for t in spec["funnel"]["targets"]]
    assert plugin.description == "Users per step of the funnel."


def test_cohorts_funnels_and_the_waterfall_use_the_d3_panel() -> None:
    boards = dict(dashboards())
    kinds = {p["options"]["visualisation"] for _, m in boards.items() for p in all_panels(m)
             if p["type"] == panels.GROWTH_PANEL_PLUGIN}  # fmt: skip
    assert kinds == {"cohort-heatmap", "funnel", "waterfall"}


def test_a_panel_without_description_is_refused() -> None:
    with pytest.raises(ValueError, match="description"):
        panels.stat_panel("MRR", " ", [])


def test_alerting_files_validate_against_grafana_alerting_schema() -> None:
    rules = yaml.safe_load((ALERTING_DIR / "rules.yaml").read_text())
    rule_v = definition("alerting.jsonschema.json", "Rule")
    group_v = definition("alerting.jsonschema.json", "RuleGroup")
    titles = []
    for group in rules["groups"]:
        api_rules = []
        for rule in group["rules"]:  # the API form of a provisioned rule
            api = {**rule, "folderUID": "growthwatch", "orgID": group["orgId"],
                   "ruleGroup": group["name"]}  # fmt: skip
            rule_v.validate(api)
            api_rules.append(api)
            titles.append(rule["title"])
            assert rule["data"][-1]["refId"] == rule["condition"]
        group_v.validate({"folderUid": "growthwatch", "title": group["name"],
                          "interval": 60, "rules": api_rules})  # fmt: skip
    assert {"Customer churn rate high", "MRR dropped", "Open anomalies", "Source cursor lag",
            "Source API errors", "InfluxDB spool growing old"} <= set(titles)  # fmt: skip
    points = yaml.safe_load((ALERTING_DIR / "contact-points.yaml").read_text())
    cp_v = definition("alerting.jsonschema.json", "ContactPoint")
    kinds = {}
    for cp in points["contactPoints"]:
        for receiver in cp["receivers"]:
            cp_v.validate({**receiver, "name": cp["name"]})
            kinds[cp["name"]] = receiver["type"]
            secret = receiver["settings"].get("url") or receiver["settings"].get("integrationKey")
            assert secret.startswith("${GROWTHWATCH_") and secret.endswith("}")  # from env only
    assert set(kinds.values()) == {"slack", "pagerduty"}
    t_v = definition("alerting.jsonschema.json", "NotificationTemplate")
    for tpl in points["templates"]:
        t_v.validate({k: v for k, v in tpl.items() if k != "orgId"})
    policies = yaml.safe_load((ALERTING_DIR / "policies.yaml").read_text())
    p_v = definition("alerting.jsonschema.json", "NotificationPolicy")
    (root,) = policies["policies"]
    p_v.validate({k: v for k, v in root.items() if k != "orgId"})
    receivers = {r["receiver"] for r in root["routes"]} | {root["receiver"]}
    assert receivers <= set(kinds)


def route(root: dict[str, Any], labels: dict[str, str]) -> list[str]:
    """Alertmanager's routing for a flat tree: first match wins unless continue."""
    import re

    hits = []
    for r in root["routes"]:
        ok = all(
            (labels.get(k, "") == v) if op == "=" else bool(re.fullmatch(v, labels.get(k, "")))
            for k, op, v in r["object_matchers"]
        )
        if ok:
            hits.append(r["receiver"])
            if not r.get("continue"):
                return hits
    return hits or [root["receiver"]]


def test_paging_is_owned_by_pipeline_rules_only() -> None:
    """Growth-metric rules never reach PagerDuty (the detector pages for those); pipeline
    rules that are critical do; routing follows severity and product."""
    rules = yaml.safe_load((ALERTING_DIR / "rules.yaml").read_text())
    (root,) = yaml.safe_load((ALERTING_DIR / "policies.yaml").read_text())["policies"]
    for group in rules["groups"]:
        for rule in group["rules"]:
            labels = dict(rule["labels"], product="acme-crm", alertname=rule["title"])
            receivers = route(root, labels)
            pages = "growthwatch-pagerduty" in receivers
            if labels["kind"] == "growth":
                assert not pages and labels["page"] == "no", rule["title"]
            else:
                assert pages == (labels["severity"] == "critical"), rule["title"]
    portfolio = route(root, {"kind": "growth", "page": "no", "severity": "warning", "product": "all"})
    assert portfolio == ["growthwatch-slack-portfolio"]
