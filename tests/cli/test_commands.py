"""The CLI as a person meets it: hints that run as printed, one-line errors naming the valid
choices, ``--format csv|json`` that parses back, tables that never cut a number."""

from __future__ import annotations

import csv
import io
import itertools
import json
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from rich.console import Console

from growthwatch.cli import main
from growthwatch.cli.output import emit

ROOT = Path(__file__).resolve().parents[2]
GW = str(Path(sys.executable).with_name("growthwatch"))


def run(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "COLUMNS": "200"}
    return subprocess.run([GW, *args], cwd=cwd, capture_output=True, text=True, env=env,
                          timeout=300)  # fmt: skip


@pytest.fixture(scope="module")
def demo_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small demo run in a fresh folder, with the default data dir, as a newcomer does."""
    cwd = tmp_path_factory.mktemp("newcomer")
    result = run("demo", "--products", "3", "--months", "3", "--events-per-day", "1500", cwd=cwd)
    assert result.returncode == 0, result.stderr
    (cwd / "demo.out").write_text(result.stdout)
    return cwd


def test_every_hint_the_demo_prints_runs_as_printed(demo_dir: Path) -> None:
    out = (demo_dir / "demo.out").read_text()
    hints = re.findall(r"^  [a-z' ]+:\s+(\S*growthwatch .+)$", out, re.M)
    assert len(hints) >= 4, out
    for hint in hints:
        # The hint names the program as it can be typed here: the venv's path when
        # `growthwatch` is not on PATH.
        first = shlex.split(hint.split("&&")[0])[0]
        assert first in ("growthwatch", os.path.relpath(GW, demo_dir), GW), hint
        env = {**os.environ, "COLUMNS": "200"}
        if first == "growthwatch":
            env["PATH"] = f"{Path(GW).parent}:{env['PATH']}"
        done = subprocess.run(hint, shell=True, cwd=demo_dir, capture_output=True, text=True,
                              env=env, timeout=300)  # fmt: skip
        assert done.returncode == 0, (hint, done.stdout, done.stderr)


def test_metrics_update_after_the_demo_continues_instead_of_recomputing(demo_dir: Path) -> None:
    result = run("metrics", "update", cwd=demo_dir)
    assert result.returncode == 0, result.stderr
    assert "metrics noop" in result.stdout and "full" not in result.stdout


@pytest.mark.parametrize(
    ("args", "expect"),
    [
        (["metrics", "show", "mrr", "--product", "nope"], r"unknown product 'nope'; products: acme-crm, all,"),
        (["metrics", "show", "ltv"], r"'ltv' is a field of churn_monthly.*metrics show churn --fields ltv"),
        (["metrics", "show", "nothing"], r"unknown metric 'nothing'; choose a measurement \(revenue_daily,"),
        (["metrics", "show", "churn", "--fields", "nrr,foo"], r"has no field 'foo'; fields: customers_start,"),
        (["metrics", "show", "churn", "--from", "2026-13"], r"not a day or a month; write YYYY-MM-DD"),
        (["metrics", "show", "churn", "--from", "2026-09", "--to", "2026-08-15"], r"the range is empty"),
        (["metrics", "show", "churn", "--limit", "-1"], r"--limit -1: give a number of rows >= 0"),
        (["metrics", "show", "churn", "--where", "industry=retail"], r"industry is not a configured segment dimension; tags: product; segments: plan, interval, country, channel"),
        (["metrics", "show", "mrr", "--config", "missing.yaml"], r"--config missing.yaml: no such file"),
        (["metrics", "update", "--config", "."], r"--config \.: is a directory"),
        (["serve", "--config", "missing.yaml"], r"--config missing.yaml: no such file"),
        (["backfill", "acme/stripe", "--since", "2026-01-01", "--config", "missing.yaml"],
         r"--config missing.yaml: no such file"),
        (["metrics", "show", "mrr", "--format", "xml"], r"invalid choice: 'xml' \(choose from 'table', 'csv', 'json'\)"),
    ],
)  # fmt: skip
def test_mistakes_get_one_line_with_the_valid_choices(
    demo_dir: Path, args: list[str], expect: str
) -> None:
    result = run(*args, cwd=demo_dir)
    assert result.returncode == 2, (result.stdout, result.stderr)
    assert "Traceback" not in result.stderr
    assert re.search(expect, result.stderr), result.stderr


def test_unreadable_config_is_one_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_bytes(b"products: [\xff\xfe")
    result = run("metrics", "show", "mrr", "--config", str(bad), cwd=tmp_path)
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr


def test_csv_and_json_parse_back_to_the_same_rows(demo_dir: Path) -> None:
    as_csv = run("metrics", "show", "churn", "--fields", "all", "--format", "csv",
                 "--limit", "0", cwd=demo_dir)  # fmt: skip
    as_json = run("metrics", "show", "churn", "--fields", "all", "--format", "json",
                  "--limit", "0", cwd=demo_dir)  # fmt: skip
    assert as_csv.returncode == 0 and as_json.returncode == 0
    rows = list(csv.DictReader(io.StringIO(as_csv.stdout)))
    records = json.loads(as_json.stdout)
    assert len(rows) == len(records) >= 2
    assert rows[0].keys() == records[0].keys() and "ltv" in records[0]
    for r, j in zip(rows, records, strict=True):
        assert r["time"] == j["time"] and r["time"].endswith("Z")
        assert int(r["customers_end"]) == j["customers_end"]
        assert float(r["mrr_end"]) == pytest.approx(j["mrr_end"], abs=1e-9)
    # The end of one month is the start of the next (independent of the engine's fields).
    for before, after in itertools.pairwise(records):
        assert after["mrr_start"] == pytest.approx(before["mrr_end"], abs=1e-6)
    products = json.loads(run("products", "--format", "json", cwd=demo_dir).stdout)
    assert {p["product"] for p in products} == {"acme-crm", "beacon-analytics", "kumo-invoicing"}
    assert all(p["events"] > 0 for p in products)
    schema = list(csv.DictReader(io.StringIO(run("metrics", "schema", "--format", "csv",
                                                 cwd=demo_dir).stdout)))  # fmt: skip
    assert {"mrr_daily", "revenue_daily", "cohort_retention"} <= {s["measurement"] for s in schema}


def test_portfolio_revenue_exists_and_money_is_labelled_in_minor_units(demo_dir: Path) -> None:
    result = run("metrics", "show", "revenue", "--limit", "5", cwd=demo_dir)
    assert result.returncode == 0, result.stderr
    assert "net_rc (USD)" in result.stdout
    assert "showing the last 5 of" in result.stderr
    jpy = run("metrics", "show", "revenue", "--product", "kumo-invoicing", "--limit", "5",
              cwd=demo_dir)  # fmt: skip
    assert jpy.returncode == 0, jpy.stderr
    amounts = [line.split("│")[4].strip() for line in jpy.stdout.splitlines()
               if line.startswith("│ 20")]  # fmt: skip
    assert amounts and all("." not in a for a in amounts)  # yen has no minor unit
    mrr = run("metrics", "show", "mrr", "--product", "kumo-invoicing", cwd=demo_dir)
    assert "mrr (USD)" in mrr.stdout  # converted to the reporting currency, and says so


def test_a_wide_table_is_stacked_never_cut_at_80_columns() -> None:
    frame = pd.DataFrame({"time": pd.to_datetime(["2026-01-01", "2026-02-01"], utc=True),
                          **{f"field_{i}": [1234567.891 * (i + 1), -0.5] for i in range(12)}})  # fmt: skip
    buf = io.StringIO()
    console = Console(file=buf, width=80, force_terminal=True, color_system=None)
    emit(frame, list(frame.columns), keys=["time"], console=console)
    text = re.sub(r"\x1b\[[0-9;]*m", "", buf.getvalue())  # styles are not width
    assert max(len(line) for line in text.splitlines()) <= 80
    assert "…" not in text
    for i in range(12):
        assert f"{1234567.891 * (i + 1):,.2f}" in text and f"field_{i}" in text
    assert text.count("2026-02-01") >= 2  # the key column repeats in each stacked part


def test_demo_data_dir_option_is_kept_in_hints(tmp_path: Path) -> None:
    result = run("demo", "--products", "2", "--months", "3", "--events-per-day", "500",
                 "--data-dir", "elsewhere", cwd=tmp_path)  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "metrics show churn --data-dir elsewhere" in result.stdout
    assert main(["products", "--data-dir", str(tmp_path / "elsewhere")]) == 0


def test_demo_and_metrics_runs_print_data_as_json_and_csv(tmp_path: Path) -> None:
    result = run("demo", "--products", "2", "--months", "3", "--events-per-day", "500",
                 "--format", "json", cwd=tmp_path)  # fmt: skip
    assert result.returncode == 0, result.stderr
    rows = json.loads(result.stdout)  # stdout is the data alone; progress and hints on stderr
    assert {r["product"] for r in rows} == {"acme-crm", "beacon-analytics"}
    assert all(isinstance(r["events"], int) and r["events"] > 0 for r in rows)
    assert "Where to look next" in result.stderr
    again = run("metrics", "recompute", "--format", "csv", cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    families = list(csv.DictReader(io.StringIO(again.stdout)))
    assert {f["family"] for f in families} >= {"revenue", "subscriptions"}
    assert {f["mode"] for f in families} == {"full"}
