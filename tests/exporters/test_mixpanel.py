"""Mixpanel raw export (JSONL over HTTP Basic) against a local server in Mixpanel's format."""

from __future__ import annotations

import json
from datetime import datetime, timedelta

import pytest
from exporter_fakes import FAST, FakeMixpanel, source

from exporters.base import Ingestor, SourceAuthError
from exporters.mixpanel import MixpanelStream
from exporters.state import StateStore
from growthwatch import clock
from growthwatch.stores.ledger import Ledger

pytestmark = pytest.mark.usefixtures("frozen_now")


def today() -> datetime:
    """Midnight UTC of the frozen day the test runs at (see ``frozen_now``)."""
    return clock.now().replace(hour=0, minute=0, second=0, microsecond=0)
EVENTS = {"signup": ["Sign Up"], "activation": ["Created First Project"],
          "active_use": ["Session Start", "Report Viewed"]}  # fmt: skip


@pytest.fixture(autouse=True)
def _credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GW_MP_USER", FakeMixpanel.username)
    monkeypatch.setenv("GW_MP_SECRET", FakeMixpanel.secret)


def stream(fake: FakeMixpanel, state: StateStore) -> MixpanelStream:
    config = source("mixpanel", project_id=FakeMixpanel.project_id, username="${GW_MP_USER}",
                    secret="${GW_MP_SECRET}", api_base=fake.url, events=EVENTS,
                    start_date=(today() - timedelta(days=10)).date().isoformat())  # fmt: skip
    return MixpanelStream(config, state, policy=FAST)


def line(name: str, user: str | None, at: datetime, insert_id: str | None, **extra: object) -> str:
    props: dict[str, object] = {"time": int(at.timestamp()), "$os": "Mac OS X",
                                "mp_lib": "web", **extra}  # fmt: skip
    if user is not None:
        props["distinct_id"] = user
    if insert_id is not None:
        props["$insert_id"] = insert_id
    return json.dumps({"event": name, "properties": props})


def test_export_maps_dedups_rejects_and_rereads_late_events(
    fake_mixpanel: FakeMixpanel, ledger: Ledger, state: StateStore, ingestor: Ingestor
) -> None:
    day = today() - timedelta(days=5)
    lines = []
    for i in range(300):
        at = day + timedelta(hours=i % 96)
        lines.append(line("Session Start", f"u{i % 40}", at, f"ins-{i}"))
    lines += [
        line("Sign Up", "u1", day, "ins-signup-1"),
        line("Sign Up", "u1", day, "ins-signup-1"),  # exported twice: one event
        line("Created First Project", "u1", day + timedelta(hours=2), "ins-act-1"),
        line("Page Viewed", "u1", day, "ins-other"),  # not a configured event
        '{"event": "Sign Up", "properties": {"time": 17',  # truncated JSON
        line("Sign Up", None, day, "ins-anon"),  # no distinct_id
    ]
    fake_mixpanel.lines = lines
    s = stream(fake_mixpanel, state)
    s.chunk_rows = 100  # several frames per export
    result = ingestor.sync(s)
    assert result.inserted == 300 + 1 + 1
    assert result.rejected == 2  # the anonymous line and the truncated one
    assert ledger.count(types="signup") == 1 and ledger.count(types="activation") == 1
    (_, path, headers), = [r for r in fake_mixpanel.requests if "/export" in r[1]]
    assert "project_id=1234567" in path and headers["Authorization"].startswith("Basic ")
    cursor = datetime.fromisoformat(state.get_cursor(s.stream_id))
    assert cursor <= clock.now()
    # A late event for two days ago arrives; the lookback re-read picks it up, once.
    fake_mixpanel.lines.append(line("Report Viewed", "u7", today() - timedelta(days=2), "ins-late"))
    again = ingestor.sync(s)
    assert again.inserted == 1 and ledger.count(types="active_use") == 301
    assert again.duplicates > 0


def test_malformed_lines_do_not_stop_the_stream(
    fake_mixpanel: FakeMixpanel, ledger: Ledger, state: StateStore, ingestor: Ingestor
) -> None:
    at = today() - timedelta(days=1)
    # The export filters by name server side; a broken line still comes through as it is.
    fake_mixpanel.lines = [line("Sign Up", "a", at, "1"), "{not json", "[1, 2]",
                           line("Sign Up", "b", at, "2")]  # fmt: skip
    result = ingestor.sync(stream(fake_mixpanel, state))
    assert (result.inserted, result.rejected) == (2, 2)
    assert sorted(r["reason"] for r in state.rejected()) == ["malformed_json", "malformed_record"]


def test_rate_limit_is_retried_and_auth_failure_is_clear(
    fake_mixpanel: FakeMixpanel, state: StateStore, ingestor: Ingestor,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    fake_mixpanel.lines = [line("Sign Up", "a", today() - timedelta(days=1), "1")]
    fake_mixpanel.fail_next(429, 502)
    assert ingestor.sync(stream(fake_mixpanel, state)).inserted == 1
    monkeypatch.setenv("GW_MP_SECRET", "wrong")
    with pytest.raises(SourceAuthError, match=r"HTTP 401.*username/secret.*project 1234567"):
        ingestor.sync(stream(fake_mixpanel, state))
