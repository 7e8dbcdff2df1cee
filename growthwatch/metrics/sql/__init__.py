"""The engagement metrics' SQL: logo retention, funnels, active users and the lifecycle.

Why SQL: both metrics hang on each user's *first* event of some types over the whole
history (a signup month, a funnel entry), which in pandas meant holding every user's
history in one frame. As GROUP BY and joins in DuckDB, the ledger's own engine, the work is
columnar and out of core (DuckDB keeps to ``SET memory_limit`` and spills), and pandas only
sees the cells (a few thousand rows).

One place, one dialect: every statement is built by ``growthwatch.metrics.sql.queries``
in DuckDB SQL restricted to what ``sqlglot`` transpiles (``sqlglot.transpile(sql,
read="duckdb", write="bigquery")``), so the same definitions can run where the history
lives (the BigQuery archive's ``events`` table has the columns these queries read). Values
that vary (time zone, event types, windows) are rendered as quoted literals, never
concatenated from raw input: ``literal`` escapes them.

One style: every statement is a Python function returning text (``queries`` for logo
retention and funnels, ``activity_queries`` for the active-user rollup), none a ``.sql``
file with ``?`` parameters. Why: nearly every statement has parts that vary in shape, not
only in value (a time zone's month or day expression, a list of products, a funnel's steps,
the day range a read takes, the state tables an update folds into), which a file with
placeholders filled by ``str.replace`` hid from the tests; as functions, each is rendered
and transpiled to BigQuery by the tests exactly as it runs. The state over those queries
is kept by ``state`` (cohorts, funnels) and ``activity`` (the active-user rollup).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np
import pandas as pd

from growthwatch.metrics._frame import TIME_DTYPE, local_month_numbers, month_starts

__all__ = ["Span", "day_number", "literal", "literals", "month_number"]

Span = tuple[pd.Timestamp, pd.Timestamp]  # the first and last instant a query's rows hold
_MAX_MONTHS = 1200  # a span longer than a century is left to the time zone conversion


def literal(value: str | int) -> str:
    """A SQL literal: integers as they are, strings single-quoted with quotes doubled."""
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise TypeError(f"not a SQL literal value: {value!r}")
    if isinstance(value, int):
        return str(value)
    return "'" + value.replace("'", "''") + "'"


def literals(values: Iterable[str]) -> str:
    """A parenthesised list of string literals for ``IN``; ``(NULL)`` when empty (matches
    nothing, and stays valid SQL)."""
    items = [literal(v) for v in values]
    return "(" + ", ".join(items) + ")" if items else "(NULL)"


def month_number(expr: str, tz: str, span: Span | None = None) -> str:
    """Local calendar months since 1970-01 of a TIMESTAMPTZ expression in ``tz`` (as
    ``growthwatch.metrics._frame.local_month_numbers``): the wall-clock year and month of
    the instant there. ``AT TIME ZONE`` is what sqlglot maps to BigQuery's ``DATETIME(ts,
    tz)``.

    With ``span`` (the range the rows hold), instants inside it are compared with the UTC
    instants of the local month starts instead (a binary ``CASE``: a handful of integer
    comparisons per row, where DuckDB's time zone conversion costs about 0.4 s per
    million rows); outside it the conversion still answers, so the span only has to be
    about right, never exact."""
    local = f"({expr} AT TIME ZONE {literal(tz)})"
    wall = f"((EXTRACT(YEAR FROM {local}) - 1970) * 12 + EXTRACT(MONTH FROM {local}) - 1)"
    if span is None:
        return wall
    first, last = local_month_numbers(pd.Series(list(span)).astype(TIME_DTYPE), tz)
    if last - first > _MAX_MONTHS:
        return wall
    months = np.arange(first, last + 2, dtype="int64")  # one past the end: its start
    starts = [_instant(t) for t in month_starts(months, tz)]
    inner = _bisect(expr, [int(m) for m in months[:-1]], starts[:-1])
    return (f"(CASE WHEN {expr} < {starts[0]} OR {expr} >= {starts[-1]} THEN {wall} "
            f"ELSE {inner} END)")  # fmt: skip


def day_number(expr: str, tz: str) -> str:
    """Local days since 1970-01-01 of a TIMESTAMPTZ expression in ``tz`` (as
    ``growthwatch.metrics._frame.local_day_numbers``): the wall-clock date there, by
    the time zone conversion (``month_number``'s comparisons with a span's bucket starts
    would save it; not done for days yet)."""
    return f"date_diff('day', DATE '1970-01-01', CAST({expr} AT TIME ZONE {literal(tz)} AS DATE))"


def _instant(at: pd.Timestamp) -> str:
    return f"CAST({literal(pd.Timestamp(at).isoformat())} AS TIMESTAMPTZ)"


def _bisect(expr: str, months: Sequence[int], starts: Sequence[str]) -> str:
    """The month of ``expr`` among consecutive months starting at ``starts`` (it is at or
    after the first start and before the start after the last month)."""
    if len(months) == 1:
        return literal(months[0])
    mid = len(months) // 2
    return (f"(CASE WHEN {expr} < {starts[mid]} THEN {_bisect(expr, months[:mid], starts[:mid])} "
            f"ELSE {_bisect(expr, months[mid:], starts[mid:])} END)")  # fmt: skip
