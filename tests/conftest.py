"""Shared fixtures: real servers started per session, in private temp folders."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

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


@pytest.fixture(scope="session")
def bigquery_emulator() -> Iterator[BigQueryEmulator]:
    """One BigQuery emulator for the session; tests use their own dataset names."""
    server = BigQueryEmulator().start()
    yield server
    server.cleanup()
