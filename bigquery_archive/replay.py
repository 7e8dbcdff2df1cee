"""Replay: rebuild the ledger, the embedded series store or InfluxDB from the archive.

For series (``into`` series or influx) the archived events the range depends on are put in
a private, temporary ledger, and the same ``MetricsEngine`` recomputes the buckets of
[since, until) from it into the target stores: what ``growthwatch metrics recompute`` would
have written from the original ledger, after InfluxDB retention dropped the points, after
a metric definition changed, or on a new machine. The events read are the history types
(``history.py``) from the first archived day and every other type from ``window_start``.
Buckets that straddle ``until`` (a month, a year) are computed from the events before
``until``, as the engine would have computed them at that moment.

For the ledger, the archived events of [since, until) are appended day by day; the
ledger's idempotency key makes that safe to repeat.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd

from bigquery_archive.archiver import day_start
from bigquery_archive.backend import Archive
from bigquery_archive.history import FIRST_TYPES, history_types, window_start, window_types
from growthwatch import Ledger, MetricsEngine, MetricsSettings, event_points

Progress = Callable[[str, int], None]  # (what, events)
TARGETS = ("ledger", "series", "influx")
EPOCH = date(2000, 1, 1)  # lower bound of "all history" reads (still a partition filter)


@dataclass
class ReplayResult:
    into: str
    events_read: int = 0
    inserted: int = 0  # ledger: new rows
    points: int = 0  # series/influx: metric points written
    raw_points: int = 0  # influx: growth_events points
    days: list[dict[str, Any]] = field(default_factory=list)


def replay_ledger(
    archive: Archive, ledger: Ledger, since: date, until: date,
    progress: Progress | None = None,
) -> ReplayResult:  # fmt: skip
    result = ReplayResult("ledger")
    day = since
    while day < until:
        start = day_start(day)
        frame = archive.read_events(start, start + timedelta(days=1))
        appended = ledger.append(frame) if len(frame) else None
        inserted = appended.inserted if appended is not None else 0
        result.events_read += len(frame)
        result.inserted += inserted
        result.days.append({"day": day.isoformat(), "archived": len(frame), "inserted": inserted})
        if progress is not None:
            progress(day.isoformat(), len(frame))
        day += timedelta(days=1)
    return result


def first_events(
    archive: Archive, start: datetime, end: datetime, types: Sequence[str]
) -> tuple[pd.DataFrame, int]:
    """Each (product, subject)'s first event of ``types`` in [start, end), and how many
    rows were read: a month at a time from the first archived day, so memory holds one
    month plus one row per user, not the whole history of a high-volume type."""
    counts = archive.day_counts(start, end)
    if not counts:
        return pd.DataFrame(), 0
    cursor = max(start, day_start(date.fromisoformat(min(counts))))
    parts: list[pd.DataFrame] = []
    scanned = 0
    while cursor < end:
        month = (cursor.replace(day=1) + timedelta(days=32)).replace(day=1)  # the next one
        nxt = min(end, month)
        frame = archive.read_events(cursor, nxt, types=list(types))
        scanned += len(frame)
        frame = frame[frame["subject"].notna()]
        parts.append(frame.drop_duplicates(["product", "subject"], keep="first"))  # ledger order
        cursor = nxt
    if not parts:
        return pd.DataFrame(), scanned
    both = pd.concat(parts, ignore_index=True).sort_values(["ts", "idempotency_key"], kind="stable")
    return both.drop_duplicates(["product", "subject"], keep="first"), scanned


def replay_series(
    archive: Archive,
    settings: MetricsSettings,
    stores: Sequence[Any],
    since: date,
    until: date,
    *,
    into: str = "series",
    history_from: date = EPOCH,
    raw_events: Sequence[Any] = (),
    progress: Progress | None = None,
    workdir: Path | None = None,
) -> ReplayResult:
    """Recompute the buckets of [since, until) from archived events into ``stores``;
    ``raw_events`` stores also get the range's events as ``growth_events`` points."""
    result = ReplayResult(into)
    lo, hi = pd.Timestamp(day_start(since)), pd.Timestamp(day_start(until))
    window = window_start(lo, settings)
    with tempfile.TemporaryDirectory(prefix="gw-replay-", dir=workdir) as tmp:
        ledger = Ledger(Path(tmp) / "replay.duckdb")
        try:
            reads = [
                ("history", day_start(history_from), history_types(settings)),
                ("window", window.to_pydatetime(), window_types(settings)),
            ]
            for what, start, types in reads:
                frame = archive.read_events(start, hi.to_pydatetime(), types=list(types))
                if len(frame):
                    ledger.append(frame)
                result.events_read += len(frame)
                if progress is not None:
                    progress(what, len(frame))
            firsts, scanned = first_events(archive, day_start(history_from),
                                           window.to_pydatetime(), FIRST_TYPES)  # fmt: skip
            if len(firsts):
                ledger.append(firsts)
            result.events_read += scanned
            if progress is not None:
                progress("firsts", len(firsts))
            engine = MetricsEngine(ledger, settings)
            run = engine.recompute(list(stores), since=lo, until=hi)
            result.points = run.points
            if raw_events:
                events = ledger.read(start=lo.to_pydatetime(), end=hi.to_pydatetime())
                if len(events):
                    batch = event_points(events)
                    for store in raw_events:
                        store.write([batch])
                    result.raw_points = len(batch)
            if progress is not None:
                progress("metrics", result.points)
        finally:
            ledger.close()
    return result
