"""Fixtures of the exporter tests: fake source servers, a ledger, a state file."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from exporter_fakes import FakeGA4, FakeMixpanel, FakeStripe

from exporters.base import Ingestor
from exporters.state import StateStore
from growthwatch.stores.ledger import Ledger


@pytest.fixture
def ledger(tmp_path: Path) -> Iterator[Ledger]:
    store = Ledger(tmp_path / "ledger.duckdb")
    yield store
    store.close()


@pytest.fixture
def state(tmp_path: Path) -> Iterator[StateStore]:
    store = StateStore(tmp_path / "exporters.sqlite")
    yield store
    store.close()


@pytest.fixture
def ingestor(ledger: Ledger, state: StateStore) -> Ingestor:
    return Ingestor(ledger, state)


@pytest.fixture
def fake_stripe() -> Iterator[FakeStripe]:
    server = FakeStripe().start()
    yield server
    server.stop()


@pytest.fixture
def fake_mixpanel() -> Iterator[FakeMixpanel]:
    server = FakeMixpanel().start()
    yield server
    server.stop()


@pytest.fixture
def fake_ga4() -> Iterator[FakeGA4]:
    server = FakeGA4().start()
    yield server
    server.stop()
