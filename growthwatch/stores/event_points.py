"""Raw growth events as InfluxDB points (measurement ``growth_events``), for Explore.

Analysts look at individual events in Grafana Explore, so each event is also written as one
point. InfluxDB keys a point by (measurement, tags, time): two events of one product and type
in the same millisecond would overwrite each other. The point time is therefore the event
time truncated to the millisecond plus a nanosecond offset (0..999,999) taken from the
event's idempotency key: deterministic, so a replay overwrites the same point instead of
adding one, and distinct events collide only if their keys agree on 20 bits *and* they fall
in the same millisecond of the same product and type.

Customer ids are a field, never a tag (cardinality).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from growthwatch.points import PointBatch

MEASUREMENT = "growth_events"


def event_time_ns(ts: pd.Series, keys: pd.Series) -> pd.Series:
    ms = ts.dt.tz_convert("UTC").astype("datetime64[ns, UTC]").astype("int64") // 1_000_000
    offset = np.array([int(k[:8], 16) % 1_000_000 for k in keys], dtype="int64")
    return pd.Series(ms * 1_000_000 + offset, index=ts.index)


def event_points(events: pd.DataFrame) -> PointBatch:
    """One point per event: tags product, type, source; fields value, subject (if any)."""
    ns = event_time_ns(events["ts"], events["idempotency_key"])
    frame = pd.DataFrame(
        {
            "time": pd.to_datetime(ns, unit="ns", utc=True),
            "product": events["product"],
            "type": events["type"],
            "source": events["source"],
            "value": events["value"].astype("float64"),
            "subject": events["subject"].astype(object),
        }
    )
    return PointBatch(MEASUREMENT, frame, ("product", "type", "source"), ("value", "subject"))
