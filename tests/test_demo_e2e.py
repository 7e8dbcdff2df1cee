"""`growthwatch demo` end to end, through the real CLI, a real InfluxDB and back."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import duckdb
import pytest

from growthwatch.stores.series import SeriesStore
from growthwatch.testing.servers import InfluxServer

SMALL = ["--products", "3", "--months", "4", "--events-per-day", "400"]


def demo(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "COLUMNS": "160"}
    return subprocess.run(
        [sys.executable, "-m", "growthwatch", "demo", *args],
        capture_output=True, text=True, check=False, cwd=cwd, env=env, timeout=600,
    )  # fmt: skip


def snapshot(data_dir: Path, influx: InfluxServer, db: str) -> dict[str, Any]:
    con = duckdb.connect(str(data_dir / "ledger.duckdb"), read_only=True)
    ledger_rows = con.execute(
        "SELECT count(*), CAST(sum(value) AS VARCHAR), max(seq) FROM events"
    ).fetchone()
    con.close()
    series = SeriesStore(data_dir / "series.duckdb")
    frames = {m: series.read(m).to_json(date_format="iso") for m in series.measurements()}
    series.close()
    counts = {
        m: influx.query(f'SELECT count(*) FROM "{m}"', db)
        for m in ("growth_events", "revenue_daily", "customers_daily", "signups_daily")
    }
    return {"ledger": ledger_rows, "series": frames, "influx": counts}


@pytest.mark.influx
def test_demo_twice_changes_nothing_and_numbers_match_the_ledger(
    tmp_path: Path, influx_server: InfluxServer, influx_db: str
) -> None:
    args = [*SMALL, "--data-dir", str(tmp_path), "--influx-url", influx_server.url,
            "--influx-db", influx_db]  # fmt: skip
    first = demo(*args)
    assert first.returncode == 0, first.stderr
    assert "Where to look next" in first.stdout
    assert " 0 already there" in first.stdout.replace(",", "")
    before = snapshot(tmp_path, influx_server, influx_db)
    generated = before["ledger"][0]
    assert generated > 10_000
    truth = json.loads((tmp_path / "incidents.json").read_text())
    assert {i["kind"] for i in truth} >= {"churn_spike", "payment_outage", "tracking_outage"}

    second = demo(*args)
    assert second.returncode == 0, second.stderr
    assert f"0 new, {generated:,} already there" in second.stdout
    assert snapshot(tmp_path, influx_server, influx_db) == before

    # Independent check: net revenue per product and currency, summed exactly in SQL from
    # the ledger, equals what InfluxDB holds in revenue_daily.
    con = duckdb.connect(str(tmp_path / "ledger.duckdb"), read_only=True)
    expected = {
        (p, c): round(float(v), 2)
        for p, c, v in con.execute(
            "SELECT product, currency, sum(CASE type WHEN 'payment' THEN value ELSE -value END) "
            "FROM events WHERE type IN ('payment', 'refund') GROUP BY 1, 2"
        ).fetchall()
    }
    events_in_ledger = con.execute("SELECT count(*) FROM events").fetchone()
    con.close()
    rows = influx_server.query(
        'SELECT sum("net") FROM "revenue_daily" WHERE "product" != \'all\' '
        'GROUP BY "product", "currency"', influx_db,
    )  # fmt: skip
    got = {(str(r["product"]), str(r["currency"])): round(float(str(r["sum"])), 2) for r in rows}
    assert got == expected
    raw = influx_server.query('SELECT count("value") FROM "growth_events"', influx_db)
    assert events_in_ledger is not None and int(str(raw[0]["count"])) == events_in_ledger[0]


@pytest.mark.slow
def test_readme_demo_command_with_defaults(tmp_path: Path) -> None:
    """The quick start's `growthwatch demo`, with its defaults, in a fresh directory."""
    result = demo(cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    table = result.stdout
    assert table.count("acme") + table.count("-") > 0
    data = tmp_path / "growthwatch-data"
    products = json.loads((data / "products.json").read_text())
    assert len(products) == 12
    for product in products:
        assert product["id"] in table
    con = duckdb.connect(str(data / "ledger.duckdb"), read_only=True)
    count = con.execute("SELECT count(*), count(DISTINCT product) FROM events").fetchone()
    con.close()
    assert count is not None and count[1] == 12 and count[0] > 1_000_000
