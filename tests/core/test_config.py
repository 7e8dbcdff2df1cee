"""Config: the example passes; every problem is named by YAML path and line; no secrets shown."""

from __future__ import annotations

import re
import subprocess
import sys
from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest

from growthwatch.cli.config_cmd import example_text
from growthwatch.config import ConfigError, check_file, env_problems, load_config

BAD = """\
reporting:
  currency: usd
  fx_rates:
    EUR:
      - {date: 2025-13-01, rate: -1}
influxdb:
  url: localhost:8086
  batchsize: 10
products:
  - id: Acme CRM
    sources:
      - type: stripe
        api_key: sk_live_51SECRETSECRET
        schedule: often
      - type: mixpanl
  - id: ok
    sources:
      - type: mixpanel
        project_id: 1
        username: ${MP_USER}
        secret: ${MP_SECRET}
  - id: ok
"""


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "growthwatch", *args], capture_output=True, text=True, check=False
    )


def test_example_config_is_valid_and_loads(tmp_path: Path) -> None:
    path = tmp_path / "growthwatch.yaml"
    path.write_text(example_text())
    problems, _ = check_file(path)
    assert problems == []
    config = load_config(path)
    assert [p.id for p in config.products] == ["acme-crm", "acme-mail"]
    assert config.reporting_currency == "USD"
    assert config.fx_rates["EUR"][1] == (date(2025, 7, 1), Decimal("1.12"))
    assert config.influxdb is None  # commented out: the example needs no server
    block = re.search(r"^# influxdb:\n(?:#  .*\n)+", example_text(), re.M)
    assert block is not None
    section = re.sub(r"^# ?", "", block.group(0), flags=re.M)
    path.write_text(example_text().replace(block.group(0), section))
    switched_on = load_config(path)  # the one documented step switches InfluxDB on
    assert switched_on.influxdb is not None and switched_on.influxdb.batch_size == 10000
    stripe = config.products[0].sources[0]
    assert (stripe.type, stripe.schedule, stripe.lookback) == ("stripe", "15m", "3d")
    assert config.data_dir == tmp_path / "growthwatch-data"


def test_every_problem_has_path_line_and_hint(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(BAD)
    problems, _ = check_file(path)
    by_path = {p.path: p for p in problems}
    expected_lines = {
        "reporting.currency": 2,
        "reporting.fx_rates.EUR[0].date": 5,
        "reporting.fx_rates.EUR[0].rate": 5,
        "influxdb": 6,
        "influxdb.url": 7,
        "products[0].id": 10,
        "products[0].sources[0].api_key": 13,
        "products[0].sources[0].schedule": 14,
        "products[1].sources[0]": 18,
        "products[2].id": 22,
    }
    for key, line in expected_lines.items():
        assert key in by_path, f"no problem reported at {key}: {sorted(by_path)}"
        assert by_path[key].line == line, key
    assert "batch_size" in by_path["influxdb"].hint  # did-you-mean
    assert "'events' is required" in by_path["products[1].sources[0]"].message
    assert "duplicate product id 'ok'" in by_path["products[2].id"].message
    assert any(p.path == "products[0].sources[1].type" and "stripe" in p.hint for p in problems)


def test_cli_check_prints_problems_and_never_the_secret(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(BAD)
    result = run_cli("config", "check", str(path), "--env")
    assert result.returncode == 1
    out = result.stdout + result.stderr
    assert "SECRETSECRET" not in out and "sk_live" not in out
    assert f"{path}:13: products[0].sources[0].api_key" in out
    assert "environment variable MP_USER is not set" in out
    good = tmp_path / "good.yaml"
    good.write_text(example_text())
    ok = run_cli("config", "check", str(good))
    assert ok.returncode == 0 and "OK" in ok.stdout


def test_unreadable_and_unparsable_files(tmp_path: Path) -> None:
    assert run_cli("config", "check", str(tmp_path / "missing.yaml")).returncode == 2
    broken = tmp_path / "broken.yaml"
    broken.write_text("products:\n  - id: a\n   bad: indent\n")
    problems, _ = check_file(broken)
    assert problems[0].message.startswith("not valid YAML") and problems[0].line == 3
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(broken)


def test_env_references_resolve_only_from_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "c.yaml"
    path.write_text(example_text())
    config = load_config(path)
    stripe = config.products[0].sources[0]
    monkeypatch.delenv("STRIPE_API_KEY_ACME", raising=False)
    with pytest.raises(ConfigError, match="STRIPE_API_KEY_ACME is not set"):
        stripe.secret("api_key")
    monkeypatch.setenv("STRIPE_API_KEY_ACME", "sk_test_123")
    assert stripe.secret("api_key") == "sk_test_123"
    _, data = check_file(path)
    assert "STRIPE_API_KEY_ACME" not in {p.message.split()[2] for p in env_problems(data)}


def test_help_lists_commands() -> None:
    result = run_cli("--help")
    assert result.returncode == 0
    for command in ("demo", "config"):
        assert command in result.stdout


# -- hostile and broken files: refused quickly, with a clear problem ------------------------

MINIMAL = "products:\n  - id: acme\n"


def _problems(tmp_path: Path, content: bytes | str) -> list[str]:
    path = tmp_path / "growthwatch.yaml"
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    problems, _ = check_file(path)
    return [p.render(str(path)) for p in problems]


def test_a_10_mb_config_is_refused_before_it_is_parsed(tmp_path: Path) -> None:
    big = MINIMAL + "# padding\n" * 1_000_000  # ~10 MB of comments
    (msg,) = _problems(tmp_path, big)
    assert "10.0 MB" in msg and "at most 1024 KiB" in msg


def test_an_alias_bomb_is_refused_not_expanded(tmp_path: Path) -> None:
    bomb = 'a: &a ["x","x","x","x","x","x","x","x","x"]\n'
    for i, name in enumerate("bcdefghi"):
        prev = "abcdefghi"[i]
        bomb += f"{name}: &{name} [" + ",".join([f"*{prev}"] * 9) + "]\n"
    bomb += MINIMAL
    assert len(bomb) < 600  # 9**9 = 387 million values once expanded
    (msg,) = _problems(tmp_path, bomb)
    assert "aliases expand to more than 100,000 values" in msg


def test_a_duplicate_key_is_an_error_with_both_lines(tmp_path: Path) -> None:
    (msg,) = _problems(tmp_path, "reporting:\n  currency: USD\n  currency: EUR\n" + MINIMAL)
    assert "duplicate key 'currency' (first on line 2)" in msg and ":3:" in msg


def test_bytes_that_are_not_utf8_name_the_line_and_a_bom_is_fine(tmp_path: Path) -> None:
    (msg,) = _problems(tmp_path, b"# growthwatch\nproducts:\n  - id: caf\xe9\n")
    assert "not UTF-8 text: byte 0xe9 at line 3" in msg
    assert _problems(tmp_path, b"\xef\xbb\xbf" + MINIMAL.encode()) == []


def test_timezone_must_be_an_iana_zone_with_a_suggestion(tmp_path: Path) -> None:
    (msg,) = _problems(tmp_path, "reporting:\n  timezone: Europe/Berlinn\n" + MINIMAL)
    assert "'Europe/Berlinn' is not an IANA time zone" in msg and "Europe/Berlin?" in msg
    assert _problems(tmp_path, "reporting:\n  timezone: Europe/Berlin\n" + MINIMAL) == []


def test_a_password_inside_a_url_is_refused_and_not_printed(tmp_path: Path) -> None:
    text = MINIMAL + "influxdb:\n  url: http://admin:hunter2@127.0.0.1:8086\n"
    (msg,) = _problems(tmp_path, text)
    assert "influxdb.url: a password is written inside this URL" in msg
    assert "hunter2" not in msg


def test_a_key_nothing_implements_yet_is_refused_with_the_reason(tmp_path: Path) -> None:
    (msg,) = _problems(tmp_path, MINIMAL + "metrics:\n  include_metered: true\n")
    assert "metrics.include_metered: not supported yet" in msg and "left out of MRR" in msg
