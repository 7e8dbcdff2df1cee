"""``growthwatch archive`` through the real CLI entry point, with and without BigQuery, and
the archive inside ``serve`` (``attach``)."""

from __future__ import annotations

import csv
import io
import json
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest
import yaml
from archive_cases import build_ledger

from bigquery_archive.service import ScheduledArchive, attach
from bigquery_archive.settings import ArchiveSettings
from growthwatch import Config, SeriesStore
from growthwatch.cli import main
from growthwatch.demo.spec import DemoSpec
from growthwatch.testing.servers import BigQueryEmulator

SMALL = DemoSpec(products=1, days=3, events_per_day=100)  # 2026-10-29 .. 2026-10-31
NOW = "2026-11-02T06:00:00+00:00"


def _ledger_counts(path: Path) -> dict[str, int]:
    ledger = build_ledger(path, SMALL)
    rows = ledger.connection.execute(
        "SELECT strftime(timezone('UTC', ts), '%Y-%m-%d'), count(*) FROM events GROUP BY 1"
    ).fetchall()
    ledger.close()
    return {d: int(n) for d, n in rows}


def test_without_bigquery_the_ledger_is_the_archive(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    counts = _ledger_counts(tmp_path / "ledger.duckdb")
    assert main(["archive", "--data-dir", str(tmp_path), "--now", NOW, "--format", "json"]) == 0
    captured = capsys.readouterr()
    rows = json.loads(captured.out)
    assert {r["day"]: r["ledger_events"] for r in rows} == counts
    assert all(r["sent"] == 0 for r in rows)  # nothing copied
    assert "the ledger is the archive" in captured.err
    # replay into the embedded series store reads the ledger
    assert main(["archive", "replay", "--data-dir", str(tmp_path), "--since", "2026-10-30",
                 "--until", "2026-11-01", "--into", "series", "--format", "json"]) == 0  # fmt: skip
    (summary,) = json.loads(capsys.readouterr().out)
    assert summary["events_read"] > 0 and summary["points"] > 0
    with SeriesStore(tmp_path / "series.duckdb") as series:
        assert len(series.read("revenue_daily")) > 0
    # drill-down lists the ledger's events as CSV
    assert main(["archive", "events", "--data-dir", str(tmp_path), "--since", "2026-10-30",
                 "--until", "2026-10-31", "--format", "csv", "--limit", "100000"]) == 0  # fmt: skip
    listed = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert len(listed) == counts["2026-10-30"]
    # retention without an archive is refused (one line, exit 2)
    assert main(["archive", "trim", "--data-dir", str(tmp_path), "--now", NOW]) == 2
    assert "nothing is trimmed" in capsys.readouterr().err


def _config(tmp_path: Path, emulator: BigQueryEmulator, dataset: str) -> Path:
    path = tmp_path / "growthwatch.yaml"
    path.write_text(yaml.safe_dump({
        "storage": {"data_dir": str(tmp_path)},
        "products": [{"id": "acme-crm"}],
        "archive": {"bigquery": {"project": emulator.project, "dataset": dataset,
                                 "api_endpoint": emulator.url},
                    "schedule": {"every": "1h", "close_after": "2h", "metrics": False}},
    }))  # fmt: skip
    return path


@pytest.mark.bigquery
def test_archive_command_backfills_and_resumes_nothing_twice(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], bigquery_emulator: BigQueryEmulator
) -> None:
    counts = _ledger_counts(tmp_path / "ledger.duckdb")
    config = _config(tmp_path, bigquery_emulator, "cli_backfill")
    args = ["archive", "--config", str(config), "--now", NOW, "--since", "2026-10-30"]
    assert main([*args, "--format", "csv"]) == 0
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert {r["day"]: int(r["added"]) for r in rows} == {
        d: n for d, n in counts.items() if d >= "2026-10-30"
    }
    assert main([*args, "--format", "json"]) == 0  # again: nothing left to do
    captured = capsys.readouterr()
    assert json.loads(captured.out) == [] and "every closed day is archived" in captured.err
    assert main(["archive", "status", "--config", str(config), "--now", NOW,
                 "--format", "json"]) == 0  # fmt: skip
    status = {r["day"]: r for r in json.loads(capsys.readouterr().out)}
    assert status["2026-10-29"]["pending"] == "yes" and status["2026-10-30"]["pending"] == ""
    assert main(["archive", "schema", "--format", "json"]) == 0
    schema = json.loads(capsys.readouterr().out)
    assert {"table": "events", "column": "ts", "type": "TIMESTAMP", "mode": "REQUIRED",
            "role": "partition (DAY)"}.items() <= next(
        r for r in schema if r["column"] == "ts").items()  # fmt: skip


def test_retention_without_bigquery_is_a_config_error() -> None:
    with pytest.raises(ValueError, match=r"needs archive\.bigquery"):
        ArchiveSettings.from_section({"retention": {"ledger_days": 120}})


class _Service:
    """What ``attach`` uses of ``exporters.service.Service``."""

    def __init__(self, config: Config, ledger: object, series: object) -> None:
        self.config, self.ledger, self.series, self.influx = config, ledger, series, None


@pytest.mark.bigquery
def test_serve_archives_closed_days_on_its_schedule(
    tmp_path: Path, bigquery_emulator: BigQueryEmulator
) -> None:
    ledger = build_ledger(tmp_path / "ledger.duckdb", SMALL)
    series = SeriesStore(tmp_path / "series.duckdb")
    raw = {"archive": {"bigquery": {"project": bigquery_emulator.project, "dataset": "serve_t",
                                    "api_endpoint": bigquery_emulator.url},
                       "schedule": {"every": "1h", "close_after": "2h", "metrics": False}}}  # fmt: skip
    assert attach(_Service(Config(products=(), data_dir=tmp_path), ledger, series)) is None
    service = _Service(Config(products=(), data_dir=tmp_path, raw=raw), ledger, series)
    settings = ArchiveSettings.from_config(service.config)
    attached = ScheduledArchive(service, settings, now=lambda: datetime(2026, 11, 1, 1, tzinfo=UTC))
    # at 01:00 with close_after 2h, 2026-10-31 is not closed yet
    deadline = time.monotonic() + 60
    while attached.runs < 1 and time.monotonic() < deadline:
        time.sleep(0.2)
    attached.close()
    assert attached.runs >= 1
    position = json.loads((tmp_path / "archive-state.json").read_text())
    days = position["targets"][f"bigquery {bigquery_emulator.project}.serve_t"]["days"]
    assert sorted(days) == ["2026-10-29", "2026-10-30"]
    series.close()
    ledger.close()


def test_archive_config_keys_are_checked_and_typed(tmp_path: Path) -> None:
    from growthwatch import ConfigError, load_config

    section = {"bigquery": {"project": "p", "dataset": "d", "location": "EU",
                            "credentials_file": "${GW_TEST_CREDS}",
                            "api_endpoint": "http://127.0.0.1:9050",
                            "storage_endpoint": "127.0.0.1:9060"},
               "schedule": {"every": "30m", "close_after": "3h", "metrics": False},
               "retention": {"ledger_days": 120, "influx_days": 30}}  # fmt: skip
    path = tmp_path / "ok.yaml"
    path.write_text(yaml.safe_dump({"products": [{"id": "a"}], "archive": section}))
    settings = ArchiveSettings.from_config(load_config(path))
    assert settings.bigquery is not None and settings.bigquery.storage_endpoint == "127.0.0.1:9060"
    assert settings.schedule.every.total_seconds() == 1800 and not settings.schedule.metrics
    assert settings.schedule.close_after.total_seconds() == 3 * 3600
    assert (settings.retention.ledger_days, settings.retention.influx_days) == (120, 30)
    bad = {**section, "retention": {"ledger_days": 30}}  # shorter than the engine's windows
    path.write_text(yaml.safe_dump({"products": [{"id": "a"}], "archive": bad}))
    with pytest.raises(ConfigError, match="ledger_days"):
        load_config(path)
    inline = {**section, "bigquery": {**section["bigquery"], "credentials_file": "/k.json"}}
    path.write_text(yaml.safe_dump({"products": [{"id": "a"}], "archive": inline}))
    with pytest.raises(ConfigError, match="credentials_file"):
        load_config(path)


@pytest.mark.bigquery
def test_ctrl_c_then_the_same_command_resumes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], bigquery_emulator: BigQueryEmulator,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    from bigquery_archive.bq_client import BigQueryArchive

    counts = _ledger_counts(tmp_path / "ledger.duckdb")
    config = _config(tmp_path, bigquery_emulator, "cli_resume")
    real = BigQueryArchive.load_events
    loads: list[str] = []

    def once_interrupted(self: BigQueryArchive, day: datetime, path: Path, rows: int):  # type: ignore[no-untyped-def]
        loads.append(day.date().isoformat())
        if len(loads) == 2:
            raise KeyboardInterrupt
        return real(self, day, path, rows)

    monkeypatch.setattr(BigQueryArchive, "load_events", once_interrupted)
    args = ["archive", "--config", str(config), "--now", NOW, "--format", "json"]
    assert main(args) == 130  # interrupted: exit code of SIGINT
    assert "interrupted" in capsys.readouterr().err
    monkeypatch.setattr(BigQueryArchive, "load_events", real)
    assert main(args) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [r["day"] for r in rows] == ["2026-10-30", "2026-10-31"]  # 10-29 was done
    assert main(["archive", "status", "--config", str(config), "--now", NOW,
                 "--format", "json"]) == 0  # fmt: skip
    status = json.loads(capsys.readouterr().out)
    assert {r["day"]: r["archived_rows"] for r in status} == counts
    assert all(r["pending"] == "" for r in status)
