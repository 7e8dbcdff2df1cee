"""Every query of ``growthwatch.metrics.sql.queries`` parses as DuckDB SQL and transpiles
to BigQuery with sqlglot, nothing unsupported (``ErrorLevel.RAISE`` turns what sqlglot
would only warn about into an error); the emulator test in
``tests/archive/test_metrics_sql_bigquery.py`` runs them."""

from __future__ import annotations

import inspect
import logging

import pandas as pd
import pytest
import sqlglot
from sqlglot.errors import ErrorLevel

from growthwatch.metrics.sql import literal, literals, month_number
from growthwatch.metrics.sql import queries as q

SRC = q.Source(where=q.ledger_where(["p9"], after_seq=10, upto_seq=20,
                                    since="2026-03-01T00:00:00+00:00"))  # fmt: skip
WANTED = ("signup", "activation", "payment", "refund")


def rendered() -> dict[str, list[str]]:
    """Each query builder of the module, rendered for a few zones and funnel shapes."""
    out: dict[str, list[str]] = {}
    span = (pd.Timestamp("2025-11-03", tz="UTC"), pd.Timestamp("2026-10-31 23:30", tz="UTC"))
    for tz in ("UTC", "Europe/Berlin", "America/New_York"):
        out.setdefault("logo_members", []).append(q.logo_members(SRC, tz))
        out["logo_members"].append(q.logo_members(SRC, tz, span))  # months by comparisons
        out.setdefault("logo_active", []).append(q.logo_active(SRC, tz))
        out.setdefault("logo_last_month", []).append(q.logo_last_month(SRC, tz))
        out.setdefault("logo_retention", []).append(q.logo_retention(SRC, tz))
        out.setdefault("logo_cells", []).append(q.logo_cells("members", "active", 674))
        for steps in (("signup",), ("signup", "payment"), ("signup", "activation", "payment")):
            users = q.funnel_users(steps, 14, WANTED, SRC)
            out.setdefault("funnel_users", []).append(users)
            out["funnel_users"].append(q.funnel_users(
                steps, 3, WANTED, SRC, entries="(SELECT product, subject, t0 FROM recent)"))  # fmt: skip
            out.setdefault("funnel_counts", []).append(q.funnel_counts(f"({users})", tz, "2026-03-01T00:00:00+00:00"))
            out.setdefault("funnel", []).append(q.funnel(steps, 7, WANTED, SRC, tz))
            out["funnel"].append(q.funnel(steps, 7, WANTED, SRC, tz, span))
        # traffic and revenue (their own tests: test_traffic_sql, test_revenue_sql)
        out.setdefault("traffic_visitors", []).append(q.traffic_visitors(SRC, tz, 30))
        out.setdefault("traffic_counts", []).append(q.traffic_counts("traffic_visitors"))
        out.setdefault("traffic", []).append(q.traffic(SRC, tz, 30))
        out.setdefault("revenue", []).extend(q.revenue(SRC, freq, tz) for freq in ("D", "h"))
        # signups and activations (their own tests: test_signup_counts)
        out.setdefault("signup_counts", []).append(q.signup_counts(SRC, tz, 7))
    out["ledger_where"] = [f"SELECT 1 FROM events WHERE {SRC.where}",
                           "SELECT 1 FROM events WHERE " + q.ledger_where(
                               before="2026-04-01T00:00:00+00:00")]  # fmt: skip
    # the ledger's partitions of the users (BigQuery runs the whole: one part, ``TRUE``)
    out["subject_part"] = [f"SELECT 1 FROM events WHERE {q.subject_part(i, n)}"
                           for i, n in ((0, 1), (0, 4), (3, 4))]  # fmt: skip
    out["subject_hash"] = [f"SELECT {q.subject_hash(4)} AS part FROM events"]
    return out


def test_every_query_builder_is_covered() -> None:
    builders = {name for name, fn in inspect.getmembers(q, inspect.isfunction)
                if fn.__module__ == q.__name__ and not name.startswith("_")}  # fmt: skip
    assert builders == set(rendered())


@pytest.mark.parametrize("name", sorted(rendered()))
def test_query_transpiles_to_bigquery_without_unsupported_parts(
    name: str, caplog: pytest.LogCaptureFixture
) -> None:
    for sql in rendered()[name]:
        assert sqlglot.parse_one(sql, read="duckdb") is not None
        with caplog.at_level(logging.WARNING, logger="sqlglot"):
            (out,) = sqlglot.transpile(sql, read="duckdb", write="bigquery",
                                       unsupported_level=ErrorLevel.RAISE)  # fmt: skip
        assert not caplog.records, [r.getMessage() for r in caplog.records]
        # the local-time buckets become BigQuery's DATETIME(ts, zone)
        if "AT TIME ZONE" in sql:
            assert "DATETIME(" in out and "AT TIME ZONE" not in out
        if "AS TIMESTAMPTZ)" in sql:  # instants stay instants
            assert "AS TIMESTAMP)" in out


def test_literals_escape_quotes_and_month_number_reads_the_wall_clock() -> None:
    assert literal("o'brien") == "'o''brien'" and literal(7) == "7"
    assert literals([]) == "(NULL)" and literals(["a", "b"]) == "('a', 'b')"
    with pytest.raises(TypeError):
        literal(True)
    import duckdb

    con = duckdb.connect()
    # 2026-03-31 22:30 UTC is already April in Berlin (CEST, +2): month 2026-04 = 675
    expr = month_number("CAST('2026-03-31 22:30:00+00' AS TIMESTAMPTZ)", "Europe/Berlin")
    assert con.execute(f"SELECT {expr}").fetchone() == (56 * 12 + 3,)
    expr = month_number("CAST('2026-03-31 22:30:00+00' AS TIMESTAMPTZ)", "UTC")
    assert con.execute(f"SELECT {expr}").fetchone() == (56 * 12 + 2,)


@pytest.mark.parametrize("tz", ["Europe/Berlin", "America/New_York", "Asia/Kathmandu", "UTC"])
def test_month_number_by_comparisons_equals_the_conversion(tz: str) -> None:
    """Every 997 s over 19 months, inside the span and outside it (where the conversion
    answers), around DST changes and a +05:45 zone: the same month either way."""
    import duckdb

    span = (pd.Timestamp("2026-01-10", tz="UTC"), pd.Timestamp("2026-09-20", tz="UTC"))
    rows = ("(SELECT TIMESTAMPTZ '2025-11-01 00:00:00+00' + to_seconds(i * 997) AS ts "
            "FROM range(50000) AS t(i))")  # fmt: skip
    fast, slow = month_number("ts", tz, span), month_number("ts", tz)
    (bad, n, inside) = duckdb.connect().execute(
        f"SELECT count(*) FILTER (WHERE {fast} <> {slow}), count(*), count(*) FILTER "
        f"(WHERE ts >= TIMESTAMPTZ '2026-02-01 00:00:00+00' AND ts < TIMESTAMPTZ "
        f"'2026-09-01 00:00:00+00') FROM {rows}").fetchone()  # fmt: skip
    assert (bad, n) == (0, 50000) and inside > 10000
    assert "CASE WHEN" in fast and "CASE WHEN" not in slow
