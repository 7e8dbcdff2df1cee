"""Rows for the archive: ledger events and daily metric series as NEWLINE_DELIMITED_JSON.

Events are exported by the ledger's own DuckDB (``COPY ... TO ... (FORMAT JSON)``): a
2M-event day serialises in C++ instead of two million Python dicts, and money leaves the
ledger as the text of its DECIMAL(18, 6) (``"12.340000"``), which BigQuery parses into
``NUMERIC`` exactly. A float never touches an archived amount.

Metric rows are few (a few thousand a day), so they are built with pandas from the series
store's wide frames.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from bigquery_archive.schema import EVENTS, is_money
from growthwatch import MEASUREMENTS, Ledger, SeriesReader

DAY_MEASUREMENTS: tuple[str, ...] = tuple(m.name for m in MEASUREMENTS if m.bucket == "day")
_TAGS = {m.name: m.tags for m in MEASUREMENTS}
_TS = "strftime(timezone('UTC', {c}), '%Y-%m-%dT%H:%M:%S.%fZ')"

# ledger column expression for each archive column (DuckDB SQL over ``events``)
_EVENT_EXPR: dict[str, str] = {
    "idempotency_key": "replace(CAST(idempotency_key AS VARCHAR), '-', '')",
    "ts": _TS.format(c="ts"),
    "value": "CAST(value AS VARCHAR)",
    "mrr_before": "CAST(mrr_before AS VARCHAR)",
    "mrr_after": "CAST(mrr_after AS VARCHAR)",
    "ingested_at": _TS.format(c="ingested_at"),
    "ledger_seq": "seq",
    "archived_at": "?",
}
_EVENT_SELECT = ", ".join(f"{_EVENT_EXPR.get(c, c)} AS {c}" for c in EVENTS.column_names)


def export_events(
    ledger: Ledger,
    path: Path,
    *,
    start: datetime,
    end: datetime,
    after_seq: int,
    archived_at: datetime,
) -> int:
    """Write the ledger's events of [start, end) with ``seq > after_seq`` to ``path`` as
    NDJSON in the archive's column layout; returns the number of rows."""
    sql = (
        f"COPY (SELECT {_EVENT_SELECT} FROM events WHERE ts >= ? AND ts < ? AND seq > ? "
        f"ORDER BY ts, idempotency_key) TO '{_quote(path)}' (FORMAT JSON)"
    )
    cursor = ledger.connection
    try:
        cursor.execute(sql, [archived_at.isoformat(), start, end, after_seq])
        row = cursor.execute(
            "SELECT count(*) FROM events WHERE ts >= ? AND ts < ? AND seq > ?",
            [start, end, after_seq],
        ).fetchone()
    finally:
        cursor.close()
    return int(row[0]) if row else 0


def _quote(path: Path) -> str:
    return str(path).replace("'", "''")


def ledger_days(ledger: Ledger, start: datetime | None, end: datetime) -> pd.DataFrame:
    """Per UTC day of [start, end): the ledger's event count and max ``seq`` (one
    aggregate; ``day`` as a date). What the archive position is compared with."""
    sql = (
        "SELECT CAST(floor(epoch(ts) / 86400) AS BIGINT) AS day_no, count(*) AS n, "
        "max(seq) AS max_seq FROM events WHERE ts < ?"
    )
    params: list[Any] = [end]
    if start is not None:
        sql += " AND ts >= ?"
        params.append(start)
    cursor = ledger.connection
    try:
        frame = cursor.execute(sql + " GROUP BY 1 ORDER BY 1", params).df()
    finally:
        cursor.close()
    frame["day"] = pd.to_datetime(frame["day_no"] * 86400, unit="s", utc=True).dt.date
    return frame[["day", "n", "max_seq"]]


def metric_rows(
    series: SeriesReader, start: datetime, end: datetime, archived_at: datetime
) -> list[dict[str, Any]]:
    """The daily measurements' values of [start, end) as archive rows (undefined skipped)."""
    rows: list[dict[str, Any]] = []
    stamp = archived_at.isoformat()
    for name in DAY_MEASUREMENTS:
        wide = series.read(name, start=start, end=end)
        if wide.empty or len(wide.columns) <= 1:
            continue
        tags = [t for t in _TAGS[name] if t in wide.columns]
        fields = [c for c in wide.columns if c != "time" and c not in tags]
        long = wide.melt(id_vars=["time", *tags], value_vars=fields, var_name="field")
        long = long[pd.to_numeric(long["value"], errors="coerce").notna()]
        times = pd.DatetimeIndex(long["time"]).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        tag_json = [
            json.dumps({t: v for t, v in zip(tags, vals, strict=True) if isinstance(v, str)},
                       sort_keys=True)
            for vals in long[tags].itertuples(index=False, name=None)
        ] if tags else ["{}"] * len(long)  # fmt: skip
        products = long["product"] if "product" in long else pd.Series("all", index=long.index)
        for when, tag, product, field, value in zip(
            times, tag_json, products, long["field"], long["value"], strict=True
        ):
            number = float(value)
            rows.append({
                "time": when, "measurement": name, "field": field, "product": product,
                "tags": tag, "value": number,
                "amount": f"{round(number, 9):.9f}" if is_money(name, field) else None,
                "archived_at": stamp,
            })  # fmt: skip
    return rows


def write_ndjson(rows: Sequence[dict[str, Any]], path: Path) -> int:
    with path.open("w") as out:
        for row in rows:
            out.write(json.dumps(row, separators=(",", ":")))
            out.write("\n")
    return len(rows)


def events_frame(table: Any) -> pd.DataFrame:
    """An Arrow table of archive ``events`` rows in ``growthwatch.frames`` layout (money
    as float, as the metrics engine reads it; the key as 32 hex digits)."""
    frame = table.to_pandas()
    out = pd.DataFrame(index=frame.index)
    out["idempotency_key"] = frame["idempotency_key"].astype("str")
    out["product"] = frame["product"].astype("str")
    out["type"] = frame["type"].astype("str")
    out["ts"] = pd.to_datetime(frame["ts"], utc=True).astype("datetime64[us, UTC]")
    for col in ("value", "mrr_before", "mrr_after"):
        out[col] = np.array([np.nan if v is None else float(v) for v in frame[col]],
                            dtype="float64")  # fmt: skip
    for col in ("currency", "subject", "plan", "channel", "metadata", "source",
                "source_id", "kind"):  # fmt: skip
        out[col] = frame[col].astype("str")
    # the Storage Read API's parallel streams keep no order: the ledger's (time, key) order
    return out.sort_values(["ts", "idempotency_key"], ignore_index=True)
