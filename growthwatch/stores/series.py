"""The embedded series store: metric points in DuckDB, with InfluxDB's overwrite semantics.

With no InfluxDB configured, the demo and the reports still need somewhere to keep metric
series. This store accepts the same ``PointBatch`` objects as ``InfluxStore`` and, like
InfluxDB, keys a value by (measurement, tag set, time, field): writing it again replaces
it, so recomputing a day never adds to it (within one batch too: the last row wins). A
NaN (undefined) field value removes the stored value, as ``InfluxStore`` does.

Storage is one wide table per measurement, one row per point (``series_layout.py``), and a
batch goes in as Arrow columns (``series_rows.py``). An upsert is one ``MERGE`` of the
batch's rows on (tags, time), in one transaction under the store's lock; a large batch
whose time span holds no stored row (a full recompute writes into the range it has just
deleted) is a plain INSERT instead. Fields a batch does not carry keep their stored
values. No row is ever left with every field
undefined, and a (tags, time) appears once per table, so a row is a point.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from pathlib import Path

import duckdb
import pandas as pd
import pyarrow as pa

from growthwatch.points import PointBatch
from growthwatch.stores.duckdb_file import DuckDBFile
from growthwatch.stores.interfaces import WriteResult
from growthwatch.stores.series_layout import (
    CATALOG,
    Layout,
    ensure_layout,
    has_long_table,
    load_layouts,
    migrate_long_table,
    quote,
)
from growthwatch.stores.series_rows import SeriesRows, series_rows

_INCOMING = "incoming_points"
# a batch of more rows first checks whether its span holds any stored row (a full
# recompute writes into the range it has just deleted: a plain INSERT, no join)
_MERGE_ROWS = 10_000
_MEMORY = re.compile(r"\s*\d+(\.\d+)?\s*([KMGT]i?)?B\s*", re.IGNORECASE)


class SeriesStore(DuckDBFile):
    schema = CATALOG

    def __init__(self, path: str | Path = ":memory:", memory_limit: str | None = None) -> None:
        """``memory_limit`` (e.g. ``"512MB"``, DuckDB's syntax) caps DuckDB's memory for this
        database (``SET memory_limit``); None keeps DuckDB's default (80 % of RAM)."""
        super().__init__(path)
        if memory_limit is not None:
            if not _MEMORY.fullmatch(memory_limit):
                self._con.close()
                raise ValueError(f"series store memory_limit {memory_limit!r}: expected an "
                                 "amount such as '512MB', '2GB' or '1GiB'")  # fmt: skip
            self._con.execute(f"SET memory_limit = '{memory_limit.strip()}'")
        with self._lock:
            try:
                if has_long_table(self._con):
                    migrate_long_table(self._con)
            except BaseException:
                self._con.close()
                raise

    def write(self, data: PointBatch | Iterable[PointBatch]) -> WriteResult:
        """Upsert every field value; ``points`` counts the rows of the batches.

        All batches of one call are one transaction: a batch that cannot be stored (its
        conversion raises first, before anything is written) leaves the store unchanged.
        """
        batches = [data] if isinstance(data, PointBatch) else list(data)
        prepared: list[tuple[str, SeriesRows]] = []
        total = 0
        for batch in batches:
            rows = series_rows(batch)
            if rows is None:
                continue
            total += len(batch)
            prepared.append((batch.measurement, rows))
        if not prepared:
            return WriteResult(points=0)
        with self._lock:
            con = self._con
            con.execute("BEGIN TRANSACTION")
            try:
                layouts = self._ensure(prepared)
                for measurement, rows in prepared:
                    _upsert(con, layouts[measurement], rows)
                con.execute("COMMIT")
            except BaseException:
                con.execute("ROLLBACK")
                raise
        return WriteResult(points=total)

    def _ensure(self, prepared: list[tuple[str, SeriesRows]]) -> dict[str, Layout]:
        """Tables and columns for every batch of the call, from one read of the catalog
        (a live update writes a few rows into many measurements: per-batch catalog reads
        were a fair share of its time)."""
        wanted: dict[str, tuple[dict[str, None], dict[str, None]]] = {}
        for measurement, rows in prepared:
            numbers, texts = wanted.setdefault(measurement, ({}, {}))
            numbers.update(dict.fromkeys(rows.values))
            texts.update(dict.fromkeys(rows.texts))
        known = {layout.measurement: layout for layout in load_layouts(self._con)}
        return {m: ensure_layout(self._con, m, list(n), list(t), known.get(m))
                for m, (n, t) in wanted.items()}  # fmt: skip

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
        where, params = _range(start, end)
        for key, wanted in (tags or {}).items():
            values = [wanted] if isinstance(wanted, str) else list(wanted)
            if not values:
                return
            where += (" AND json_extract_string(tags, ?) IN ("
                      + ", ".join("?" * len(values)) + ")")  # fmt: skip
            params += ['$."' + key.replace('"', '\\"') + '"', *values]
        with self._lock:
            for layout in load_layouts(self._con, measurement):
                self._con.execute(f"DELETE FROM {layout.sql_table}" + where, params)

    def measurements(self) -> list[str]:
        """Measurements that hold at least one point, sorted."""
        with self._lock:
            return [
                layout.measurement
                for layout in load_layouts(self._con)
                if self._con.execute(f"SELECT 1 FROM {layout.sql_table} LIMIT 1").fetchone()
            ]

    def tag_values(self, tag: str, measurement: str | None = None) -> list[str]:
        """Distinct values of one tag (e.g. every product id), sorted."""
        with self._lock:
            layouts = load_layouts(self._con, measurement)
            if not layouts:
                return []
            union = " UNION ALL ".join(f"SELECT DISTINCT tags FROM {layout.sql_table}"
                                       for layout in layouts)  # fmt: skip
            rows = self._con.execute(
                f"SELECT DISTINCT json_extract_string(tags, ?) AS v FROM ({union}) ORDER BY 1",
                ["$." + tag],
            ).fetchall()
        return [r[0] for r in rows if r[0] is not None]

    def count(self, measurement: str | None = None) -> int:
        """Number of distinct points (measurement, tags, time)."""
        total = 0
        with self._lock:
            for layout in load_layouts(self._con, measurement):
                row = self._con.execute(f"SELECT count(*) FROM {layout.sql_table}").fetchone()
                total += int(row[0]) if row else 0
        return total

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
        exact tag values, ``fields`` the field columns wanted (``None``: all). A field
        column is there when a point read has it; a point is there when it has one of
        the fields wanted.
        """
        if fields is not None and not fields:
            raise ValueError("fields: name at least one field, or pass None for all")
        with self._lock:
            found = load_layouts(self._con, measurement)
            layout = found[0] if found else None
            names = [] if layout is None else sorted(
                f for f in layout.values if fields is None or f in fields)  # fmt: skip
            if layout is None or not names:
                return pd.DataFrame(columns=["time"])
            columns = [layout.values[f] for f in names] + [
                layout.texts[f] for f in names if f in layout.texts]  # fmt: skip
            where, params = _range(start, end)
            where += " AND (" + " OR ".join(f"{quote(c)} IS NOT NULL" for c in columns) + ")"
            selected = ", ".join(quote(c) for c in columns)
            raw = self._con.execute(
                f"SELECT tags, time, {selected} FROM {layout.sql_table}{where}", params
            ).df()
        if raw.empty:
            return pd.DataFrame(columns=["time"])
        return _wide_frame(raw, layout, names, tags)


def _upsert(con: duckdb.DuckDBPyConnection, layout: Layout, rows: SeriesRows) -> None:
    """Write one batch's rows into its measurement's table (inside the open transaction).

    The batch's ``time`` is naive UTC in Arrow and becomes TIMESTAMPTZ in SQL
    (``timezone('UTC', time)``, whatever the session's TimeZone): DuckDB pushes join
    filters into an Arrow scan as Python objects, which for an aware timestamp needs pytz.
    """
    arrays: dict[str, pa.Array] = {"tags": rows.tags, "time": rows.time}
    for name, numbers in rows.values.items():
        arrays[layout.values[name]] = numbers
        if name in layout.texts:
            text = rows.texts.get(name)
            arrays[layout.texts[name]] = (text if text is not None
                                          else pa.nulls(len(rows), pa.string()))  # fmt: skip
    supplied = list(arrays)[2:]
    others = [c for c in layout.columns() if c not in arrays]
    table = layout.sql_table
    # The span as ISO text, not datetimes: DuckDB binds an aware datetime through pytz.
    span = [rows.start.isoformat(), rows.end.isoformat()]
    in_span = "time >= ?::TIMESTAMPTZ AND time <= ?::TIMESTAMPTZ"
    con.register(_INCOMING, pa.table(arrays))
    try:
        source = f"(SELECT * REPLACE (timezone('UTC', time) AS time) FROM {_INCOMING})"
        if len(rows) > _MERGE_ROWS:
            stored = con.execute(f"SELECT 1 FROM {table} WHERE {in_span} LIMIT 1",
                                 span).fetchone()  # fmt: skip
            if stored is None:  # nothing in the span (a full recompute after its delete)
                _insert(con, table, source, supplied)
                return
        _merge(con, table, source, supplied, others)
    finally:
        con.unregister(_INCOMING)


def _merge(
    con: duckdb.DuckDBPyConnection, table: str, source: str, supplied: list[str], others: list[str]
) -> None:
    """One ``MERGE``: a stored point takes the batch's fields (the others keep their
    values) and goes when no field is left defined; a new point goes in when it has a
    defined field. One statement per batch, where delete-then-insert (with a staging
    table for the fields kept) took up to five: a live update writes a few rows into many
    measurements, so statements, not rows, were its cost."""
    q = [quote(c) for c in supplied]
    none_left = " AND ".join([f"i.{c} IS NULL" for c in q]
                             + [f"t.{quote(c)} IS NULL" for c in others])  # fmt: skip
    sets = ", ".join(f"{c} = i.{c}" for c in q)
    defined = " OR ".join(f"i.{c} IS NOT NULL" for c in q)
    listed = ", ".join(q)
    values = ", ".join(f"i.{c}" for c in q)
    con.execute(
        f"MERGE INTO {table} AS t USING {source} AS i ON t.tags = i.tags AND t.time = i.time "
        f"WHEN MATCHED AND {none_left} THEN DELETE "
        f"WHEN MATCHED THEN UPDATE SET {sets} "
        f"WHEN NOT MATCHED AND ({defined}) THEN INSERT (tags, time, {listed}) "
        f"VALUES (i.tags, i.time, {values})"
    )  # fmt: skip


def _insert(con: duckdb.DuckDBPyConnection, table: str, source: str, columns: list[str]) -> None:
    """Append the rows of ``source`` that have a defined field (a row of undefined values
    is no point)."""
    listed = ", ".join(quote(c) for c in columns)
    defined = " OR ".join(f"{quote(c)} IS NOT NULL" for c in columns)
    con.execute(f"INSERT INTO {table} (tags, time, {listed}) "
                f"SELECT tags, time, {listed} FROM {source} WHERE {defined}")  # fmt: skip


def _range(start: datetime | None, end: datetime | None) -> tuple[str, list[object]]:
    """WHERE clause over [start, end)."""
    sql = " WHERE true"
    params: list[object] = []
    if start is not None:
        sql += " AND time >= ?"
        params.append(start)
    if end is not None:
        sql += " AND time < ?"
        params.append(end)
    return sql, params


def _wide_frame(
    raw: pd.DataFrame, layout: Layout, names: list[str], tags: Mapping[str, str] | None
) -> pd.DataFrame:
    """The frame ``read`` returns, from one table's rows.

    Built to be exactly what the long layout's pivot gave: rows in (tags, time) order,
    field columns in name order and only those with a value in a row read (a text value
    wins over a number, as a long row held one or the other); then one column per tag,
    numbers converted where every value of a column is one, the tag filter, the sort.
    """
    raw["time"] = pd.to_datetime(raw["time"], utc=True)
    raw = raw.sort_values(["tags", "time"], kind="stable", ignore_index=True)
    columns: dict[str, pd.Series] = {"tags": raw["tags"], "time": raw["time"]}
    for name in names:
        column = raw[layout.values[name]]
        if name in layout.texts:
            text = raw[layout.texts[name]]
            present = text.notna()
            if present.any():
                column = column.astype(object).where(~present, text.astype(object))
        if column.notna().any():
            columns[name] = column
    wide = pd.DataFrame(columns)
    codes, unique = pd.factorize(wide["tags"])
    tag_frame = pd.DataFrame([json.loads(t) for t in unique]).take(codes)
    tag_frame.index = wide.index
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
