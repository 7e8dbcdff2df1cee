"""Where the embedded series store keeps each measurement: one wide table per measurement.

A measurement's points are rows of its own table: ``tags`` (the canonical JSON of the tag
set), ``time`` and, per field, a DOUBLE column (numbers and booleans) and, once a field
has carried text, a VARCHAR column. A NULL cell is a value that is not stored. Two
catalog tables name them: ``series_tables`` (measurement -> table) and ``series_fields``
(measurement, field -> columns).

Why wide and not one long table (one row per field value, as before): a full recompute of
the demo writes 451k points in 4.7M field values. The long table held 4.7M rows under an
ART primary key, and writing them cost ~16 s; the wide tables hold 451k rows without a
key, which DuckDB inserts about 20x faster, scans faster, and stores in a fraction of the
space. (Measured in ``benchmarks/bench_series_writes.py``; README, Benchmarks.)

Table and column names come from the measurement and field names when those are plain
lower-case identifiers (``series:mrr_daily``, ``v:mrr``, ``s:note``), else from a hash
(``series:#3f2a...``): DuckDB matches identifiers case-insensitively, so ``MRR`` and ``mrr``
must not share a column. Every name is quoted in SQL.

Stores written by the old long layout (``series_points``) are migrated in place on open,
in one transaction (``migrate_long_table``).
"""

from __future__ import annotations

import hashlib
import logging
import re
from dataclasses import dataclass, field

import duckdb

log = logging.getLogger(__name__)

CATALOG = """
CREATE TABLE IF NOT EXISTS series_tables (
    measurement VARCHAR NOT NULL,
    table_name VARCHAR NOT NULL
);
CREATE TABLE IF NOT EXISTS series_fields (
    measurement VARCHAR NOT NULL,
    field VARCHAR NOT NULL,
    value_column VARCHAR NOT NULL,
    text_column VARCHAR          -- NULL until the field first carries text
);
"""

_PLAIN = re.compile(r"[a-z][a-z0-9_]{0,40}")


def quote(name: str) -> str:
    """A SQL identifier for any name."""
    return '"' + name.replace('"', '""') + '"'


def literal(text: str) -> str:
    """A SQL string literal."""
    return "'" + text.replace("'", "''") + "'"


def _name(prefix: str, name: str) -> str:
    if _PLAIN.fullmatch(name):
        return prefix + name
    return prefix + "#" + hashlib.sha1(name.encode("utf-8")).hexdigest()[:20]


@dataclass
class Layout:
    """One measurement's table and the columns of each of its fields."""

    measurement: str
    table: str
    values: dict[str, str] = field(default_factory=dict)  # field -> DOUBLE column
    texts: dict[str, str] = field(default_factory=dict)  # field -> VARCHAR column

    @property
    def sql_table(self) -> str:
        return quote(self.table)

    def columns(self) -> list[str]:
        """Every field column of the table."""
        return [*self.values.values(), *self.texts.values()]


def load_layouts(con: duckdb.DuckDBPyConnection, measurement: str | None = None) -> list[Layout]:
    """The catalog (one measurement or all), sorted by measurement name. One statement
    (a write or delete reads it each time: two were a fair share of a small write)."""
    where, params = (("", []) if measurement is None
                     else (" WHERE t.measurement = ?", [measurement]))  # fmt: skip
    rows = con.execute(
        "SELECT t.measurement, t.table_name, f.field, f.value_column, f.text_column "
        "FROM series_tables AS t LEFT JOIN series_fields AS f ON f.measurement = t.measurement"
        f"{where} ORDER BY t.measurement, f.rowid", params,
    ).fetchall()  # fmt: skip
    layouts: dict[str, Layout] = {}
    for m, table, f, value_column, text_column in rows:
        layout = layouts.setdefault(m, Layout(m, table))
        if f is None:  # a table without fields yet
            continue
        layout.values[f] = value_column
        if text_column is not None:
            layout.texts[f] = text_column
    return [layouts[m] for m in sorted(layouts)]


def ensure_layout(
    con: duckdb.DuckDBPyConnection,
    measurement: str,
    numbers: list[str],
    texts: list[str],
    known: Layout | None = None,
) -> Layout:
    """The layout of ``measurement`` with columns for ``numbers`` and ``texts`` (fields
    that carry text also have a number column), created or widened as needed. Run inside
    the caller's transaction; a new table is one CREATE with all its columns. ``known``:
    the layout already read from the catalog in this transaction, if any."""
    found = [known] if known is not None else load_layouts(con, measurement)
    layout = found[0] if found else Layout(measurement, _name("series:", measurement))
    added_values = [f for f in dict.fromkeys([*numbers, *texts]) if f not in layout.values]
    added_texts = [f for f in dict.fromkeys(texts) if f not in layout.texts]
    if not added_values and not added_texts:
        return layout
    for name in added_values:
        layout.values[name] = _name("v:", name)
    for name in added_texts:
        layout.texts[name] = _name("s:", name)
    new_columns = [(layout.values[f], "DOUBLE") for f in added_values] + [
        (layout.texts[f], "VARCHAR") for f in added_texts]  # fmt: skip
    if not found:
        columns = "".join(f", {quote(c)} {kind}" for c, kind in new_columns)
        con.execute(f"CREATE TABLE IF NOT EXISTS {layout.sql_table} "
                    f"(tags VARCHAR NOT NULL, time TIMESTAMPTZ NOT NULL{columns})")  # fmt: skip
        con.execute("INSERT INTO series_tables VALUES (?, ?)", [measurement, layout.table])
    else:
        for column, kind in new_columns:
            con.execute(f"ALTER TABLE {layout.sql_table} ADD COLUMN IF NOT EXISTS "
                        f"{quote(column)} {kind}")  # fmt: skip
    rows = [(measurement, f, layout.values[f], layout.texts.get(f)) for f in added_values]
    if rows:
        con.execute("INSERT INTO series_fields VALUES " + ", ".join(["(?, ?, ?, ?)"] * len(rows)),
                    [v for row in rows for v in row])  # fmt: skip
    for name in added_texts:
        if name not in added_values:
            con.execute("UPDATE series_fields SET text_column = ? WHERE measurement = ? "
                        "AND field = ?", [layout.texts[name], measurement, name])  # fmt: skip
    return layout


def has_long_table(con: duckdb.DuckDBPyConnection) -> bool:
    row = con.execute(
        "SELECT count(*) FROM duckdb_tables() WHERE database_name = current_database() "
        "AND schema_name = 'main' AND table_name = 'series_points'"
    ).fetchone()
    return bool(row and row[0])


def migrate_long_table(con: duckdb.DuckDBPyConnection) -> int:
    """Move the old long ``series_points`` rows into wide tables and drop it; returns the
    number of points moved. One transaction: a failure leaves the old table as it was.

    A long row is one field value (``value`` for numbers, ``text`` for strings; the old
    store wrote only defined values), so a point is the group of its (tags, time) rows.
    """
    measurements = [r[0] for r in con.execute(
        "SELECT DISTINCT measurement FROM series_points ORDER BY 1").fetchall()]  # fmt: skip
    moved = 0
    con.execute("BEGIN TRANSACTION")
    try:
        for measurement in measurements:
            fields = con.execute(
                "SELECT field, bool_or(text IS NOT NULL) FROM series_points "
                "WHERE measurement = ? GROUP BY field ORDER BY field", [measurement]
            ).fetchall()
            layout = ensure_layout(con, measurement, [f for f, _ in fields],
                                   [f for f, has_text in fields if has_text])  # fmt: skip
            columns, selects = [], []
            for name, _ in fields:
                columns.append(quote(layout.values[name]))
                selects.append(f"first(value) FILTER (WHERE field = {literal(name)} "
                               "AND text IS NULL)")  # fmt: skip
                if name in layout.texts:
                    columns.append(quote(layout.texts[name]))
                    selects.append(f"first(text) FILTER (WHERE field = {literal(name)})")
            con.execute(
                f"INSERT INTO {layout.sql_table} (tags, time, {', '.join(columns)}) "
                f"SELECT tags, time, {', '.join(selects)} FROM series_points "
                "WHERE measurement = ? GROUP BY tags, time ORDER BY time", [measurement]
            )
            count = con.execute(f"SELECT count(*) FROM {layout.sql_table}").fetchone()
            moved += int(count[0]) if count else 0
        con.execute("DROP TABLE series_points")
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise
    log.info("series store: moved %d points of %d measurements from the long table to one "
             "table per measurement", moved, len(measurements))  # fmt: skip
    return moved
