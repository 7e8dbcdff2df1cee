"""One contract for reading and writing series, run against both stores.

The detector, the report and the archive replay read through ``SeriesReader`` and write
through ``SeriesWriter``; whatever store is configured, they must see the same frame.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd
import pytest

from growthwatch.points import PointBatch
from growthwatch.stores.influx import InfluxStore
from growthwatch.stores.interfaces import SeriesReader, SeriesWriter, WriteResult
from growthwatch.stores.series import SeriesStore
from growthwatch.testing.servers import InfluxServer

T0 = datetime(2026, 3, 1, tzinfo=UTC)


def mrr(values: dict[str, list[float]], rate: list[float] | None = None) -> PointBatch:
    """Daily points per product: field ``mrr`` (float) and ``active`` (int)."""
    rows = []
    for product, series in values.items():
        for i, v in enumerate(series):
            rows.append({"time": T0 + timedelta(days=i), "product": product, "mrr": v,
                         "active": int(v // 10),
                         "churn_rate": (rate[i] if rate else 0.1)})  # fmt: skip
    frame = pd.DataFrame(rows)
    frame["time"] = pd.to_datetime(frame["time"], utc=True)
    frame["active"] = frame["active"].astype("int64")
    return PointBatch("contract_mrr", frame, ("product",), ("mrr", "active", "churn_rate"))


@pytest.fixture(params=["embedded", "influx"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[SeriesReader]:
    if request.param == "embedded":
        s = SeriesStore(tmp_path / "series.duckdb")
        yield s
        s.close()
    else:
        server: InfluxServer = request.getfixturevalue("influx_server")
        db = request.getfixturevalue("influx_db")
        s2 = InfluxStore(server.url, db)
        s2.ensure_database()
        yield s2


def test_both_stores_implement_both_seams(store: SeriesReader) -> None:
    assert isinstance(store, SeriesReader) and isinstance(store, SeriesWriter)


def test_write_returns_a_write_result_counting_points(store: SeriesWriter) -> None:
    result = store.write(mrr({"acme": [100.0, 110.0], "beta": [50.0, 40.0]}))
    assert isinstance(result, WriteResult) and result.points == 4 and result.spooled == 0


def test_read_gives_time_tags_fields_sorted_by_time_then_tags(store: SeriesStore) -> None:
    store.write(mrr({"beta": [50.0, 40.0], "acme": [100.0, 110.0]}))
    frame = store.read("contract_mrr")
    assert list(frame.columns[:2]) == ["time", "product"]
    assert set(frame.columns) == {"time", "product", "mrr", "active", "churn_rate"}
    assert str(frame["time"].dt.tz) == "UTC"
    assert list(frame["product"]) == ["acme", "beta", "acme", "beta"]
    assert list(frame["mrr"]) == [100.0, 50.0, 110.0, 40.0]
    assert list(frame["active"]) == [10, 5, 11, 4]


def test_read_filters_by_tags_fields_and_half_open_range(store: SeriesStore) -> None:
    store.write(mrr({"acme": [100.0, 110.0, 120.0, 130.0], "beta": [1.0, 2.0, 3.0, 4.0]}))
    frame = store.read("contract_mrr", fields=["mrr"], tags={"product": "acme"},
                       start=T0 + timedelta(days=1), end=T0 + timedelta(days=3))  # fmt: skip
    assert list(frame.columns) == ["time", "product", "mrr"]
    assert list(frame["mrr"]) == [110.0, 120.0]  # day 3 is the exclusive end
    assert list(frame["time"]) == [pd.Timestamp(T0 + timedelta(days=d)) for d in (1, 2)]


def test_rewriting_overwrites_and_nan_clears_a_stored_value(store: SeriesStore) -> None:
    store.write(mrr({"acme": [100.0, 110.0]}, rate=[0.2, 0.3]))
    store.write(mrr({"acme": [101.0, 111.0]}, rate=[float("nan"), 0.4]))
    frame = store.read("contract_mrr", tags={"product": "acme"})
    assert list(frame["mrr"]) == [101.0, 111.0]
    assert frame["churn_rate"].isna().tolist() == [True, False]
    assert frame["churn_rate"].iloc[1] == 0.4


def test_unknown_measurement_or_tag_value_reads_empty(store: SeriesStore) -> None:
    store.write(mrr({"acme": [100.0]}))
    for frame in (store.read("no_such_measurement"),
                  store.read("contract_mrr", tags={"product": "nobody"})):  # fmt: skip
        assert frame.empty and "time" in frame.columns
