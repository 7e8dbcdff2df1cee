"""How the metrics engine and its families read the ledger.

``read_events`` is the one way to get events out of the ledger in frame form (the engine,
the drill-down and the benchmarks use it). ``LedgerView`` is what a metric family sees of
the ledger during a run: the same reads without the products left out of the run, plus
the few aggregates a family needs to know where its grids start.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa

from growthwatch.frames import EVENT_COLUMNS
from growthwatch.metrics._frame import LEDGER_ORDER, LEDGER_UNIQUE
from growthwatch.metrics.settings import MetricsSettings
from growthwatch.metrics.sql.queries import subject_part
from growthwatch.stores.ledger import SELECT_EXPR, Ledger

_ARROW_TYPES = {
    pa.string(): pd.StringDtype("pyarrow", na_value=np.nan),
    pa.large_string(): pd.StringDtype("pyarrow", na_value=np.nan),
}


def select_list(wanted: set[str]) -> str:
    """The SELECT list of an events read in ``EVENT_COLUMNS`` layout: the ``wanted``
    columns as stored, the others NULL."""
    return ", ".join(
        f"{SELECT_EXPR[c]} AS {c}" if c in wanted else f"NULL AS {c}" for c in EVENT_COLUMNS
    )


def events_frame(table: pa.Table, wanted: set[str]) -> pd.DataFrame:
    """An Arrow result of ``select_list`` as an event frame with ``EVENT_COLUMNS``' dtypes
    (strings stay Arrow strings; columns not ``wanted`` all NA)."""
    frame = table.to_pandas(types_mapper=_ARROW_TYPES.get)
    for col, dtype in EVENT_COLUMNS.items():
        if col in wanted or dtype != "str":
            frame[col] = frame[col].astype(dtype)
        else:
            frame[col] = pd.Series(pd.NA, index=frame.index, dtype="str")
    return frame


def read_events(
    ledger: Ledger,
    types: Sequence[str],
    *,
    start: pd.Timestamp | None = None,
    end: pd.Timestamp | None = None,
    columns: Sequence[str] | None = None,
    ordered: bool = True,
    products: Sequence[str] | None = None,
    seen_from: pd.Timestamp | None = None,
    exclude: Sequence[str] = (),
    subjects: Sequence[str] | None = None,
    part: tuple[int, int] | None = None,
    source: str = "events",
) -> pd.DataFrame:
    """Events of ``types`` (of ``products``, default all; of ``subjects``, default all) in
    [start, end), in ``EVENT_COLUMNS`` layout (unused columns NULL), ordered by time then
    key (the ledger's order) unless ``ordered`` is False. ``seen_from`` keeps only the
    subjects that also have an event of ``types`` at or after that time (in the same
    product). ``part`` (index, parts): one of that many disjoint partitions of the
    subjects (``queries.subject_part``; the events without one are all in the same).
    ``source``: the table (or parenthesized relation) shaped as ``events`` to read, e.g. an
    indexed copy of some types' events that a build reads group by group instead of
    scanning the whole ledger per group (``touched.read_upto``)."""
    wanted = set(columns or EVENT_COLUMNS)
    sql = (f"SELECT {select_list(wanted)} FROM {source} AS events "
           "WHERE type IN (SELECT unnest(?))")  # fmt: skip
    params: list[Any] = [list(types)]
    if start is not None:
        sql += " AND ts >= ?"
        params.append(start.to_pydatetime())
    if end is not None:
        sql += " AND ts < ?"
        params.append(end.to_pydatetime())
    if products is not None:
        sql += " AND product IN (SELECT unnest(?))"
        params.append(list(products))
    if exclude:
        sql += " AND product NOT IN (SELECT unnest(?))"
        params.append(list(exclude))
    if subjects is not None:
        sql += " AND subject IN (SELECT unnest(?))"
        params.append(list(subjects))
    if part is not None:
        sql += f" AND {subject_part(*part)}"
    if seen_from is not None:
        sql += (
            " AND EXISTS (SELECT 1 FROM events AS later WHERE later.product = events.product"
            " AND later.subject = events.subject AND later.type IN (SELECT unnest(?))"
            " AND later.ts >= ?)"
        )
        params += [list(types), seen_from.to_pydatetime()]
    if ordered:  # counting families skip the sort (and the keys): millions of rows
        sql += " ORDER BY ts, idempotency_key"
    cursor = ledger.connection
    try:
        # Arrow, not .df(): strings stay Arrow strings (pandas' own ``str`` storage), which
        # is several times faster on millions of rows than building Python objects.
        result = cursor.execute(sql, params).arrow()
        table = result if isinstance(result, pa.Table) else result.read_all()
    finally:
        cursor.close()
    frame = events_frame(table, wanted)
    frame.attrs[LEDGER_ORDER if ordered else LEDGER_UNIQUE] = True
    return frame


@dataclass
class LedgerView:
    """The ledger as one engine run sees it: every read leaves out ``exclude`` (the
    products whose events cannot be valued), and ``last_seq`` is the last event the
    previous run processed (0 on a full run)."""

    ledger: Ledger
    settings: MetricsSettings
    exclude: Sequence[str] = ()
    last_seq: int = 0
    # The ledger as it was before this instant (exclusive): a chunk of a run streaming
    # through the history by time (``MetricsEngine``) sees only the events before its end.
    end: pd.Timestamp | None = None
    # ``first_events``' results kept by a warm engine between runs, with the last ``seq``
    # each covers: the next run aggregates only the events after it, not all history
    firsts: dict[Any, tuple[int, pd.DataFrame]] | None = None
    # ``touched.event_count`` by (``Ledger.deletions``, ``seq``): every state a run checks
    # or saves asks it again (15 times an update, 16 ms each at 100M events), and only a
    # deletion changes it
    counted: dict[tuple[int, int], int] = field(default_factory=dict, repr=False,
                                                compare=False)  # fmt: skip

    def events(self, types: Sequence[str], **kwargs: Any) -> pd.DataFrame:
        """``read_events`` of this ledger, without the excluded products, before ``end``."""
        if self.end is not None:
            given = kwargs.get("end")
            kwargs["end"] = self.end if given is None else min(given, self.end)
        return read_events(self.ledger, types, exclude=self.exclude, **kwargs)

    def max_seq(self) -> int:
        """The ledger's last ``seq`` now (0 when empty), over every product: ``last_seq``
        of the rows from this view's ``last_seq`` on."""
        cursor = self.ledger.connection
        try:
            return last_seq(cursor, self.last_seq)
        finally:
            cursor.close()

    def rows(self, sql: str, params: list[Any]) -> list[tuple[Any, ...]]:
        """Plain rows of a small query (no frame: building one costs more than it)."""
        cursor = self.ledger.connection
        try:
            return cursor.execute(sql, params).fetchall()
        finally:
            cursor.close()

    def _filters(self, start: pd.Timestamp | None) -> tuple[str, list[Any]]:
        """SQL conditions (and their parameters) for this view's events from ``start``."""
        sql, params = "", []
        if start is not None:
            sql += " AND ts >= ?"
            params.append(start.to_pydatetime())
        if self.end is not None:
            sql += " AND ts < ?"
            params.append(self.end.to_pydatetime())
        if self.exclude:
            sql += " AND product NOT IN (SELECT unnest(?))"
            params.append(list(self.exclude))
        return sql, params

    def day_counts(self, types: Sequence[str], start: pd.Timestamp | None) -> pd.Series:
        """Events of ``types`` per UTC day from ``start`` (the day's first instant -> count,
        ascending; days without events left out): how a run sizes its time chunks, from
        one aggregate instead of the events."""
        filters, extra = self._filters(start)
        sql = ("SELECT epoch_us(ts) // 86400000000 AS day, count(*) AS n FROM events "
               f"WHERE type IN (SELECT unnest(?)){filters}")  # fmt: skip
        params: list[Any] = [list(types), *extra]
        frame = self._df(sql + " GROUP BY day ORDER BY day", params)
        days = pd.to_datetime(frame["day"].to_numpy(dtype="int64") * 86_400, unit="s", utc=True)
        return pd.Series(frame["n"].to_numpy(dtype="int64"), index=days)

    def first_events(
        self, types: Sequence[str], by: Sequence[str] = ("product",), *, with_subject: bool = False
    ) -> pd.Series:
        """The first event of ``types`` per ``by`` (events columns: an index of that
        column, a MultiIndex of several), of events with a subject only if
        ``with_subject``. The instant, not its day: a family takes the day in its own
        timezone. Where a grid starts, or a user's first activity ever, from one aggregate
        instead of the history."""
        keys = ", ".join(by)
        where = " AND subject IS NOT NULL" if with_subject else ""
        sql = (f"SELECT {keys}, min(ts) AS first, max(seq) AS seq FROM events "
               f"WHERE type IN (SELECT unnest(?)){where}")  # fmt: skip
        params: list[Any] = [list(types)]
        key = (tuple(types), tuple(by), with_subject)
        cached = None if self.firsts is None else self.firsts.get(key)
        if cached is not None:  # a warm engine: only the events since, merged by min
            sql += " AND seq > ?"
            params.append(cached[0])
        frame = self._df(sql + f" GROUP BY {keys}", params)
        frame["first"] = pd.to_datetime(frame["first"], utc=True)
        if cached is not None:
            frame = (pd.concat([cached[1], frame], ignore_index=True)
                     .groupby(list(by), as_index=False, dropna=False)
                     .agg(first=("first", "min"), seq=("seq", "max")))  # fmt: skip
        if self.firsts is not None:
            seen = int(frame["seq"].max()) if len(frame) else (cached[0] if cached else 0)
            self.firsts[key] = (seen, frame)
        index = (pd.Index(frame[by[0]]) if len(by) == 1
                 else pd.MultiIndex.from_frame(frame[list(by)]))  # fmt: skip
        return pd.Series(frame["first"].array, index=index)

    def previous_last_by_currency(self, types: Sequence[str]) -> pd.Timestamp | None:
        """The earliest last event of ``types`` before this run, over the (product,
        currency) pairs that have new ones: events after ``last_seq``, or for a view with
        an ``end`` (a chunk of a run streaming by time), the events from ``end`` on."""
        if self.end is not None:
            old, new = "ts < ?", "max(ts) >= ?"
            params: list[Any] = [self.end.to_pydatetime(), list(types), self.end.to_pydatetime()]
            frame = self._df(
                f"SELECT epoch_us(min(prev)) AS prev FROM (SELECT max(ts) FILTER (WHERE {old}) "
                "AS prev FROM events WHERE type IN (SELECT unnest(?)) "
                f"GROUP BY product, currency HAVING {new})", params,
            )  # fmt: skip
            prev = frame["prev"].iloc[0] if len(frame) else None
            return None if prev is None or pd.isna(prev) else _utc_us(int(prev))
        return self._previous_last_since_seq(types)

    def _previous_last_since_seq(self, types: Sequence[str]) -> pd.Timestamp | None:
        """``previous_last_by_currency`` for an update: the pairs of the new events (a
        ``seq`` range: zone maps), then each pair's last older event searched in growing
        windows of time before the new events' earliest instant, so an update reads the
        last days of money events, not their whole history (a pair's latest older event
        in a window is its latest of all). Only a pair with nothing older in the last
        year (a new product or currency) costs a scan of the rest."""
        kinds = list(types)
        pairs = self._df(
            f"SELECT product, {_CURRENCY} AS currency, epoch_us(min(ts)) AS earliest "
            "FROM events WHERE seq > ? AND type IN (SELECT unnest(?)) GROUP BY ALL",
            [self.last_seq, kinds],
        )  # fmt: skip
        if pairs.empty:
            return None
        earliest = _utc_us(int(pairs["earliest"].min()))
        wanted = {(p, c) for p, c in zip(pairs["product"], pairs["currency"], strict=True)}
        found: dict[tuple[Any, Any], int] = {}
        for back in (pd.Timedelta(days=2), pd.Timedelta(days=35), pd.Timedelta(days=400), None):
            missing = sorted(wanted - found.keys(), key=repr)
            if not missing:
                break
            window = "" if back is None else " AND e.ts >= ?"
            extra: list[Any] = [] if back is None else [(earliest - back).to_pydatetime()]
            got = self._df(
                f"SELECT e.product, {_CURRENCY} AS currency, epoch_us(max(e.ts)) AS prev "
                "FROM events AS e JOIN (SELECT unnest(?) AS p, unnest(?) AS c) AS w "
                f"ON e.product = w.p AND {_CURRENCY} = w.c "
                f"WHERE e.seq <= ? AND e.type IN (SELECT unnest(?)){window} GROUP BY ALL",
                [[p for p, _c in missing], [c for _p, c in missing], self.last_seq, kinds,
                 *extra],
            )  # fmt: skip
            for p, c, prev in zip(got["product"], got["currency"], got["prev"], strict=True):
                found[(p, c)] = int(prev)
        return _utc_us(min(found.values())) if found else None

    def _df(self, sql: str, params: list[Any]) -> pd.DataFrame:
        cursor = self.ledger.connection
        try:
            return cursor.execute(sql, params).df()
        finally:
            cursor.close()


# a money event's currency as a join key (NULL, which no valuation accepts, as a value)
_CURRENCY = "coalesce(currency, '')"


def _utc_us(micros: int) -> pd.Timestamp:
    return pd.Timestamp(micros, unit="us", tz="UTC")


def last_seq(con: duckdb.DuckDBPyConnection, after: int) -> int:
    """The ledger's last ``seq`` (0 when empty), read on ``con`` (a caller inside a
    transaction gets its own snapshot's).

    Why not ``max(seq)`` of the table: once events were appended since the last
    checkpoint DuckDB has no statistics to answer it and scans the whole column (9 ms of
    CPU at 10M events, paid by every state a run checks). Seqs grow with the table, so
    the rows from ``after`` on are its last row groups, which zone maps find; only when
    none is left there (a trim removed them) is the column scanned."""
    if after > 0:
        row = con.execute("SELECT max(seq) FROM events WHERE seq >= ?", [after]).fetchone()
        if row and row[0] is not None:
            return int(row[0])
    row = con.execute("SELECT coalesce(max(seq), 0) FROM events").fetchone()
    return int(row[0]) if row else 0
