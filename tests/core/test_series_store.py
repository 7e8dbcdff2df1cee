"""Embedded series store: keyed overwrite like InfluxDB, wide reads, tag filters."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pandas as pd

from growthwatch.points import Point, PointBatch
from growthwatch.stores.series import SeriesStore

D1, D2 = datetime(2025, 1, 1, tzinfo=UTC), datetime(2025, 1, 2, tzinfo=UTC)


def revenue(values: list[float]) -> PointBatch:
    frame = pd.DataFrame(
        {
            "time": pd.to_datetime([D1, D1, D2], utc=True),
            "product": ["a", "b", "a"],
            "net": values,
            "count": pd.Series([1, 2, 3], dtype="int64"),
        }
    )
    return PointBatch("revenue", frame, ("product",), ("net", "count"))


def test_rewrite_overwrites_and_never_adds(tmp_path: Path) -> None:
    store = SeriesStore(tmp_path / "s.duckdb")
    assert store.write(revenue([1.0, 2.0, 3.0])).points == 3
    store.write(revenue([10.0, 20.0, 30.0]))
    assert store.count("revenue") == 3
    frame = store.read("revenue")
    assert frame[["product", "net", "count"]].values.tolist() == [
        ["a", 10.0, 1], ["b", 20.0, 2], ["a", 30.0, 3]
    ]  # fmt: skip
    only_a = store.read("revenue", tags={"product": "a"}, start=D2)
    assert only_a["net"].tolist() == [30.0]


def test_points_and_strings_and_delete() -> None:
    store = SeriesStore()
    batches = PointBatch.from_points(
        [Point("notes", {"product": "a"}, {"text": "hello", "n": 1.0}, D1),
         Point("notes", {"product": "a"}, {"text": "again", "n": 2.0}, D2)]
    )  # fmt: skip
    store.write(batches)
    assert store.read("notes")["text"].tolist() == ["hello", "again"]
    store.delete("notes", start=D2)
    assert store.read("notes")["n"].tolist() == [1.0]
    assert store.measurements() == ["notes"]


def rates(churn: list[float], active: list[int]) -> PointBatch:
    frame = pd.DataFrame(
        {
            "time": pd.to_datetime([D1, D2], utc=True),
            "product": ["a", "a"],
            "active": pd.Series(active, dtype="int64"),
            "churn_rate": churn,
        }
    )
    return PointBatch("churn", frame, ("product",), ("active", "churn_rate"))


def test_an_undefined_value_clears_the_stored_one() -> None:
    """A rate whose denominator fell to zero is undefined: the old value must go, not stay."""
    store = SeriesStore()
    store.write(rates([0.25, 0.5], [4, 2]))
    store.write(rates([float("nan"), 0.75], [0, 4]))
    frame = store.read("churn")
    assert frame["active"].tolist() == [0, 4]
    assert pd.isna(frame["churn_rate"].iloc[0])
    assert frame["churn_rate"].iloc[1] == 0.75
    assert store.count("churn") == 2
