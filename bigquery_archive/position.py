"""The archive's persisted position: per UTC day, how far the ledger was archived.

For each day it keeps the ledger's highest ``seq`` and event count at the time the day was
loaded. The ledger gives every stored event a growing ``seq``, so a late event for a day
already archived shows up as a day whose ledger ``max(seq)`` is higher than the position's:
the next run loads just those rows (``seq >`` the recorded one) and the MERGE adds them.

Written atomically after every day (temp file + rename), so an interrupted backfill
resumes at the first day not recorded; a day whose load was cut off half-way is simply
loaded again (the MERGE makes that harmless). Keyed by the archive target, so pointing the
config at another dataset starts over instead of skipping days that were never there.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

STATE_FILE = "archive-state.json"


@dataclass
class DayPosition:
    max_seq: int
    count: int  # ledger events of the day when it was archived
    archived: int  # rows the archive added for the day (all runs)
    at: str  # when (ISO)

    def to_json(self) -> dict[str, Any]:
        return {"max_seq": self.max_seq, "count": self.count, "archived": self.archived,
                "at": self.at}  # fmt: skip


@dataclass
class ArchivePosition:
    path: Path | None
    target: str = ""
    days: dict[str, DayPosition] = field(default_factory=dict)
    trimmed_before: str | None = None  # ISO date: ledger trimmed before this day
    influx_trimmed_before: str | None = None

    @classmethod
    def load(cls, path: Path | None, target: str) -> ArchivePosition:
        if path is None or not path.exists():
            return cls(path, target)
        raw = json.loads(path.read_text())
        entry = raw.get("targets", {}).get(target, {})
        days = {d: DayPosition(int(v["max_seq"]), int(v["count"]), int(v.get("archived", 0)),
                               str(v.get("at", ""))) for d, v in entry.get("days", {}).items()}  # fmt: skip
        return cls(path, target, days, entry.get("trimmed_before"),
                   entry.get("influx_trimmed_before"))  # fmt: skip

    def save(self) -> None:
        if self.path is None:
            return
        raw: dict[str, Any] = {"targets": {}}
        if self.path.exists():
            raw = json.loads(self.path.read_text())
        raw.setdefault("targets", {})[self.target] = {
            "days": {d: p.to_json() for d, p in sorted(self.days.items())},
            "trimmed_before": self.trimmed_before,
            "influx_trimmed_before": self.influx_trimmed_before,
        }
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(raw, indent=1))
        tmp.replace(self.path)

    def seq_of(self, day: date) -> int:
        pos = self.days.get(day.isoformat())
        return pos.max_seq if pos is not None else 0

    def archived_through(self) -> date | None:
        """The last day of the unbroken run of archived days from the first one."""
        if not self.days:
            return None
        return date.fromisoformat(max(self.days))
