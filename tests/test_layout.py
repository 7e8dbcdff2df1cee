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


# The reference folder developers have beside the repository: a user's clone has none, so no
# file of the project may read or cite it.
_OUTSIDE = re.compile(
    r"\.\./shared/(?:METRICS|ARCHITECTURE|SOURCES|STYLE|ENVIRONMENT|README|stripe|"
    r"grafana-schema|compose-schema|hooks)|/work/shared|parents?(?:\[\d\])? / \"shared\""
)


def test_nothing_in_the_repository_depends_on_a_folder_outside_it() -> None:
    import subprocess

    files = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True,
                           check=True).stdout.split()  # fmt: skip
    hits = []
    for name in files:
        path = ROOT / name
        if (path.suffix in (".png", ".pdf", ".json") or not path.is_file()
                or name == "tests/test_layout.py"):  # fmt: skip
            continue
        text = path.read_text(errors="replace")
        hits += [f"{name}:{i}" for i, line in enumerate(text.splitlines(), 1)
                 if _OUTSIDE.search(line)]  # fmt: skip
    assert hits == [], "references to a folder outside the repository:\n" + "\n".join(hits)
