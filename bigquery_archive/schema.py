"""The archive's table layout: one declared schema per table, and how it may grow.

Two tables in the configured dataset:

* ``events``: every growth event once, as the ledger holds it, money exact (``NUMERIC``).
* ``metric_rows``: the daily metric series (measurements with a day bucket) in long form,
  one row per (day, measurement, tag set, field).

Both are partitioned by day on their time column (every query names a day range, so a
month of analysis reads a month of partitions) and clustered by product and event type /
measurement and field (the filters analysts and the replay use). The schema here is the
only definition: ``ensure_tables`` creates the tables from it, the README's table comes
from it, and ``plan_migration`` is how it grows: new columns are added (NULLABLE, to the
end), never rewritten, so an old archive keeps every row and an old reader keeps working.
A changed type or mode of an existing column is refused with the column named: BigQuery
would need a table rewrite, which this archive never does behind the user's back.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from growthwatch import field_unit

SCHEMA_VERSION = 1


@dataclass(frozen=True)
class Column:
    name: str
    type: str  # BigQuery standard SQL type: STRING, INT64, NUMERIC, FLOAT64, TIMESTAMP
    mode: str  # REQUIRED or NULLABLE
    description: str


@dataclass(frozen=True)
class TableSpec:
    name: str
    description: str
    columns: tuple[Column, ...]
    partition_column: str  # DAY partitioning on this TIMESTAMP column
    clustering: tuple[str, ...]
    key: tuple[str, ...]  # what makes a row unique within its partition (MERGE condition)

    @property
    def column_names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns)


def _c(name: str, type_: str, mode: str, description: str) -> Column:
    return Column(name, type_, mode, description)


EVENTS = TableSpec(
    name="events",
    description="growthwatch growth events, exactly once per idempotency key (see README)",
    columns=(
        _c("idempotency_key", "STRING", "REQUIRED",
           "32 hex digits: first 128 bits of SHA-256(source, kind, source_id); unique"),
        _c("ts", "TIMESTAMP", "REQUIRED", "when the event happened (UTC); partition column"),
        _c("product", "STRING", "REQUIRED", "product id"),
        _c("type", "STRING", "REQUIRED", "event type (payment, refund, signup, ...)"),
        _c("value", "NUMERIC", "REQUIRED",
           "amount (money types), MRR change (subscription types) or count; exact"),
        _c("currency", "STRING", "NULLABLE", "ISO 4217 code of money types"),
        _c("subject", "STRING", "NULLABLE", "customer or user id"),
        _c("mrr_before", "NUMERIC", "NULLABLE", "subscription MRR before (subscription types)"),
        _c("mrr_after", "NUMERIC", "NULLABLE", "subscription MRR after (subscription types)"),
        _c("plan", "STRING", "NULLABLE", "metadata.plan"),
        _c("channel", "STRING", "NULLABLE", "metadata.channel"),
        _c("metadata", "STRING", "NULLABLE", "metadata as JSON object text"),
        _c("source", "STRING", "REQUIRED", "source that reported it (stripe, mixpanel, ...)"),
        _c("source_id", "STRING", "REQUIRED", "the source's own id of the fact"),
        _c("kind", "STRING", "REQUIRED", "the source's kind of fact"),
        _c("ingested_at", "TIMESTAMP", "REQUIRED", "when the ledger stored it"),
        _c("ledger_seq", "INT64", "NULLABLE", "the ledger's sequence number when archived"),
        _c("archived_at", "TIMESTAMP", "REQUIRED", "when the archive loaded it"),
    ),
    partition_column="ts",
    clustering=("product", "type"),
    key=("idempotency_key",),
)  # fmt: skip

METRIC_ROWS = TableSpec(
    name="metric_rows",
    description="growthwatch daily metric series in long form (one row per field value)",
    columns=(
        _c("time", "TIMESTAMP", "REQUIRED", "bucket start (UTC midnight); partition column"),
        _c("measurement", "STRING", "REQUIRED", "measurement name (docs/metrics.md)"),
        _c("field", "STRING", "REQUIRED", "field name within the measurement"),
        _c("product", "STRING", "REQUIRED", "product id, or 'all' for the portfolio"),
        _c("tags", "STRING", "REQUIRED", "every tag of the point as canonical JSON text"),
        _c("value", "FLOAT64", "REQUIRED", "the value as the series stores it"),
        _c("amount", "NUMERIC", "NULLABLE",
           "money fields only: the value as an exact decimal (9 places, as computed)"),
        _c("archived_at", "TIMESTAMP", "REQUIRED", "when the archive loaded it"),
    ),
    partition_column="time",
    clustering=("product", "measurement", "field"),
    key=("measurement", "tags", "field"),
)  # fmt: skip

TABLES: tuple[TableSpec, ...] = (EVENTS, METRIC_ROWS)

def is_money(measurement: str, field: str) -> bool:
    """Money fields are archived as NUMERIC too (``amount``); which fields are money is the
    metrics schema's word (``field_unit``), so a new money field is archived exactly."""
    return field_unit(measurement, field) == "money"


class SchemaConflict(RuntimeError):
    """An existing archive table disagrees with the declared schema in a way that only a
    rewrite could fix; the message names the table and column."""


@dataclass(frozen=True)
class ExistingColumn:
    name: str
    type: str
    mode: str


# BigQuery reports legacy type names in table metadata.
_ALIASES = {"INTEGER": "INT64", "FLOAT": "FLOAT64", "BOOLEAN": "BOOL", "BIGNUMERIC": "BIGNUMERIC"}


def _norm(type_: str) -> str:
    return _ALIASES.get(type_.upper(), type_.upper())


def plan_migration(spec: TableSpec, existing: Sequence[ExistingColumn]) -> list[Column]:
    """The columns to add to an existing table so it carries ``spec`` (pure).

    Additive only: a declared column missing from the table is added as NULLABLE (BigQuery
    refuses to add REQUIRED columns to a table with rows, and old rows have no value);
    columns the table has beyond the declaration are left alone (a newer writer may have
    added them). A type change raises ``SchemaConflict``.
    """
    have = {c.name: c for c in existing}
    added: list[Column] = []
    for column in spec.columns:
        old = have.get(column.name)
        if old is None:
            added.append(Column(column.name, column.type, "NULLABLE", column.description))
        elif _norm(old.type) != _norm(column.type):
            raise SchemaConflict(
                f"archive table {spec.name}: column {column.name} is {old.type} in BigQuery "
                f"but the schema says {column.type}; the archive adds columns, it never "
                "rewrites them (migrate by hand, e.g. into a new dataset)"
            )
    return added


def describe(tables: Iterable[TableSpec] = TABLES) -> list[dict[str, str]]:
    """Rows documenting every column (``growthwatch archive schema``, the README)."""
    rows = []
    for spec in tables:
        for c in spec.columns:
            role = []
            if c.name == spec.partition_column:
                role.append("partition (DAY)")
            if c.name in spec.clustering:
                role.append(f"cluster {spec.clustering.index(c.name) + 1}")
            rows.append({"table": spec.name, "column": c.name, "type": c.type, "mode": c.mode,
                         "role": ", ".join(role), "description": c.description})  # fmt: skip
    return rows
