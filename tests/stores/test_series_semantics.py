"""The embedded series store against a plain-Python model of its semantics.

A value is keyed by (measurement, tag set, time, field); writing it again replaces it
(within one batch: the last row wins); an undefined value (NaN, NA, inf, None) removes
the stored one; ``delete`` removes by tags and [start, end). Random batches (seeded, so
every run is the same) are written, rewritten, partly undefined, written with a subset of
the fields, and deleted; after every step the store must hold exactly what the dict
model holds, and ``read`` must return exactly the frame the old long-layout store returns
for the same operations (``long_layout_store.py``): columns, dtypes, row order.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from long_layout_store import LongSeriesStore

from growthwatch.points import Point, PointBatch
from growthwatch.stores.series import SeriesStore

T0 = datetime(2026, 3, 1, tzinfo=UTC)
MEASUREMENTS = ("mrr_daily", "Odd Name", "revenue.hourly")
TAGS = ("product", "plan", "Country")
FIELDS = ("mrr", "active", "rate", "flag", "note", "MRR")
Key = tuple[str, str, int, str]  # measurement, tag JSON, time (us), field


class Model:
    """What the store must hold: one dict entry per stored field value."""

    def __init__(self) -> None:
        self.values: dict[Key, Any] = {}

    def write(self, batch: PointBatch) -> None:
        frame = batch.frame
        for i in range(len(frame)):
            tags = {t: frame[t].iloc[i] for t in batch.tags if not _missing(frame[t].iloc[i])}
            key_tags = json.dumps(tags, sort_keys=True)
            when = _micros(frame["time"].iloc[i])
            for field in batch.fields:
                value = frame[field].iloc[i]
                key = (batch.measurement, key_tags, when, field)
                if _missing(value) or (not isinstance(value, str) and not math.isfinite(value)):
                    self.values.pop(key, None)
                else:
                    self.values[key] = value if isinstance(value, str) else float(value)

    def delete(self, measurement: str, tags: dict[str, list[str]], start: datetime | None,
               end: datetime | None) -> None:  # fmt: skip
        for key in list(self.values):
            m, key_tags, when, _ = key
            stored = json.loads(key_tags)
            if m != measurement:
                continue
            if start is not None and when < _micros(start):
                continue
            if end is not None and when >= _micros(end):
                continue
            if all(stored.get(t) in wanted for t, wanted in tags.items()):
                del self.values[key]

    def points(self, measurement: str | None = None) -> set[tuple[str, str, int]]:
        return {k[:3] for k in self.values if measurement is None or k[0] == measurement}


def _missing(value: object) -> bool:
    return value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value))


def _micros(when: Any) -> int:
    return int(pd.Timestamp(when).tz_convert("UTC").value // 1000)


def stored_values(store: SeriesStore, measurement: str) -> dict[Key, Any]:
    """Every field value ``read`` returns, keyed as the model keys them."""
    frame = store.read(measurement)
    tag_columns = [c for c in frame.columns if c in TAGS]
    out: dict[Key, Any] = {}
    for _, row in frame.iterrows():
        tags = {t: row[t] for t in tag_columns if not _missing(row[t])}
        for field in frame.columns:
            if field == "time" or field in tag_columns or _missing(row[field]):
                continue
            key = (measurement, json.dumps(tags, sort_keys=True), _micros(row["time"]), field)
            out[key] = comparable(row[field])
    return out


def comparable(value: Any) -> Any:
    """A value as ``read`` may give it back: it turns a column of numeric texts ("42")
    into numbers, as the store always has."""
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return value
    return float(value)


def random_batch(rng: np.random.Generator, measurement: str | None = None) -> PointBatch:
    """2-30 rows over few times and tag values, so keys collide within and across
    batches; fields of every dtype a producer gives, with undefined values mixed in."""
    m = measurement or str(rng.choice(MEASUREMENTS))
    n = int(rng.integers(1, 30))
    tags = tuple(str(t) for t in rng.permutation(TAGS)[: int(rng.integers(0, 4))])
    fields = tuple(str(f) for f in rng.permutation(FIELDS)[: int(rng.integers(1, 5))])
    days = rng.integers(0, 6, n)
    frame = pd.DataFrame({"time": pd.to_datetime([T0 + timedelta(days=int(d)) for d in days],
                                                 utc=True)})  # fmt: skip
    for t in tags:
        values = rng.choice(["a", "b", "ü ž", 'q"uote'], n).astype(object)
        values[rng.random(n) < 0.1] = None
        frame[t] = pd.Series(values, dtype="str" if rng.random() < 0.5 else object)
    for f in fields:
        kind = "note" if f == "note" else str(rng.choice(["int", "float", "bool", "Int64"]))
        if kind == "note":
            texts = rng.choice(["x", "y", "", "42"], n).astype(object)
            texts[rng.random(n) < 0.2] = None
            frame[f] = pd.Series(texts, dtype="str" if rng.random() < 0.5 else object)
        elif kind == "int":
            frame[f] = rng.integers(-5, 100, n).astype("int64")
        elif kind == "bool":
            frame[f] = rng.random(n) < 0.5
        elif kind == "Int64":
            ints = pd.array(rng.integers(0, 9, n), dtype="Int64")
            ints[rng.random(n) < 0.2] = pd.NA
            frame[f] = ints
        else:
            floats = np.round(rng.normal(100, 50, n), 3)
            floats[rng.random(n) < 0.2] = np.nan
            floats[rng.random(n) < 0.05] = np.inf
            frame[f] = floats
    # what producers hand over besides the plain case: other time units and zones, a
    # frame filtered from a larger one (an index that is not 0..n-1)
    unit = str(rng.choice(["us", "ns", "s"]))
    frame["time"] = frame["time"].dt.as_unit(unit)
    if rng.random() < 0.3:
        frame["time"] = frame["time"].dt.tz_convert("Europe/Berlin")
    if rng.random() < 0.3:
        frame.index = rng.permutation(n) * 3 + 7
    return PointBatch(m, frame, tags, fields)


def random_delete(rng: np.random.Generator) -> tuple[str, dict[str, list[str]], Any, Any]:
    m = str(rng.choice(MEASUREMENTS))
    tags = {str(t): [str(v) for v in rng.choice(["a", "b", "ü ž"], int(rng.integers(1, 3)))]
            for t in rng.permutation(TAGS)[: int(rng.integers(0, 2))]}  # fmt: skip
    start = None if rng.random() < 0.4 else T0 + timedelta(days=int(rng.integers(0, 6)))
    end = None if rng.random() < 0.4 else T0 + timedelta(days=int(rng.integers(1, 7)))
    return m, tags, start, end


@pytest.fixture
def stores() -> Iterator[tuple[SeriesStore, LongSeriesStore]]:
    new, old = SeriesStore(), LongSeriesStore()
    yield new, old
    new.close()
    old.close()


def assert_same(store: SeriesStore, old: LongSeriesStore, model: Model) -> None:
    for m in MEASUREMENTS:
        expected = {k: comparable(v) for k, v in model.values.items() if k[0] == m}
        assert stored_values(store, m) == expected, m
        assert store.count(m) == len(model.points(m))
        pd.testing.assert_frame_equal(store.read(m), old.read(m))
    assert store.count() == len(model.points())
    assert store.measurements() == sorted({k[0] for k in model.values})
    for tag in TAGS:
        assert store.tag_values(tag) == old.tag_values(tag)


@pytest.mark.parametrize("seed", range(12))
def test_random_writes_rewrites_and_deletes_match_the_model(
    seed: int, stores: tuple[SeriesStore, LongSeriesStore]
) -> None:
    store, old = stores
    rng = np.random.default_rng(seed)
    model = Model()
    for _ in range(14):
        if rng.random() < 0.2:
            m, tags, start, end = random_delete(rng)
            store.delete(m, tags=tags, start=start, end=end)
            old.delete(m, tags=tags, start=start, end=end)
            model.delete(m, tags, start, end)
        else:
            batches = [random_batch(rng) for _ in range(int(rng.integers(1, 4)))]
            assert store.write(batches).points == sum(len(b) for b in batches)
            old.write(batches)
            for batch in batches:
                model.write(batch)
        assert_same(store, old, model)


def test_reads_with_fields_tags_and_ranges_equal_the_old_store(
    stores: tuple[SeriesStore, LongSeriesStore],
) -> None:
    store, old = stores
    rng = np.random.default_rng(99)
    for _ in range(25):
        batch = random_batch(rng, "mrr_daily")
        store.write(batch)
        old.write(batch)
    for fields in (None, ["mrr"], ["note"], ["MRR", "rate"], ["nope"], ["active", "flag"]):
        for tags in (None, {"product": "a"}, {"product": "b", "plan": "a"}, {"nope": "a"}):
            for start, end in ((None, None), (T0 + timedelta(days=1), T0 + timedelta(days=4))):
                got = store.read("mrr_daily", fields=fields, tags=tags, start=start, end=end)
                want = old.read("mrr_daily", fields=fields, tags=tags, start=start, end=end)
                pd.testing.assert_frame_equal(got, want)
    assert store.read("absent").columns.tolist() == ["time"]
    with pytest.raises(ValueError, match="at least one field"):
        store.read("mrr_daily", fields=[])


def test_last_row_wins_within_one_batch_field_by_field() -> None:
    """Two rows of one key in a batch: the second row's value of each field, undefined
    included, is what stays (the first row's value is never stored)."""
    store = SeriesStore()
    store.write(PointBatch("m", pd.DataFrame({
        "time": pd.to_datetime([T0], utc=True), "product": ["a"], "x": [1.0], "y": [5.0]}),
        ("product",), ("x", "y")))  # fmt: skip
    frame = pd.DataFrame({"time": pd.to_datetime([T0, T0], utc=True), "product": ["a", "a"],
                          "x": [2.0, np.nan], "y": [6.0, 7.0]})  # fmt: skip
    assert store.write(PointBatch("m", frame, ("product",), ("x", "y"))).points == 2
    got = store.read("m")
    assert got.columns.tolist() == ["time", "product", "y"]
    assert got["y"].tolist() == [7.0]
    assert store.count("m") == 1


def test_a_batch_with_some_fields_keeps_the_others() -> None:
    store = SeriesStore()
    store.write(PointBatch.from_points([Point("m", {"p": "a"}, {"x": 1.0, "y": 2.0, "z": "t"}, T0)]))
    store.write(PointBatch.from_points([Point("m", {"p": "a"}, {"y": 20.0}, T0)]))
    row = store.read("m").iloc[0]
    assert (row["x"], row["y"], row["z"]) == (1.0, 20.0, "t")
    store.write(PointBatch.from_points([Point("m", {"p": "a"}, {"x": float("nan"),
                                                                "y": float("nan")}, T0)]))  # fmt: skip
    assert store.read("m")[["p", "z"]].values.tolist() == [["a", "t"]]
    store.write(PointBatch.from_points([Point("m", {"p": "a"}, {"z": float("nan")}, T0)]))
    assert store.count("m") == 0  # no field left: the point is gone
    assert store.measurements() == []


def test_a_field_can_change_between_number_and_text() -> None:
    store = SeriesStore()
    store.write(PointBatch.from_points([Point("m", {}, {"v": "high"}, T0)]))
    store.write(PointBatch.from_points([Point("m", {}, {"v": 3.5}, T0 + timedelta(days=1))]))
    assert store.read("m")["v"].tolist() == ["high", 3.5]
    store.write(PointBatch.from_points([Point("m", {}, {"v": 4.0}, T0)]))
    assert store.read("m")["v"].tolist() == [4.0, 3.5]


def test_a_failing_batch_leaves_the_whole_write_out(tmp_path: Path) -> None:
    """A batch whose tags cannot be encoded fails before anything of the call is stored."""
    store = SeriesStore(tmp_path / "s.duckdb")
    good = PointBatch.from_points([Point("m", {"p": "a"}, {"x": 1.0}, T0)])[0]
    bad = PointBatch("m", pd.DataFrame({"time": pd.to_datetime([T0], utc=True),
                                        "p": [object()], "x": [2.0]}), ("p",), ("x",))  # fmt: skip
    with pytest.raises(TypeError):
        store.write([good, bad])
    assert store.count() == 0
    store.write(good)
    assert store.count() == 1


def test_memory_limit_is_applied_and_checked(tmp_path: Path) -> None:
    store = SeriesStore(tmp_path / "s.duckdb", memory_limit="256MB")
    (limit,) = store.connection.execute("SELECT current_setting('memory_limit')").fetchone()
    assert limit in ("244.1 MiB", "256.0 MB", "256MB")  # DuckDB prints bytes in MiB
    store.close()
    with pytest.raises(ValueError, match="memory_limit 'lots'"):
        SeriesStore(tmp_path / "t.duckdb", memory_limit="lots")
