"""The repository's deployable files: compose file, provisioning, README quick start."""

from __future__ import annotations

import json
import re
from pathlib import Path

import jsonschema
import yaml

ROOT = Path(__file__).resolve().parents[1]
SCHEMAS = ROOT / "tests" / "schemas"


def test_docker_compose_matches_compose_spec() -> None:
    schema = json.loads((SCHEMAS / "compose-spec.json").read_text())
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    jsonschema.Draft7Validator(schema).validate(compose)
    services = compose["services"]
    assert {"influxdb", "grafana", "exporters", "prometheus", "renderer"} <= set(services)
    for service in services.values():
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith("./") and source != "./panel-plugin/dist":  # built by npm
                assert (ROOT / source).exists(), f"compose mounts missing path {source}"


def test_grafana_provisioning_files() -> None:
    types = {}
    for path in sorted((ROOT / "provisioning/datasources").glob("*.yaml")):
        doc = yaml.safe_load(path.read_text())
        assert doc["apiVersion"] == 1
        types.update({ds["uid"]: ds["type"] for ds in doc["datasources"]})
    assert types == {"growthwatch-influxdb": "influxdb", "growthwatch-prometheus": "prometheus",
                     "growthwatch-bigquery": "grafana-bigquery-datasource"}
    providers = yaml.safe_load((ROOT / "provisioning/dashboards/growthwatch.yaml").read_text())
    assert providers["providers"][0]["type"] == "file"


def test_readme_quick_start_is_what_ci_runs() -> None:
    readme = (ROOT / "README.md").read_text()
    blocks = re.findall(r"```sh\n(.*?)\n```", readme, re.S)
    assert blocks[0].strip() == "scripts/install && .venv/bin/growthwatch demo"
    assert blocks[1].strip() == "scripts/test"
    ci = (ROOT / ".ci/run").read_text()
    assert re.search(r"^scripts/test$", ci, re.M)
