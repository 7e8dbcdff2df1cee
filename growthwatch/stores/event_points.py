"""Raw growth events as InfluxDB points (measurement ``growth_events``), for Explore.

Analysts look at individual events in Grafana Explore, so each event is also written as one
point. InfluxDB keys a point by (measurement, tags, time): two events of one product and type
in the same millisecond would overwrite each other. The point time is therefore the event
time truncated to the millisecond plus a nanosecond offset (0..999,999):

* from the event's ledger ``seq`` when the frame has it (the live path, the demo): ``seq``
  is unique and never changes for an event, so events of one millisecond get distinct
  offsets unless their seqs differ by a multiple of a million (a million events between
  them, all in the same millisecond of event time: never, in practice), and re-sending an
  event overwrites its own point;
* else from the idempotency key (20 bits): deterministic across ledgers (an archive replay
  into a fresh ledger), at the price of a small chance of collision when many events share
  a millisecond (two in 187,077 demo events did, with 1,109 events in one millisecond).

Customer ids are a field, never a tag (cardinality).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from growthwatch.points import PointBatch

MEASUREMENT = "growth_events"


# The ledger columns a point is made of, with ``seq`` (``Ledger.append(read_back=...)``);
# without ``seq`` the time offset needs ``idempotency_key`` too.
POINT_COLUMNS = ("ts", "product", "type", "source", "value", "subject")


def event_time_ns(
    ts: pd.Series, keys: pd.Series | None, seq: pd.Series | None = None
) -> pd.Series:
    ms = ts.dt.tz_convert("UTC").astype("datetime64[ns, UTC]").astype("int64") // 1_000_000
    if seq is not None:
        offset = seq.to_numpy(dtype="int64") % 1_000_000
    else:
        if keys is None:
            raise ValueError("event points need a seq or an idempotency_key column")
        offset = np.array([int(k[:8], 16) % 1_000_000 for k in keys], dtype="int64")
    return pd.Series(ms * 1_000_000 + offset, index=ts.index)


def event_points(events: pd.DataFrame) -> PointBatch:
    """One point per event: tags product, type, source; fields value, subject (if any)."""
    seq = events.get("seq")
    ns = event_time_ns(events["ts"], events.get("idempotency_key"), seq)
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
