"""``growthwatch customers`` / ``customer`` on a trimmed ledger read the older events from
the archive (the core's ``older_events`` seam, registered by ``bigquery_archive``) and say so.

Expected rows are the hand-written events below, never the drill-down's own output.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
import yaml
from archive_cases import new_archive

from bigquery_archive.embedded import LedgerArchive
from bigquery_archive.history import history_types
from bigquery_archive.older import ArchivedEvents, open_archived_events
from bigquery_archive.position import ArchivePosition
from growthwatch import EventType, GrowthEvent, Ledger, MetricsSettings
from growthwatch.cli import main
from growthwatch.cli.customers import customer_timeline, movements_of
from growthwatch.older_events import open_older_events
from growthwatch.testing.servers import BigQueryEmulator

S = MetricsSettings()
CUT = datetime(2026, 3, 1, tzinfo=UTC)  # the ledger keeps everything from here on


def _ev(kind: str, day: str, subject: str = "c1", before: int | None = None,
        after: int | None = None) -> GrowthEvent:  # fmt: skip
    money = before is not None
    return GrowthEvent(
        product="p1", type=EventType(kind), value=(after - before) if money else 1,  # type: ignore[operator]
        timestamp=datetime.fromisoformat(f"{day}T12:00:00+00:00"), source="test",
        source_id=f"{subject}-{kind}-{day}", subject=subject,
        currency="USD" if money else None, mrr_before=before, mrr_after=after,
        metadata={"subscription": f"sub-{subject}"} if money else {},
    )  # fmt: skip


# c1: (day, type, origin after the trim)
C1 = [
    ("2026-01-02", "signup", "archive"),
    ("2026-01-05", "subscription_started", "archive"),
    ("2026-01-06", "active_use", "archive"),  # trimmed: a window type
    ("2026-02-10", "subscription_paused", "archive"),  # trimmed by retention before the fix
    ("2026-02-12", "active_use", "archive"),  # trimmed
    ("2026-03-10", "subscription_resumed", "ledger"),
    ("2026-03-15", "active_use", "ledger"),
    ("2026-04-20", "subscription_cancelled", "ledger"),
]


def events() -> list[GrowthEvent]:
    mrr = {"subscription_started": (0, 50), "subscription_paused": (50, 0),
           "subscription_resumed": (0, 50), "subscription_cancelled": (50, 0)}  # fmt: skip
    out = [_ev(kind, day, "c1", *mrr.get(kind, (None, None))) for day, kind, _ in C1]
    return [*out, _ev("subscription_started", "2026-02-01", "c2", 0, 20),
            _ev("active_use", "2026-02-02", "c2")]  # fmt: skip


def trimmed(path: Path) -> Ledger:
    """A ledger with the events, trimmed before CUT as retention did before pauses were a
    history type (so the pause and the old activity are gone from it)."""
    ledger = Ledger(path)
    ledger.append(events())
    old_keep = [t for t in history_types(S) if t not in ("subscription_paused",
                                                          "subscription_resumed")]  # fmt: skip
    assert ledger.delete_before(CUT, keep_types=old_keep) == 4  # c1: 3, c2: 1
    return ledger


def test_timeline_and_movements_read_the_archive_before_the_boundary(tmp_path: Path) -> None:
    full = Ledger(tmp_path / "full.duckdb")  # the embedded archive backend over a full copy
    full.append(events())
    ledger = trimmed(tmp_path / "ledger.duckdb")
    archive = LedgerArchive(full)
    position = ArchivePosition(tmp_path / "archive-state.json", archive.name,
                               trimmed_before="2026-03-01")  # fmt: skip
    older = ArchivedEvents(archive, position)

    alone = customer_timeline(ledger, S, "p1", "c1")
    assert len(alone) == 5 and set(alone["origin"]) == {"ledger"}  # what the ledger kept
    assert alone.attrs["archive"] == ""

    line = customer_timeline(ledger, S, "p1", "c1", older)
    assert [(t.strftime("%Y-%m-%d"), k, o) for t, k, o in
            zip(line["time"], line["type"], line["origin"], strict=True)] == C1  # fmt: skip
    assert "trimmed before 2026-03-01" in line.attrs["archive"]
    assert "ledger (embedded" in line.attrs["archive"]

    # the pause exists only in the archive: without it the ledger shows no pause at all
    assert movements_of(ledger, S, "p1", "paused").empty
    paused = movements_of(ledger, S, "p1", "paused", older=older)
    assert list(paused["customer"]) == ["c1"] and list(paused["amount"]) == [50.0]
    resumed = movements_of(ledger, S, "p1", "resumed", older=older)
    assert list(resumed["amount"]) == [50.0]
    assert "archive" in paused.attrs["archive"]
    full.close()
    ledger.close()


def test_an_untrimmed_position_opens_no_archive(tmp_path: Path) -> None:
    ledger = Ledger(tmp_path / "ledger.duckdb")
    ledger.append(events())
    assert open_archived_events(None, tmp_path, ledger) is None  # embedded, never trimmed
    assert open_older_events(None, tmp_path, ledger) is None
    ledger.close()


@pytest.mark.bigquery
def test_cli_drilldown_on_a_ledger_trimmed_by_retention(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], bigquery_emulator: BigQueryEmulator
) -> None:
    dataset = new_archive(bigquery_emulator).dataset
    ledger = Ledger(tmp_path / "ledger.duckdb")
    ledger.append(events())
    ledger.close()
    config = tmp_path / "growthwatch.yaml"
    config.write_text(yaml.safe_dump({
        "storage": {"data_dir": str(tmp_path)},
        "products": [{"id": "p1"}],
        "archive": {"bigquery": {"project": bigquery_emulator.project, "dataset": dataset,
                                 "api_endpoint": bigquery_emulator.url},
                    "retention": {"ledger_days": 90}},
    }))  # fmt: skip
    now = "2026-05-30T06:00:00+00:00"  # 90 days after the cut, every day before it closed
    base = ["--config", str(config)]
    assert main(["archive", *base, "--now", now, "--no-metrics", "--format", "json"]) == 0
    assert main(["archive", "trim", *base, "--now", now, "--format", "json"]) == 0
    capsys.readouterr()
    with Ledger(tmp_path / "ledger.duckdb") as check:  # retention really deleted old activity:
        # of c1's Jan 6 and Feb 12 and c2's Feb 2 only each user's first is left
        assert check.count(types=["active_use"], end=CUT) == 2

    assert main(["customer", "c1", "--product", "p1", *base, "--format", "json"]) == 0
    out = capsys.readouterr()
    rows = json.loads(out.out)
    assert [(r["time"][:10], r["type"], r["origin"]) for r in rows] == C1
    assert "trimmed before 2026-03-01: older events read from the archive (bigquery " in out.err

    assert main(["customers", "--product", "p1", "--movement", "new", *base,
                 "--format", "json"]) == 0  # fmt: skip
    out = capsys.readouterr()
    assert [(r["customer"], r["amount"]) for r in json.loads(out.out)] == [("c1", 50.0),
                                                                          ("c2", 20.0)]  # fmt: skip
    assert "older events read from the archive" in out.err


def test_an_unreadable_archive_is_one_clear_error(tmp_path: Path) -> None:
    from growthwatch.cli.common import CliError

    class Down(ArchivedEvents):
        def read_before(self, end: datetime, **kw: object) -> object:  # type: ignore[override]
            raise ConnectionError("connection refused")

    ledger = trimmed(tmp_path / "ledger.duckdb")
    position = ArchivePosition(None, "x", trimmed_before="2026-03-01")
    older = Down(LedgerArchive(ledger), position)
    with pytest.raises(CliError, match=r"trimmed before 2026-03-01 and the archive \(ledger "
                       r".*could not be read: connection refused"):  # fmt: skip
        customer_timeline(ledger, S, "p1", "c1", older)
    ledger.close()
