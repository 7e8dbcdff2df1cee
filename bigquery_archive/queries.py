"""Every SQL statement the archive sends to BigQuery, built in one place (pure).

Cost rule: each statement names a closed time range on the table's partition column
(``ts`` / ``time`` ``>= @start AND < @end``), so BigQuery reads only those days'
partitions (on-demand pricing bills the bytes of the partitions and columns read).
``prunes`` is the check a test applies to every statement the archive actually ran, and
the archive applies to each statement before sending it: an unpruned statement is a bug,
refused before it can scan years of history.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from bigquery_archive.schema import EVENTS, METRIC_ROWS, TableSpec


def table_ref(project: str, dataset: str, table: str) -> str:
    return f"`{project}.{dataset}.{table}`"


def _range(alias: str, column: str) -> str:
    prefix = f"{alias}." if alias else ""
    return f"{prefix}{column} >= @start AND {prefix}{column} < @end"


def merge_events(target: str, staging: str) -> str:
    """Insert the staged events not yet in the day's partition (exactly once per key).

    Events are immutable, so a matched key is left as it is; nothing is ever deleted
    (the ledger may have trimmed a day the archive still holds in full).
    """
    cols = EVENTS.column_names
    return (
        f"MERGE {target} T USING (SELECT * FROM {staging} WHERE {_range('', 'ts')}) S "
        f"ON {_range('T', 'ts')} AND T.idempotency_key = S.idempotency_key "
        f"WHEN NOT MATCHED THEN INSERT ({', '.join(cols)}) "
        f"VALUES ({', '.join('S.' + c for c in cols)})"
    )


def merge_metric_rows(target: str, staging: str) -> str:
    """Make the day's metric rows equal the staged ones: update, insert, and delete the
    rows the series no longer holds (a rate that became undefined)."""
    spec = METRIC_ROWS
    cols = spec.column_names
    on = " AND ".join(f"T.{k} = S.{k}" for k in ("time", *spec.key))
    updates = ", ".join(f"{c} = S.{c}" for c in cols if c not in ("time", *spec.key))
    return (
        f"MERGE {target} T USING (SELECT * FROM {staging} WHERE {_range('', 'time')}) S "
        f"ON {_range('T', 'time')} AND {on} "
        f"WHEN MATCHED THEN UPDATE SET {updates} "
        f"WHEN NOT MATCHED BY TARGET THEN INSERT ({', '.join(cols)}) "
        f"VALUES ({', '.join('S.' + c for c in cols)}) "
        f"WHEN NOT MATCHED BY SOURCE AND {_range('T', 'time')} THEN DELETE"
    )


def select_events(
    target: str, *, types: Sequence[str] | None, products: Sequence[str] | None
) -> str:
    """Events of [start, end) (optionally of some types/products: clustering prunes)."""
    cols = ", ".join(EVENTS.column_names)
    sql = f"SELECT {cols} FROM {target} WHERE {_range('', 'ts')}"
    if types is not None:
        sql += " AND type IN UNNEST(@types)"
    if products is not None:
        sql += " AND product IN UNNEST(@products)"
    return sql + " ORDER BY ts, idempotency_key"


def day_counts(target: str) -> str:
    """Rows per UTC day of [start, end): what ``archive status`` compares with the ledger."""
    return (
        f"SELECT DATE(ts) AS day, COUNT(*) AS n FROM {target} WHERE {_range('', 'ts')} "
        "GROUP BY day ORDER BY day"
    )


def sum_value(target: str) -> str:
    """Exact sum of ``value`` per product, type and currency over [start, end)."""
    return (
        f"SELECT product, type, currency, SUM(value) AS total, COUNT(*) AS n FROM {target} "
        f"WHERE {_range('', 'ts')} AND type IN UNNEST(@types) "
        "GROUP BY product, type, currency ORDER BY product, type, currency"
    )


def select_metric_rows(target: str) -> str:
    cols = ", ".join(METRIC_ROWS.column_names)
    return (
        f"SELECT {cols} FROM {target} WHERE {_range('', 'time')} "
        "ORDER BY time, measurement, tags, field"
    )


def materialise(temp: str, select: str) -> str:
    """A SELECT's result as a table that expires by itself (read by the Storage API)."""
    return (
        f"CREATE OR REPLACE TABLE {temp} OPTIONS(expiration_timestamp = "
        f"TIMESTAMP_ADD(CURRENT_TIMESTAMP(), INTERVAL 1 DAY)) AS {select}"
    )


def add_column(target: str, name: str, type_: str) -> str:
    """The additive migration step (DDL reads no data, so it needs no partition filter)."""
    return f"ALTER TABLE {target} ADD COLUMN IF NOT EXISTS {name} {type_}"


_PARTITION_FILTER = {
    spec.name: re.compile(rf"\b(?:\w+\.)?{spec.partition_column}\s*>=\s*@start\b.*"
                          rf"\b(?:\w+\.)?{spec.partition_column}\s*<\s*@end\b", re.S)
    for spec in (EVENTS, METRIC_ROWS)
}  # fmt: skip


def prunes(sql: str, tables: Sequence[TableSpec] = (EVENTS, METRIC_ROWS)) -> bool:
    """Does every archive table that ``sql`` reads carry a [start, end) filter on its
    partition column? (A statement touching no archive table passes.)"""
    for spec in tables:
        if re.search(rf"\.{spec.name}`", sql) and not _PARTITION_FILTER[spec.name].search(sql):
            return False
    return True
