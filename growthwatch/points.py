"""Metric points: what metrics produce and what every series store accepts.

A point is identified by (measurement, tags, time): writing the same identity twice
overwrites, which is how InfluxDB itself behaves and what the embedded store copies, so a
recomputation or a replay never double counts. Tags are for low-cardinality dimensions
only (product, plan, channel, country); customer ids never become tags.

``PointBatch`` is the bulk form: one measurement, a frame with a ``time`` column
(datetime64 UTC), the tag columns and the field columns. Stores take batches; single
``Point`` objects are for callers that produce a handful (the webhook path, detectors).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

import pandas as pd

FieldValue = float | int | str | bool


@dataclass(frozen=True, slots=True)
class Point:
    measurement: str
    tags: Mapping[str, str]
    fields: Mapping[str, FieldValue]
    time: datetime

    def __post_init__(self) -> None:
        if self.time.tzinfo is None:
            raise ValueError(f"point time must be timezone-aware: {self.time!r}")
        if not self.fields:
            raise ValueError(f"point {self.measurement} at {self.time} has no fields")


@dataclass(frozen=True, slots=True)
class PointBatch:
    measurement: str
    frame: pd.DataFrame
    tags: tuple[str, ...] = ()
    fields: tuple[str, ...] = field(default=())

    def __post_init__(self) -> None:
        missing = [c for c in ("time", *self.tags, *self.fields) if c not in self.frame]
        if missing:
            raise ValueError(f"batch {self.measurement}: frame lacks columns {missing}")
        if not self.fields:
            raise ValueError(f"batch {self.measurement}: no field columns")
        tz = getattr(self.frame["time"].dt, "tz", None)
        if tz is None:
            raise ValueError(f"batch {self.measurement}: time column must be tz-aware UTC")

    def __len__(self) -> int:
        return len(self.frame)

    @classmethod
    def from_points(cls, points: Sequence[Point]) -> list[PointBatch]:
        """Group single points into one batch per measurement and tag/field key set."""
        groups: dict[tuple[str, tuple[str, ...], tuple[str, ...]], list[Point]] = {}
        for p in points:
            key = (p.measurement, tuple(sorted(p.tags)), tuple(sorted(p.fields)))
            groups.setdefault(key, []).append(p)
        batches = []
        for (measurement, tags, fields), members in groups.items():
            frame = pd.DataFrame(
                {
                    "time": pd.to_datetime([p.time.astimezone(UTC) for p in members], utc=True),
                    **{t: [p.tags[t] for p in members] for t in tags},
                    **{f: [p.fields[f] for p in members] for f in fields},
                }
            )
            batches.append(cls(measurement, frame, tags, fields))
        return batches


def concat(batches: Iterable[PointBatch]) -> list[PointBatch]:
    """Merge batches of the same measurement and columns (fewer, larger writes)."""
    merged: dict[tuple[str, tuple[str, ...], tuple[str, ...]], list[pd.DataFrame]] = {}
    for b in batches:
        merged.setdefault((b.measurement, b.tags, b.fields), []).append(b.frame)
    return [
        PointBatch(m, pd.concat(frames, ignore_index=True), tags, fields)
        for (m, tags, fields), frames in merged.items()
    ]
