"""Event frames: the same rules as GrowthEvent, applied to whole frames without losing rows."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pandas as pd
import pytest

from growthwatch.events import GrowthEvent
from growthwatch.frames import (
    FrameValidationError,
    check_frame,
    events_to_frame,
    frame_to_events,
    validate_frame,
)

T0 = datetime(2025, 1, 1, tzinfo=UTC)


def sample_events() -> list[GrowthEvent]:
    return [
        GrowthEvent(product="a", type="payment", timestamp=T0, value=Decimal("10.50"),  # type: ignore[arg-type]
                    currency="EUR", subject="c1", source="demo", source_id="p1"),
        GrowthEvent(product="a", type="subscription_started", timestamp=T0 + timedelta(hours=1),  # type: ignore[arg-type]
                    value=Decimal("83.25"), mrr_before=Decimal(0), mrr_after=Decimal("83.25"),
                    currency="GBP", subject="c1", source="demo", source_id="s1",
                    metadata={"plan": "annual", "subscription": "sub_1"}),
        GrowthEvent(product="b", type="session", timestamp=T0, value=Decimal(4),  # type: ignore[arg-type]
                    source="ga4", source_id="g1", metadata={"channel": "paid_search"}),
    ]  # fmt: skip


def test_round_trip_events_frame_events() -> None:
    events = sample_events()
    frame = events_to_frame(events)
    assert frame["plan"].tolist()[1] == "annual" and frame["channel"].tolist()[2] == "paid_search"
    again = list(frame_to_events(frame))
    assert again == events
    checked, problems = check_frame(frame)
    assert problems == []
    assert checked["idempotency_key"].tolist() == [e.idempotency_key for e in events]


def test_bad_rows_are_split_off_with_reasons_and_good_rows_kept() -> None:
    frame = events_to_frame(sample_events())
    frame = pd.concat([frame, frame.iloc[[0, 0, 0, 0]]], ignore_index=True)
    frame.loc[3, "currency"] = "EURO"
    frame.loc[4, "ts"] = pd.NaT
    frame.loc[5, "value"] = -3.0
    frame.loc[6, "metadata"] = "{not json"
    frame.loc[3:6, "source_id"] = ["x3", "x4", "x5", "x6"]
    good, problems = check_frame(frame)
    assert good.index.tolist() == [0, 1, 2]
    by_row = {p.row: p for p in problems}
    assert by_row[3].field == "currency" and by_row[3].value == "EURO"
    assert by_row[4].field == "ts"
    assert by_row[5].field == "value" and "positive" in by_row[5].reason
    assert by_row[6].field == "metadata"
    with pytest.raises(FrameValidationError, match="4 invalid event row"):
        validate_frame(frame)


def test_naive_timestamps_rejected() -> None:
    frame = events_to_frame(sample_events())
    frame["ts"] = frame["ts"].dt.tz_localize(None)
    good, problems = check_frame(frame)
    assert good.empty and {p.field for p in problems} == {"ts"}


def test_channel_and_plan_lifted_from_metadata_json() -> None:
    frame = pd.DataFrame(
        {
            "product": ["a"], "type": ["session"], "ts": [T0], "value": [2.0],
            "source": ["ga4"], "source_id": ["r1"],
            "metadata": [json.dumps({"channel": "email"})],
        }
    )  # fmt: skip
    good, problems = check_frame(frame)
    assert problems == [] and good["channel"].tolist() == ["email"]
    missing = frame.assign(metadata=[json.dumps({"other": 1})])
    good, problems = check_frame(missing)
    assert good.empty and problems[0].field == "metadata.channel"


def test_missing_required_column() -> None:
    with pytest.raises(FrameValidationError, match="source_id"):
        check_frame(pd.DataFrame({"product": ["a"], "type": ["signup"], "ts": [T0],
                                  "value": [1.0], "source": ["x"]}))  # fmt: skip
