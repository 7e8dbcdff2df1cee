"""The SQL KPI source against a real PostgreSQL started by the tests."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta

import pytest
import sqlalchemy as sa
from exporter_fakes import source

from exporters.base import Ingestor, SourceAuthError
from exporters.sql import SqlStream
from exporters.state import StateStore
from growthwatch import clock
from growthwatch.stores.ledger import Ledger
from growthwatch.testing.servers import PostgresServer

pytestmark = [pytest.mark.postgres, pytest.mark.usefixtures("frozen_now")]


def now() -> datetime:
    """The frozen instant the test runs at (see ``frozen_now``)."""
    return clock.now().replace(microsecond=0)


# The daily KPI covers closed days only, closed as of the sync's `:until` (never the
# database's own now(), so the test means the same at any instant).
KPIS = [
    {"name": "order-value", "time_column": "created_at", "value_column": "amount",
     "id_column": "id",
     "query": "SELECT id, created_at, amount FROM orders WHERE created_at > :cursor"},
    {"name": "orders-per-day", "time_column": "day", "value_column": "n",
     "query": "SELECT date_trunc('day', created_at) AS day, count(*) AS n FROM orders "
              "WHERE created_at > :cursor AND created_at < date_trunc('day', CAST(:until AS timestamptz)) "
              "GROUP BY 1 ORDER BY 1"},
]  # fmt: skip


@pytest.fixture
def database(postgres_server: PostgresServer) -> Iterator[sa.Engine]:
    engine = sa.create_engine(postgres_server.url)
    with engine.begin() as con:
        con.execute(sa.text("DROP TABLE IF EXISTS orders"))
        con.execute(sa.text(
            "CREATE TABLE orders (id bigint PRIMARY KEY, created_at timestamptz NOT NULL, "
            "amount numeric(12, 2))"
        ))  # fmt: skip
        con.execute(
            sa.text("INSERT INTO orders VALUES (:id, :t, :a)"),
            [{"id": i, "t": now() - timedelta(days=5, hours=-i), "a": 10 + i} for i in range(1, 49)],
        )
    yield engine
    engine.dispose()


def stream(state: StateStore, monkeypatch: pytest.MonkeyPatch, url: str) -> SqlStream:
    monkeypatch.setenv("GW_TEST_DB", url)
    config = source("sql", url="${GW_TEST_DB}", kpis=KPIS, lookback="1d",
                    start_date=(now() - timedelta(days=30)).date().isoformat())  # fmt: skip
    return SqlStream(config, state)


def test_kpis_incremental_with_lookback_and_bad_rows(
    database: sa.Engine, postgres_server: PostgresServer, ledger: Ledger, state: StateStore,
    ingestor: Ingestor, monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    s = stream(state, monkeypatch, postgres_server.url)
    first = ingestor.sync(s)
    per_day = ledger.read(types="kpi")
    orders = per_day[per_day["metadata"].str.contains('"order-value"')]
    assert len(orders) == 48 and orders["value"].sum() == sum(10 + i for i in range(1, 49))
    daily = per_day[per_day["metadata"].str.contains('"orders-per-day"')]
    assert daily["value"].sum() == 48 and first.rejected == 0
    cursor = datetime.fromisoformat(state.get_cursor(s.stream_id))
    # the slowest KPI bounds the cursor: the daily one has reached its last closed day
    assert cursor == daily["ts"].max().to_pydatetime()
    # New rows, a late one just behind the cursor (inside the 1-day lookback), a bad one.
    with database.begin() as con:
        con.execute(sa.text("INSERT INTO orders VALUES (100, :t, 5), (101, :late, 7), "
                            "(102, :t, NULL)"),
                    {"t": now() - timedelta(minutes=5), "late": cursor - timedelta(hours=2)})  # fmt: skip
    again = ingestor.sync(s)
    assert again.inserted == 2 and again.rejected == 1
    assert [r["reason"] for r in state.rejected()] == ["malformed_record"]
    assert ledger.count(types="kpi") == len(per_day) + 2
    assert ingestor.sync(s).inserted == 0  # the lookback re-read stores nothing twice


def test_wrong_user_is_a_clear_error(postgres_server: PostgresServer, state: StateStore,
                                     ingestor: Ingestor, monkeypatch: pytest.MonkeyPatch) -> None:  # fmt: skip
    # The test cluster trusts any password; an unknown role is refused the same way.
    url = postgres_server.url.replace("postgres@", "nobody:secret@")
    with pytest.raises(SourceAuthError, match=r"refused the connection.*user and password"):
        ingestor.sync(stream(state, monkeypatch, url))
