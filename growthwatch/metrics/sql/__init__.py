"""The engagement metrics' SQL: logo retention and funnels as queries over an events table.

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
"""

from __future__ import annotations

from collections.abc import Iterable

__all__ = ["literal", "literals", "month_number"]


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


def month_number(expr: str, tz: str) -> str:
    """Local calendar months since 1970-01 of a TIMESTAMPTZ expression in ``tz`` (as
    ``growthwatch.metrics._frame.local_month_numbers``): the wall-clock year and month of
    the instant there. ``AT TIME ZONE`` is what sqlglot maps to BigQuery's ``DATETIME(ts,
    tz)``."""
    local = f"({expr} AT TIME ZONE {literal(tz)})"
    return f"((EXTRACT(YEAR FROM {local}) - 1970) * 12 + EXTRACT(MONTH FROM {local}) - 1)"
