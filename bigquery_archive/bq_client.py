"""The BigQuery backend: the official ``google-cloud-bigquery`` client, thin.

Exactly-once loads: each day's rows go by a **load job** (NEWLINE_DELIMITED_JSON, free of
charge, unlike streaming inserts) into a per-day staging table with ``WRITE_TRUNCATE``
(a retried load replaces, never appends), then one ``MERGE`` on the idempotency key moves
them into the day's partition of ``events``. Running a day twice, or a crash between the
two steps, leaves the same rows. Streaming inserts' ``insertId`` de-duplication is
best-effort (and absent in the emulator), so nothing here relies on it.

Why MERGE and not a partition-decorated load (``events$20260101`` with WRITE_TRUNCATE):
truncating a partition replaces it with what the ledger holds *now*, and once retention has
trimmed the ledger that is less than the archive holds. MERGE only adds. (The emulator the
tests run against also refuses partition decorators.)

Every statement passes ``queries.prunes`` before it is sent, and the tables are created
with ``require_partition_filter`` so BigQuery itself refuses a full scan.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa

from bigquery_archive import queries
from bigquery_archive.backend import LoadOutcome
from bigquery_archive.rows import events_frame
from bigquery_archive.schema import (
    EVENTS,
    METRIC_ROWS,
    TABLES,
    ExistingColumn,
    TableSpec,
    plan_migration,
)
from bigquery_archive.settings import BigQuerySettings
from growthwatch import resolve_env

log = logging.getLogger(__name__)
_STAGING_TTL = timedelta(days=1)  # a crashed run's staging table expires by itself
_ROWS_PER_STREAM = 32_768
_MAX_STREAMS = 1_000


class UnprunedQuery(RuntimeError):
    """A statement would read an archive table without a partition filter."""


class BigQueryArchive:
    embedded = False

    def __init__(self, settings: BigQuerySettings, *, client: Any | None = None) -> None:
        from google.cloud import bigquery

        self._bq = bigquery
        self.settings = settings
        self.client = client or _client(settings)
        self.project = settings.project
        self.dataset = settings.dataset
        self.name = f"bigquery {settings.project}.{settings.dataset}"
        self.executed: list[str] = []  # every SQL statement sent (tests inspect them)
        self.on_query: Callable[[str], None] | None = None
        self._storage_client: Any = None  # None: not made yet; False: unavailable

    # -- tables -----------------------------------------------------------------------

    def _id(self, table: str) -> str:
        return f"{self.project}.{self.dataset}.{table}"

    def ensure(self) -> list[str]:
        bq = self._bq
        done: list[str] = []
        dataset = bq.Dataset(f"{self.project}.{self.dataset}")
        if self.settings.location:
            dataset.location = self.settings.location
        self.client.create_dataset(dataset, exists_ok=True)
        for spec in TABLES:
            done += self._ensure_table(spec)
        return done

    def _ensure_table(self, spec: TableSpec) -> list[str]:
        from google.api_core.exceptions import NotFound

        bq = self._bq
        try:
            table = self.client.get_table(self._id(spec.name))
        except NotFound:
            table = bq.Table(self._id(spec.name), schema=_schema(bq, spec.columns))
            table.time_partitioning = bq.TimePartitioning(
                type_=bq.TimePartitioningType.DAY, field=spec.partition_column
            )
            table.clustering_fields = list(spec.clustering)
            table.require_partition_filter = True
            table.description = spec.description
            self.client.create_table(table)
            return [f"created {spec.name} (partitioned by DAY({spec.partition_column}), "
                    f"clustered by {', '.join(spec.clustering)})"]  # fmt: skip
        existing = [ExistingColumn(f.name, f.field_type, f.mode) for f in table.schema]
        added = plan_migration(spec, existing)
        if not added:
            return []
        for column in added:  # DDL: free, and one column per statement (the emulator's limit)
            sql = queries.add_column(f"`{self._id(spec.name)}`", column.name, column.type)
            self.executed.append(sql)
            self.client.query(sql).result()
        table = self.client.get_table(self._id(spec.name))
        if {c.name for c in added} - {f.name for f in table.schema}:
            # BigQuery updates the metadata with the DDL; the emulator does not
            table.schema = [*table.schema, *_schema(bq, added)]
            self.client.update_table(table, ["schema"])
        return [f"{spec.name}: added column(s) {', '.join(c.name for c in added)}"]

    # -- loads ------------------------------------------------------------------------

    def load_events(self, day_start: datetime, path: Path, rows: int) -> LoadOutcome:
        return self._load(EVENTS, day_start, path, rows, queries.merge_events)

    def load_metric_rows(self, day_start: datetime, path: Path, rows: int) -> LoadOutcome:
        return self._load(METRIC_ROWS, day_start, path, rows, queries.merge_metric_rows)

    def _load(
        self,
        spec: TableSpec,
        day_start: datetime,
        path: Path,
        rows: int,
        merge: Callable[[str, str], str],
    ) -> LoadOutcome:
        bq = self._bq
        staging = self._id(f"_stage_{spec.name}_{day_start:%Y%m%d}")
        config = bq.LoadJobConfig(
            source_format=bq.SourceFormat.NEWLINE_DELIMITED_JSON,
            write_disposition=bq.WriteDisposition.WRITE_TRUNCATE,
            schema=_schema(bq, spec.columns),
        )
        if rows:
            with path.open("rb") as data:
                self.client.load_table_from_file(data, staging, job_config=config).result()
        else:  # an empty day still MERGEs (metric rows: the day's rows were all removed)
            self.client.create_table(bq.Table(staging, schema=_schema(bq, spec.columns)),
                                     exists_ok=True)  # fmt: skip
        try:
            table = self.client.get_table(staging)
            table.expires = datetime.now(day_start.tzinfo) + _STAGING_TTL
            self.client.update_table(table, ["expires"])
        except Exception as exc:  # expiry is a nicety: the table is dropped below anyway
            log.debug("staging expiry not set: %s", exc)
        day_end = day_start + timedelta(days=1)
        job = self.query(
            merge(f"`{self._id(spec.name)}`", f"`{staging}`"),
            start=day_start, end=day_end,
        )  # fmt: skip
        inserted = int(getattr(job, "num_dml_affected_rows", None) or 0)
        self.client.delete_table(staging, not_found_ok=True)
        return LoadOutcome(staged=rows, inserted=inserted)

    # -- queries ----------------------------------------------------------------------

    def query(
        self, sql: str, *, start: datetime, end: datetime, arrays: dict[str, Sequence[str]] | None = None
    ) -> Any:
        """Run one statement with ``@start``/``@end`` (and array parameters); refuses a
        statement that does not prune partitions."""
        if not queries.prunes(sql):
            raise UnprunedQuery(f"refusing to send a statement without a partition filter: {sql}")
        bq = self._bq
        params: list[Any] = [
            bq.ScalarQueryParameter("start", "TIMESTAMP", start),
            bq.ScalarQueryParameter("end", "TIMESTAMP", end),
        ]
        for name, values in (arrays or {}).items():
            params.append(bq.ArrayQueryParameter(name, "STRING", list(values)))
        self.executed.append(sql)
        if self.on_query is not None:
            self.on_query(sql)
        config = bq.QueryJobConfig(query_parameters=params)
        job = self.client.query(sql, job_config=config)
        job.result()
        return job

    def read_events(
        self,
        start: datetime,
        end: datetime,
        *,
        types: Sequence[str] | None = None,
        products: Sequence[str] | None = None,
    ) -> pd.DataFrame:
        arrays: dict[str, Sequence[str]] = {}
        if types is not None:
            arrays["types"] = list(types)
        if products is not None:
            arrays["products"] = list(products)
        sql = queries.select_events(f"`{self._id(EVENTS.name)}`", types=types, products=products)
        return events_frame(self._read(sql, start=start, end=end, arrays=arrays))

    def _read(
        self, sql: str, *, start: datetime, end: datetime, arrays: dict[str, Sequence[str]]
    ) -> Any:
        """A SELECT's rows as an Arrow table.

        Through the BigQuery Storage Read API (Arrow over gRPC; 15x faster than REST pages
        against the emulator) when a storage client is available: the result is
        materialised in a short-lived table (``CREATE TABLE ... AS``, expiring in a day,
        dropped after the read) and read in parallel streams. Otherwise REST pages.
        """
        storage = self._storage()
        if storage is None:
            job = self.query(sql, start=start, end=end, arrays=arrays)
            return job.result().to_arrow(create_bqstorage_client=False)
        temp = self._id(f"_read_{uuid.uuid4().hex}")
        self.query(queries.materialise(f"`{temp}`", sql), start=start, end=end, arrays=arrays)
        try:
            rows = int(self.client.get_table(temp).num_rows or 0)
            # Ask for parallel streams of ~32k rows (an upper bound: BigQuery picks fewer
            # for small tables, the emulator at most 10).
            streams = min(_MAX_STREAMS, max(1, -(-rows // _ROWS_PER_STREAM)))
            batches = list(self.client.list_rows(temp).to_arrow_iterable(
                bqstorage_client=storage, max_stream_count=streams))  # fmt: skip
            if not batches:
                return self.client.list_rows(temp).to_arrow(create_bqstorage_client=False)
            return pa.Table.from_batches(batches)
        finally:
            self.client.delete_table(temp, not_found_ok=True)

    def _storage(self) -> Any | None:
        if self._storage_client is False:
            return None
        if self._storage_client is None:
            try:
                self._storage_client = _storage_client(self.settings, self.client)
            except Exception as exc:  # missing package or endpoint: REST still works
                log.warning("BigQuery Storage Read API unavailable (%s); reading over REST", exc)
                self._storage_client = False
                return None
        return self._storage_client

    def day_counts(self, start: datetime, end: datetime) -> dict[str, int]:
        job = self.query(queries.day_counts(f"`{self._id(EVENTS.name)}`"), start=start, end=end)
        return {r["day"].isoformat(): int(r["n"]) for r in job.result()}

    def sum_value(
        self, start: datetime, end: datetime, types: Sequence[str]
    ) -> dict[tuple[str, str, str | None], Decimal]:
        job = self.query(queries.sum_value(f"`{self._id(EVENTS.name)}`"), start=start,
                         end=end, arrays={"types": list(types)})  # fmt: skip
        return {(r["product"], r["type"], r["currency"]): Decimal(r["total"])
                for r in job.result()}  # fmt: skip

    def metric_rows(self, start: datetime, end: datetime) -> pd.DataFrame:
        sql = queries.select_metric_rows(f"`{self._id(METRIC_ROWS.name)}`")
        return self._read(sql, start=start, end=end, arrays={}).to_pandas()

    def close(self) -> None:
        self.client.close()


def _schema(bq: Any, columns: Sequence[Any]) -> list[Any]:
    return [bq.SchemaField(c.name, c.type, mode=c.mode, description=c.description)
            for c in columns]  # fmt: skip


def _client(settings: BigQuerySettings) -> Any:
    """The client the config describes: a service-account file (path from the
    environment), or anonymous credentials against ``api_endpoint`` (the emulator)."""
    from google.api_core.client_options import ClientOptions
    from google.cloud import bigquery

    options = ClientOptions(api_endpoint=settings.api_endpoint) if settings.api_endpoint else None
    credentials: Any = None
    if settings.credentials_file:
        from google.oauth2 import service_account

        path = resolve_env(settings.credentials_file, "archive.bigquery.credentials_file")
        credentials = service_account.Credentials.from_service_account_file(path)
    elif settings.api_endpoint:
        from google.auth.credentials import AnonymousCredentials

        credentials = AnonymousCredentials()
    return bigquery.Client(project=settings.project, credentials=credentials,
                           location=settings.location, client_options=options)  # fmt: skip


def _storage_client(settings: BigQuerySettings, client: Any) -> Any:
    """A BigQuery Storage Read client: plain gRPC to ``storage_endpoint`` (the emulator),
    else Google's endpoint with the REST client's credentials."""
    from google.cloud import bigquery_storage_v1

    if settings.storage_endpoint:
        import grpc
        from google.cloud.bigquery_storage_v1.services.big_query_read.transports import (
            BigQueryReadGrpcTransport,
        )

        # as the library's own channel does: read messages of any size (BigQuery sends up to
        # ~128 MiB of Arrow per message; gRPC's default cap is 4 MiB)
        channel = grpc.insecure_channel(settings.storage_endpoint, options=[
            ("grpc.max_send_message_length", -1), ("grpc.max_receive_message_length", -1)])  # fmt: skip
        return bigquery_storage_v1.BigQueryReadClient(
            transport=BigQueryReadGrpcTransport(channel=channel)
        )
    if settings.api_endpoint:
        raise RuntimeError("api_endpoint without storage_endpoint: no Storage Read API there")
    return bigquery_storage_v1.BigQueryReadClient(credentials=client._credentials)
