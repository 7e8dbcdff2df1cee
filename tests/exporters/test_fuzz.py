"""Fuzzing (hypothesis) of everything that parses outside input: the webhook endpoint, the
Stripe, Mixpanel and GA4 mappings, the CSV importer and the config loader.

The property is the same everywhere: no crash and no hang; a bad input becomes a 4xx or a
rejection that names the problem; the good records of the same batch still arrive. Each
test prints how many inputs it tried (``pytest -s``); the README reports the totals.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest
from exporter_fakes import FakeStripe, charge, event, source, subscription
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_stripe_webhook import SECRET, make_receiver, sign

from exporters.base import Ingestor, SourceError
from exporters.csv_import import CsvStream
from exporters.ga4 import GA4Stream
from exporters.mixpanel import MixpanelStream
from exporters.state import StateStore
from exporters.stripe import StripeStream
from exporters.stripe_webhook import StripeWebhookReceiver
from growthwatch.config import check_file
from growthwatch.stores.ledger import Ledger

NOW = 1_780_000_000
JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=5)
    | st.dictionaries(st.text(max_size=10), children, max_size=5),
    max_leaves=30,
)
TRIED: dict[str, int] = {}
FUZZ = settings(max_examples=300, deadline=None, derandomize=True,
                suppress_health_check=[HealthCheck.function_scoped_fixture,
                                       HealthCheck.too_slow])  # fmt: skip


def tried(name: str) -> None:
    TRIED[name] = TRIED.get(name, 0) + 1


@pytest.fixture(scope="module", autouse=True)
def _report() -> Iterator[None]:
    yield
    print("\nfuzz inputs tried: " + ", ".join(f"{k} {v}" for k, v in sorted(TRIED.items())))


@pytest.fixture
def receiver(fake_stripe: FakeStripe, ledger: Ledger, state: StateStore,
             monkeypatch: pytest.MonkeyPatch) -> Iterator[StripeWebhookReceiver]:  # fmt: skip
    monkeypatch.setenv("GW_TEST_STRIPE_KEY", FakeStripe.api_key)
    yield make_receiver(fake_stripe, ledger, state)


def _mutate(obj: Any, path: list[Any], value: Any) -> Any:
    """``obj`` with the node at ``path`` (as far as it exists) replaced by ``value``."""
    if not path or not isinstance(obj, dict | list):
        return value
    key, rest = path[0], path[1:]
    if isinstance(obj, dict):
        key = list(obj)[key % len(obj)] if obj else "x"
        return {**obj, key: _mutate(obj.get(key), rest, value)}
    if not obj:
        return [value]
    i = key % len(obj)
    return [*obj[:i], _mutate(obj[i], rest, value), *obj[i + 1 :]]


BASE_EVENTS = [
    event("evt_f1", "customer.subscription.updated", subscription("sub_f", created=NOW), NOW),
    event("evt_f2", "charge.succeeded", charge("ch_f", created=NOW), NOW),
]


@FUZZ
@given(body=st.binary(max_size=300) | JSON.map(lambda v: json.dumps(v).encode()),
       signed=st.booleans())  # fmt: skip
def test_webhook_accept_answers_every_body_with_a_status(
    receiver: StripeWebhookReceiver, body: bytes, signed: bool
) -> None:
    tried("webhook bodies")
    header = sign(body.decode("utf-8", errors="replace"), SECRET, at=None) if signed else "t=1,v1=0"
    status, answer, evt = receiver.accept(receiver.routes["/webhooks/stripe/acme"], body, header)
    if status == 200:  # only a signed object with an evt_ id is accepted
        assert evt is None or str(evt["id"]).startswith("evt_")
    else:
        assert status == 400 and answer["error"]


@FUZZ
@given(which=st.integers(0, 1), path=st.lists(st.integers(0, 50), max_size=6), value=JSON)
def test_stripe_mapping_never_raises_and_keeps_the_good_event(
    state: StateStore, which: int, path: list[int], value: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    tried("stripe events")
    monkeypatch.setenv("GW_TEST_STRIPE_KEY", FakeStripe.api_key)
    stream = StripeStream(source("stripe", api_key="${GW_TEST_STRIPE_KEY}"), state)
    stream.processor.api = None  # type: ignore[attr-defined]
    processor = stream.processor
    work = processor.new_work()
    broken = _mutate(BASE_EVENTS[which], path, value)
    good = event("evt_good", "charge.succeeded", charge("ch_good", created=NOW), NOW)
    with processor.lock:
        processor.add_event(work, broken)
        processor.add_event(work, good)
    assert any(e.source_id == "ch_good" for e in work.events)


@FUZZ
@given(line=st.text(max_size=200) | JSON.map(json.dumps))
def test_mixpanel_lines_never_raise(state: StateStore, line: str, monkeypatch: pytest.MonkeyPatch) -> None:
    tried("mixpanel lines")
    monkeypatch.setenv("GW_MP_U", "u")
    monkeypatch.setenv("GW_MP_S", "s")
    stream = MixpanelStream(source("mixpanel", project_id=1, username="${GW_MP_U}",
                                   secret="${GW_MP_S}", events={"signup": ["Sign Up"]}), state)  # fmt: skip
    rows: list[dict[str, Any]] = []
    rejected: list[Any] = []
    stream._map_line(line, rows, rejected)
    assert len(rows) + len(rejected) <= 1


@FUZZ
@given(rows=st.lists(JSON, max_size=4))
def test_ga4_rows_never_raise(state: StateStore, rows: list[Any], monkeypatch: pytest.MonkeyPatch) -> None:
    tried("ga4 rows")
    stream = GA4Stream(source("ga4", property_id="1", credentials_file="${GW_GA4_K}"), state)
    good = {"dimensionValues": [{"value": "20260101"}, {"value": "Direct"}],
            "metricValues": [{"value": "12"}, {"value": "7"}]}  # fmt: skip
    batch = stream._batch([*[r for r in rows if isinstance(r, dict)], good], date(2026, 1, 1))
    assert len(batch.events) >= 1


@FUZZ
@given(text=st.text(max_size=400))
def test_csv_files_never_crash_the_import(tmp_path_factory: pytest.TempPathFactory, text: str) -> None:
    tried("csv files")
    folder = tmp_path_factory.mktemp("csv")
    path = folder / "x.csv"
    header = "type,ts,value,currency,subject,mrr_before,mrr_after,metadata,source_id\n"
    path.write_text(header + text + "\npayment,2024-01-15T10:00:00Z,5,EUR,cus_1,,,,good-1\n")
    state = StateStore(folder / "s.sqlite")
    with Ledger(folder / "l.duckdb") as ledger:
        try:
            result = Ingestor(ledger, state).sync(
                CsvStream(source("csv", path=str(path)), state),
                since=datetime(2000, 1, 1, tzinfo=UTC), backfill=True,
            )  # fmt: skip
        except SourceError:
            return  # a file-level problem (e.g. not UTF-8): one clear error
        assert result.inserted >= 1 or "good-1" in text  # the good last row arrives
        assert set(ledger.read()["source_id"]) >= {"good-1"} or result.inserted == 0
    state.close()


@FUZZ
@given(text=st.text(max_size=300) | JSON.map(lambda v: json.dumps(v)))
def test_config_loader_reports_problems_never_raises(tmp_path_factory: pytest.TempPathFactory,
                                                     text: str) -> None:  # fmt: skip
    tried("config files")
    path = Path(tmp_path_factory.mktemp("cfg")) / "growthwatch.yaml"
    path.write_text(text)
    problems, _ = check_file(path)
    assert all(p.message for p in problems)
