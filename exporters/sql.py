"""Product databases: KPIs declared in YAML as SQL queries, run through SQLAlchemy.

Each KPI of a ``sql`` source is a query with a time column and a value column (and
optionally a cursor column, default the time column, and an id column)::

    kpis:
      - name: orders
        query: "SELECT id, created_at, amount FROM orders WHERE created_at > :cursor"
        time_column: created_at
        value_column: amount
        id_column: id

The query may use the bind parameters ``:cursor`` (where the previous run got to, minus
the lookback) and ``:until``; both are aware UTC timestamps. Every row becomes one ``kpi``
event (``metadata.kpi`` = the KPI's name) keyed by the KPI name and the row's id (or its
time when there is no id column), so re-reading the lookback window stores nothing twice.

A KPI row is a fact: once stored, a later read of the same row with another value does
not overwrite it (the ledger is append-only). Aggregating queries should therefore cover
closed buckets only, e.g. ``... WHERE day < date_trunc('day', :until)`` (a re-read that finds another
value for a stored row is a duplicate; the first value stays). Any database SQLAlchemy supports works (the URL picks the
driver); the tests run against a real PostgreSQL.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping
from datetime import UTC, date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any, ClassVar

import sqlalchemy as sa

from exporters.base import Batch, Rejection, SourceAuthError, SourceError, Stream, invalid_reason
from exporters.state import StateStore
from growthwatch.config import SourceConfig
from growthwatch.config.schema import SECRET, SLUG
from growthwatch.events import EventType, EventValidationError, GrowthEvent

log = logging.getLogger(__name__)

SOURCE = "sql"
FETCH_ROWS = 5_000


def _when(value: Any) -> datetime:
    """A row's time: aware datetimes as they are, naive ones and dates taken as UTC."""
    if isinstance(value, datetime):
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    if isinstance(value, date):
        return datetime(value.year, value.month, value.day, tzinfo=UTC)
    if isinstance(value, str):
        return _when(datetime.fromisoformat(value))
    raise ValueError(f"not a time: {value!r}")


def _number(value: Any) -> Decimal:
    if value is None or isinstance(value, bool):
        raise ValueError(f"not a number: {value!r}")
    try:
        return Decimal(str(value)).quantize(Decimal("0.000001"))
    except InvalidOperation as exc:
        raise ValueError(f"not a number: {value!r}") from exc


class SqlStream(Stream):
    source_type: ClassVar[str] = SOURCE
    options: ClassVar[Mapping[str, Any]] = {
        "url": SECRET,
        "kpis": {
            "type": "array",
            "minItems": 1,
            "items": {
                "type": "object",
                "additionalProperties": False,
                "required": ["name", "query", "time_column", "value_column"],
                "properties": {
                    "name": SLUG,
                    "query": {"type": "string", "minLength": 1},
                    "time_column": {"type": "string"},
                    "value_column": {"type": "string"},
                    "cursor_column": {"type": "string"},
                    "id_column": {"type": "string"},
                },
            },
        },
    }
    required: ClassVar[tuple[str, ...]] = ("url", "kpis")
    replication_key: ClassVar[str] = "cursor_column (per KPI; default time_column)"
    schema: ClassVar[dict[str, str]] = {
        "<time_column>": "timestamp or date (event time; naive values are UTC)",
        "<value_column>": "number (the KPI value)",
        "<cursor_column>": "timestamp (replication key; default time_column)",
        "<id_column>": "any (row identity; default the time)",
    }

    def __init__(
        self, config: SourceConfig, state: StateStore, *, engine: sa.Engine | None = None
    ) -> None:
        super().__init__(config, state)
        self.kpis: list[Mapping[str, Any]] = list(config.options["kpis"])
        self.engine = engine or sa.create_engine(config.secret("url"), pool_pre_ping=True)

    def close(self) -> None:
        self.engine.dispose()

    def run(self, since: datetime, until: datetime) -> Iterator[Batch]:
        reached: list[datetime] = []
        for index, kpi in enumerate(self.kpis):
            latest: datetime | None = None
            for batch, seen in self._kpi(kpi, since, until):
                if seen is not None and (latest is None or seen > latest):
                    latest = seen
                batch.progress = (index + 0.5) / len(self.kpis)
                yield batch
            if latest is not None:
                reached.append(latest)
        # The slowest KPI bounds the stream's cursor, so none of them skips rows.
        yield Batch(events=[], cursor=min(reached) if reached else None, progress=1.0)

    def _kpi(
        self, kpi: Mapping[str, Any], since: datetime, until: datetime
    ) -> Iterator[tuple[Batch, datetime | None]]:
        name = str(kpi["name"])
        time_col = str(kpi["time_column"])
        value_col = str(kpi["value_column"])
        cursor_col = str(kpi.get("cursor_column") or time_col)
        id_col = kpi.get("id_column")
        query = sa.text(str(kpi["query"]))
        params = {k: v for k, v in (("cursor", since), ("until", until)) if f":{k}" in kpi["query"]}
        try:
            with self.engine.connect() as con:
                result = con.execution_options(stream_results=True).execute(query, params)
                columns = list(result.keys())
                missing = {time_col, value_col, cursor_col, *([id_col] if id_col else [])} - set(
                    columns
                )
                if missing:
                    raise SourceError(
                        f"sql KPI {name!r}: the query returns {columns}, not {sorted(missing)}"
                    )
                while rows := result.mappings().fetchmany(FETCH_ROWS):
                    yield self._batch(name, rows, time_col, value_col, cursor_col, id_col)
        except sa.exc.OperationalError as exc:
            text = str(exc.orig or exc).lower()
            if any(word in text for word in ("password", "authentication", "permission",
                                             "role", "access denied")):  # fmt: skip
                raise SourceAuthError(
                    f"sql: the database refused the connection for KPI {name!r}: "
                    f"{str(exc.orig).strip()}; check the url's user and password"
                ) from exc
            raise

    def _batch(
        self, name: str, rows: Any, time_col: str, value_col: str, cursor_col: str, id_col: Any
    ) -> tuple[Batch, datetime | None]:
        events: list[GrowthEvent] = []
        rejected: list[Rejection] = []
        latest: datetime | None = None
        for row in rows:
            try:
                when = _when(row[time_col])
                mark = when if cursor_col == time_col else _when(row[cursor_col])
                identity = row[id_col] if id_col else when.isoformat()
                if identity is None:
                    raise ValueError(f"{id_col} is NULL")
                events.append(GrowthEvent(
                    product=self.product, type=EventType.KPI, timestamp=when,
                    value=_number(row[value_col]), metadata={"kpi": name}, source=SOURCE,
                    source_id=f"{self.config.name}:{name}:{identity}", kind="kpi",
                ))  # fmt: skip
            except EventValidationError as exc:
                rejected.append(Rejection(invalid_reason(exc.field), str(exc), repr(dict(row))))
                continue
            except (ValueError, TypeError) as exc:
                reason = "missing_id" if "NULL" in str(exc) else "malformed_record"
                rejected.append(Rejection(reason, f"KPI {name}: {exc}", repr(dict(row))[:2000]))
                continue
            if latest is None or mark > latest:
                latest = mark
        return Batch(events=events, rejected=rejected), latest
