"""Shared fixtures: real servers started per session, in private temp folders."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import datetime

import pytest

from growthwatch import clock
from growthwatch.testing.servers import BigQueryEmulator, InfluxServer, PostgresServer


@pytest.fixture(scope="session")
def influx_server() -> Iterator[InfluxServer]:
    """One real influxd for the test session; tests use their own database names."""
    server = InfluxServer().start()
    yield server
    server.cleanup()


@pytest.fixture
def influx_db(influx_server: InfluxServer) -> str:
    """A fresh database name on the session's InfluxDB (created by the code under test)."""
    return "t_" + uuid.uuid4().hex[:12]


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    server = PostgresServer().start()
    yield server
    server.cleanup()


# Instants where calendar bugs hide: the end of a month and of a year's first month (already
# the next month in Berlin), and the spring and autumn DST changes in Europe. Tests of code
# that asks ``growthwatch.clock.now()`` run at each of them, never at the day they run.
AWKWARD_NOWS = {
    "month-end": "2026-01-31T23:30:00+00:00",
    "dst-spring": "2026-03-29T01:30:00+00:00",
    "dst-autumn": "2026-10-25T01:30:00+00:00",
}


@pytest.fixture(params=list(AWKWARD_NOWS))
def frozen_now(request: pytest.FixtureRequest) -> Iterator[datetime]:
    with clock.frozen(datetime.fromisoformat(AWKWARD_NOWS[request.param])) as at:
        yield at


@pytest.fixture(scope="session")
def bigquery_emulator() -> Iterator[BigQueryEmulator]:
    """One BigQuery emulator for the session; tests use their own dataset names."""
    server = BigQueryEmulator().start()
    yield server
    server.cleanup()
