"""The series store as it was before one table per measurement (git 2a73733,
``growthwatch/stores/series.py``), kept verbatim but for its name: one long
``series_points`` table keyed by (measurement, tags, time, field).

The tests use it twice: to make old-layout files the new store must open and migrate,
and as a second, independent implementation of the semantics whose ``read`` results the
new store must give exactly (same columns, dtypes, order).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime

import numpy as np
import pandas as pd

from growthwatch.points import PointBatch
from growthwatch.stores.duckdb_file import DuckDBFile
from growthwatch.stores.interfaces import WriteResult

_SCHEMA = """
CREATE TABLE IF NOT EXISTS series_points (
    measurement VARCHAR NOT NULL,
    tags VARCHAR NOT NULL,          -- canonical JSON object of the tag set, sorted keys
    time TIMESTAMPTZ NOT NULL,
    field VARCHAR NOT NULL,
    value DOUBLE,                   -- numeric and boolean fields
    text VARCHAR,                   -- string fields
    PRIMARY KEY (measurement, tags, time, field)
);
"""


class LongSeriesStore(DuckDBFile):
    schema = _SCHEMA

    def write(self, data: PointBatch | Iterable[PointBatch]) -> WriteResult:
        """Upsert every field value; ``points`` counts the rows of the batches."""
        batches = [data] if isinstance(data, PointBatch) else list(data)
        total = 0
        for batch in batches:
            long = _to_long(batch)
            if long.empty:
                continue
            total += len(batch)
            with self._lock:
                self._con.register("incoming_points", long)
                try:
                    # An undefined value (NaN, NA) clears the stored one: a churn rate whose
                    # denominator dropped to zero must not keep its old value.
                    self._con.execute(
                        "DELETE FROM series_points s USING incoming_points i "
                        "WHERE NOT i.defined AND s.measurement = i.measurement "
                        "AND s.tags = i.tags AND s.time = i.time AND s.field = i.field"
                    )
                    self._con.execute(
                        "INSERT OR REPLACE INTO series_points SELECT measurement, tags, time, "
                        "field, value, text FROM incoming_points WHERE defined"
                    )
                finally:
                    self._con.unregister("incoming_points")
        return WriteResult(points=total)

    def delete(
        self,
        measurement: str,
        *,
        tags: Mapping[str, str | Sequence[str]] | None = None,
        start: datetime | None = None,
        end: datetime | None = None,
    ) -> None:
        """Remove the points of a measurement in [start, end) whose tags match (``tags``: a
        value or several per tag), so a recompute that shrinks a series leaves no rows
        behind (``SeriesDeleter``)."""
        where, params = _range(measurement, start, end)
        for key, wanted in (tags or {}).items():
            values = [wanted] if isinstance(wanted, str) else list(wanted)
            if not values:
                return
            where += (" AND json_extract_string(tags, ?) IN ("
                      + ", ".join("?" * len(values)) + ")")  # fmt: skip
            params += ['$."' + key.replace('"', '\\"') + '"', *values]
        sql = "DELETE FROM series_points" + where
        with self._lock:
            self._con.execute(sql, params)

    def measurements(self) -> list[str]:
        with self._lock:
            rows = self._con.execute(
                "SELECT DISTINCT measurement FROM series_points ORDER BY 1"
            ).fetchall()
        return [r[0] for r in rows]

    def tag_values(self, tag: str, measurement: str | None = None) -> list[str]:
        """Distinct values of one tag (e.g. every product id), sorted."""
        sql = "SELECT DISTINCT json_extract_string(tags, ?) AS v FROM series_points"
        params: list[object] = ["$." + tag]
        if measurement is not None:
            sql += " WHERE measurement = ?"
            params.append(measurement)
        with self._lock:
            rows = self._con.execute(sql + " ORDER BY 1", params).fetchall()
        return [r[0] for r in rows if r[0] is not None]

    def count(self, measurement: str | None = None) -> int:
        """Number of distinct points (measurement, tags, time)."""
        sql = "SELECT count(*) FROM (SELECT DISTINCT measurement, tags, time FROM series_points"
        params: list[object] = []
        if measurement is not None:
            sql += " WHERE measurement = ?"
            params.append(measurement)
        with self._lock:
            row = self._con.execute(sql + ")", params).fetchone()
        return int(row[0]) if row else 0

    def read(
        self,
        measurement: str,
        *,
        fields: Sequence[str] | None = None,
        tags: Mapping[str, str] | None = None,
        start: datetime | None = None,
        end: datetime | None = None,
    ) -> pd.DataFrame:
        """Wide frame: ``time`` (UTC), one column per tag, one per field; sorted by time.

        The ``SeriesReader`` contract: ``start`` inclusive, ``end`` exclusive, ``tags``
        exact tag values, ``fields`` the field columns wanted (``None``: all).
        """
        where, params = _range(measurement, start, end)
        if fields is not None:
            if not fields:
                raise ValueError("fields: name at least one field, or pass None for all")
            where += " AND field IN (" + ", ".join("?" * len(fields)) + ")"
            params.extend(fields)
        sql = "SELECT tags, time, field, value, text FROM series_points" + where
        with self._lock:
            long = self._con.execute(sql, params).df()
        if long.empty:
            return pd.DataFrame(columns=["time"])
        long["time"] = pd.to_datetime(long["time"], utc=True)
        long["v"] = long["value"].astype(object).where(long["text"].isna(), long["text"])
        wide = long.pivot_table(
            index=["tags", "time"], columns="field", values="v", aggfunc="first"
        ).reset_index()
        wide.columns.name = None
        tag_frame = pd.DataFrame([json.loads(t) for t in wide["tags"]], index=wide.index)
        out = pd.concat([wide[["time"]], tag_frame, wide.drop(columns=["tags", "time"])], axis=1)
        for col in out.columns:
            if col != "time" and col not in tag_frame.columns:
                converted = pd.to_numeric(out[col], errors="coerce")
                if converted.notna().sum() == out[col].notna().sum():
                    out[col] = converted
        if tags:
            for key, value in tags.items():
                if key not in out:
                    return out.iloc[0:0]
                out = out[out[key] == value]
        sort_cols = ["time", *[c for c in tag_frame.columns if c in out]]
        return out.sort_values(sort_cols, ignore_index=True)


def _range(
    measurement: str, start: datetime | None, end: datetime | None
) -> tuple[str, list[object]]:
    """WHERE clause for one measurement over [start, end)."""
    sql = " WHERE measurement = ?"
    params: list[object] = [measurement]
    if start is not None:
        sql += " AND time >= ?"
        params.append(start)
    if end is not None:
        sql += " AND time < ?"
        params.append(end)
    return sql, params


def _to_long(batch: PointBatch) -> pd.DataFrame:
    frame = batch.frame
    if frame.empty:
        return pd.DataFrame()
    if batch.tags:
        tag_json = [
            json.dumps({k: v for k, v in zip(batch.tags, row, strict=True) if v is not None},
                       sort_keys=True)
            for row in frame[list(batch.tags)].astype(object).where(
                frame[list(batch.tags)].notna(), None
            ).itertuples(index=False, name=None)
        ]  # fmt: skip
    else:
        tag_json = ["{}"] * len(frame)
    # One frame for all fields at once (field-major), not one per field: a live update
    # writes a handful of rows in dozens of fields, where per-frame overhead dominated.
    n = len(frame)
    numeric = [f for f in batch.fields if pd.api.types.is_numeric_dtype(frame[f])
               or pd.api.types.is_bool_dtype(frame[f])]  # fmt: skip
    texts = [f for f in batch.fields if f not in numeric]
    names = [*numeric, *texts]
    rows = np.tile(np.arange(n), len(names))
    value = np.full(len(rows), np.nan)
    text = np.full(len(rows), None, dtype=object)
    defined = np.zeros(len(rows), dtype=bool)
    if numeric:
        nums = frame[numeric].astype("float64").to_numpy().T.ravel()
        value[: len(nums)] = nums
        defined[: len(nums)] = np.isfinite(nums)
    if texts:
        strings = frame[texts].astype(object).to_numpy().T.ravel()
        present = pd.notna(strings)
        text[n * len(numeric) :] = np.where(present, strings, None)
        defined[n * len(numeric) :] = present
    long = pd.DataFrame(
        {"tags": np.asarray(tag_json, dtype=object)[rows],
         "time": pd.DatetimeIndex(frame["time"]).take(rows),
         "field": np.repeat(np.asarray(names, dtype=object), n), "value": value,
         "text": text, "defined": defined}
    )  # fmt: skip
    long.insert(0, "measurement", batch.measurement)
    return long.drop_duplicates(["tags", "time", "field"], keep="last")
