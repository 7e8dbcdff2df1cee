"""Raw event points: one InfluxDB point per event, however many share a millisecond."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pandas as pd

from growthwatch.events import GrowthEvent
from growthwatch.frames import events_to_frame
from growthwatch.stores.event_points import event_points
from growthwatch.stores.influx import InfluxStore
from growthwatch.stores.ledger import Ledger
from growthwatch.testing.servers import InfluxServer

AT = datetime(2026, 3, 1, 12, 0, 0, 123_000, tzinfo=UTC)


def burst(n: int) -> list[GrowthEvent]:
    """n signups of one product in the same millisecond (a bulk import does this)."""
    return [GrowthEvent(product="acme", type="signup", value=1,
                        timestamp=AT + timedelta(microseconds=i % 1000),
                        subject=f"u{i}", source="csv", source_id=f"row-{i}", kind="signup")
            for i in range(n)]  # fmt: skip


def test_events_in_one_millisecond_get_distinct_points_that_replay_onto_themselves(
    tmp_path: object, influx_server: InfluxServer, influx_db: str
) -> None:
    with Ledger(tmp_path / "ledger.duckdb") as ledger:  # type: ignore[operator]
        ledger.append(burst(5_000))
        events = ledger.read(with_seq=True)
    points = event_points(events)
    assert points.frame["time"].nunique() == 5_000
    assert (points.frame["time"].dt.floor("ms") == pd.Timestamp(AT)).all()  # same millisecond
    again = event_points(events.sample(frac=1.0, random_state=1))  # any order, same points
    assert set(again.frame["time"]) == set(points.frame["time"])
    store = InfluxStore(influx_server.url, influx_db)
    store.ensure_database()
    store.write(points)
    store.write(again)  # a replay overwrites, never adds
    (row,) = influx_server.query('SELECT count("value") FROM "growth_events"', influx_db)
    assert row["count"] == 5_000


def test_without_seq_the_offset_still_comes_from_the_event_alone() -> None:
    frame = events_to_frame(burst(3))
    first, second = event_points(frame), event_points(frame.iloc[::-1])
    assert sorted(first.frame["time"]) == sorted(second.frame["time"])
