"""docker-compose.yml agrees with what `growthwatch serve` listens on and writes.

Docker cannot run here, so the stack is checked statically: the Compose Specification
schema, and every port, path and variable read from the files the services really use.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import jsonschema
import yaml

from growthwatch import load_config

ROOT = Path(__file__).resolve().parents[1]
COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
S = COMPOSE["services"]


def mounts(service: str) -> dict[str, str]:
    """container path -> host source of a service's volumes."""
    out = {}
    for volume in S[service].get("volumes", []):
        source, target, *_ = volume.split(":")
        out[target] = source
    return out


def test_compose_file_validates_against_the_compose_spec() -> None:
    schema = json.loads((ROOT / "tests/schemas/compose-spec.json").read_text())
    jsonschema.Draft7Validator(schema).validate(COMPOSE)


def test_serve_config_matches_ports_and_volumes(monkeypatch: object) -> None:
    command = S["exporters"]["command"]
    assert command[:2] == ["serve", "--config"]
    config_path = command[2]
    host_config = mounts("exporters")[config_path]
    config = load_config(ROOT / host_config)  # as serve loads it (data_dir relative to it)
    server = config.section("server")
    published = [p.split(":") for p in S["exporters"]["ports"]]
    assert [(int(h), int(c)) for h, c in published] == [(server["port"], server["port"])]
    # Prometheus scrapes the metrics port serve really opens
    prom_mounts = mounts("prometheus")
    prom = yaml.safe_load((ROOT / prom_mounts["/etc/prometheus/prometheus.yml"]).read_text())
    targets = [t for job in prom["scrape_configs"] for c in job["static_configs"] for t in c["targets"]]
    assert targets == [f"exporters:{server['metrics_port']}"]
    assert str(server["metrics_port"]) in " ".join(S["exporters"]["healthcheck"]["test"])
    # every file serve writes lands in the named data volume
    data_mounts = {t: s for t, s in mounts("exporters").items() if not s.startswith("./")}
    assert Path(config.data_dir) == Path("/data") and data_mounts == {"/data": "growthwatch-data"}
    assert config.ledger_path.is_relative_to("/data")
    assert config.influxdb is not None and config.influxdb.url == "http://influxdb:8086"
    assert config.section("grafana")["url"] == "http://grafana:3000"


def test_images_pinned_healthchecks_and_conditions() -> None:
    for name, service in S.items():
        image = service.get("image", "")
        tag = image.rpartition(":")[2]
        assert ":" in image and tag not in ("latest", "") and re.search(r"\d", tag), name
        assert "healthcheck" in service, name
        for dep, cond in service.get("depends_on", {}).items():
            assert cond["condition"] == "service_healthy", (name, dep)
    assert S["exporters"]["build"] == "."
    for name in ("influxdb", "prometheus", "renderer"):
        assert S[name]["networks"] == ["internal"] and "ports" not in S[name], name
    assert COMPOSE["networks"]["internal"]["internal"] is True
    named = set(COMPOSE["volumes"])
    for service in S.values():
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            assert source.startswith("./") or source in named


def test_grafana_gets_provisioning_plugin_and_every_variable_it_needs() -> None:
    g = S["grafana"]
    env = g["environment"]
    assert env["GF_SECURITY_ADMIN_PASSWORD"].startswith("${GF_SECURITY_ADMIN_PASSWORD:?")
    assert env["GF_PLUGINS_ALLOW_LOADING_UNSIGNED_PLUGINS"] == "growthwatch-growth-panel"
    m = mounts("grafana")
    assert m["/etc/grafana/provisioning"] == "./provisioning"
    assert m["/var/lib/grafana/plugins/growthwatch-growth-panel"] == "./panel-plugin/dist"
    provider = yaml.safe_load((ROOT / "provisioning/dashboards/growthwatch.yaml").read_text())
    assert m[provider["providers"][0]["options"]["path"]] == "./dashboards/json"
    used = set()
    for path in (ROOT / "provisioning").rglob("*.yaml"):
        used |= set(re.findall(r"\$\{(GROWTHWATCH_\w+)\}", path.read_text()))
    assert used and used <= set(env), sorted(used - set(env))
    renderer = env["GF_RENDERING_SERVER_URL"]
    assert renderer.startswith("http://renderer:")


def test_env_example_lists_every_variable_compose_needs() -> None:
    text = (ROOT / "docker-compose.yml").read_text()
    needed = set(re.findall(r"\$\{(\w+)(?::[-?][^}]*)?\}", text))
    example = {line.split("=")[0] for line in (ROOT / ".env.example").read_text().splitlines()
               if line and not line.startswith("#")}  # fmt: skip
    assert needed <= example, sorted(needed - example)
    assert all(line.endswith("=") or line.startswith(("#", "GF_SECURITY_ADMIN_USER"))
               for line in (ROOT / ".env.example").read_text().splitlines() if line)  # fmt: skip
