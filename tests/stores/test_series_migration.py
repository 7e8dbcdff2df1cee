"""A series.duckdb written by the old long layout opens, reads the same and is migrated.

The old file is made by the old store itself (``long_layout_store.py``, the code as it
was), so it holds exactly the rows an existing user's file holds.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pytest
from long_layout_store import LongSeriesStore
from test_series_semantics import MEASUREMENTS, T0, TAGS, random_batch

from growthwatch.points import Point, PointBatch
from growthwatch.stores.series import SeriesStore


def old_file(path: Path, seed: int = 7) -> LongSeriesStore:
    """An old-layout file with every kind of field, odd names and deletes; the old store
    is returned open on a copy of the same data (":memory:") to compare with later."""
    rng = np.random.default_rng(seed)
    reference = LongSeriesStore()
    with LongSeriesStore(path) as old:
        for _ in range(20):
            batch = random_batch(rng)
            old.write(batch)
            reference.write(batch)
        old.delete("mrr_daily", tags={"product": ["a"]}, start=T0 + timedelta(days=2))
        reference.delete("mrr_daily", tags={"product": ["a"]}, start=T0 + timedelta(days=2))
        notes = PointBatch.from_points([Point("anomalies", {"product": "a"},
                                              {"text": "spike", "score": 3.5}, T0)])  # fmt: skip
        old.write(notes)
        reference.write(notes)
    return reference


def test_an_old_layout_file_is_migrated_and_reads_the_same(tmp_path: Path) -> None:
    path = tmp_path / "series.duckdb"
    reference = old_file(path)
    with duckdb.connect(str(path)) as con:
        (old_rows,) = con.execute("SELECT count(*) FROM series_points").fetchone()
    assert old_rows > 100

    store = SeriesStore(path)
    assert store.measurements() == reference.measurements()
    assert store.count() == reference.count()
    for m in [*MEASUREMENTS, "anomalies"]:
        assert store.count(m) == reference.count(m)
        pd.testing.assert_frame_equal(store.read(m), reference.read(m))
        pd.testing.assert_frame_equal(store.read(m, fields=["mrr", "note"], tags={"product": "b"}),
                                      reference.read(m, fields=["mrr", "note"],
                                                     tags={"product": "b"}))  # fmt: skip
    for tag in TAGS:
        assert store.tag_values(tag) == reference.tag_values(tag)
    tables = {r[0] for r in store.connection.execute("SHOW TABLES").fetchall()}
    assert "series_points" not in tables and "series:mrr_daily" in tables

    # Written on after the migration, it still behaves as the old store does.
    rng = np.random.default_rng(70)
    for _ in range(5):
        batch = random_batch(rng)
        store.write(batch)
        reference.write(batch)
    for m in MEASUREMENTS:
        pd.testing.assert_frame_equal(store.read(m), reference.read(m))
    store.close()

    reopened = SeriesStore(path)  # a second open finds nothing to migrate
    for m in MEASUREMENTS:
        pd.testing.assert_frame_equal(reopened.read(m), reference.read(m))
    reopened.close()


def test_a_failed_migration_leaves_the_old_table(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "series.duckdb"
    reference = old_file(path, seed=3)
    import growthwatch.stores.series_layout as layout

    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("disk full")

    monkeypatch.setattr(layout, "ensure_layout", broken)
    with pytest.raises(RuntimeError, match="disk full"):
        SeriesStore(path)
    with duckdb.connect(str(path)) as con:
        (rows,) = con.execute("SELECT count(*) FROM series_points").fetchone()
        tables = con.execute("SELECT count(*) FROM series_tables").fetchone()
    assert rows > 0 and tables == (0,)
    monkeypatch.undo()
    store = SeriesStore(path)
    pd.testing.assert_frame_equal(store.read("mrr_daily"), reference.read("mrr_daily"))
