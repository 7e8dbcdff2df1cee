"""GA4 runReport over REST with a real google-auth service-account flow, against a local server."""

from __future__ import annotations

import json
from datetime import date, timedelta
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from exporter_fakes import FAST, FakeGA4, source

from exporters.base import Ingestor, SourceAuthError
from exporters.ga4 import GA4Stream
from exporters.state import StateStore
from growthwatch import clock
from growthwatch.stores.ledger import Ledger

pytestmark = pytest.mark.usefixtures("frozen_now")


def today() -> date:
    """The frozen day the test runs at (see ``frozen_now``)."""
    return clock.now().date()
CHANNELS = ("Organic Search", "Direct", "Paid Social")


@pytest.fixture
def key_file(tmp_path: Path, fake_ga4: FakeGA4, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A throwaway service-account key whose token_uri is the local server."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption()).decode()  # fmt: skip
    path = tmp_path / "sa.json"
    path.write_text(json.dumps({
        "type": "service_account", "project_id": "gw-test", "private_key_id": "k1",
        "private_key": pem, "client_email": "gw@gw-test.iam.gserviceaccount.com",
        "client_id": "1", "token_uri": f"{fake_ga4.url}/token",
    }))  # fmt: skip
    monkeypatch.setenv("GW_GA4_KEY", str(path))
    return path


def stream(fake: FakeGA4, state: StateStore, page_size: int = 7) -> GA4Stream:
    config = source("ga4", property_id=FakeGA4.property_id, credentials_file="${GW_GA4_KEY}",
                    api_base=fake.url, start_date=(today() - timedelta(days=9)).isoformat())  # fmt: skip
    s = GA4Stream(config, state, policy=FAST)
    s.page_size = page_size
    return s


def fill(fake: FakeGA4, days: int = 10) -> None:
    fake.rows = [((today() - timedelta(days=d)).strftime("%Y%m%d"), c, 100 + d * 10 + i, 80 + d)
                 for d in range(days) for i, c in enumerate(CHANNELS)]  # fmt: skip


def test_report_pages_maps_and_revises_recent_days(
    fake_ga4: FakeGA4, key_file: Path, ledger: Ledger, state: StateStore, ingestor: Ingestor
) -> None:
    fill(fake_ga4)
    s = stream(fake_ga4, state)
    result = ingestor.sync(s)
    reports = [r for r in fake_ga4.requests if ":runReport" in r[1]]
    assert len(reports) == 5  # 30 rows, 7 a page
    assert fake_ga4.token_requests == 1
    assert all(h["Authorization"].startswith("Bearer ya29.") for *_, h in reports)
    sessions = ledger.read(types="session")
    assert len(sessions) == 30 and sessions["value"].sum() == sum(r[2] for r in fake_ga4.rows)
    assert set(sessions["channel"]) == set(CHANNELS)
    kpis = ledger.read(types="kpi")  # users of the days older than the 3-day lookback
    assert len(kpis) == 3 * 6 and result.rejected == 0
    # GA4 revises the last days: more sessions yesterday, fewer the day before.
    yesterday = (today() - timedelta(days=1)).strftime("%Y%m%d")
    before = (today() - timedelta(days=2)).strftime("%Y%m%d")
    fake_ga4.rows = [(d, c, s_ + 25 if d == yesterday and c == "Direct" else
                      s_ - 5 if d == before and c == "Direct" else s_, u)
                     for d, c, s_, u in fake_ga4.rows]  # fmt: skip
    again = ingestor.sync(s)
    assert again.inserted == 1 and again.rejected == 1
    revised = ledger.read(types="session")
    day_direct = revised[(revised["channel"] == "Direct")
                         & (revised["ts"].dt.strftime("%Y%m%d") == yesterday)]  # fmt: skip
    assert sorted(day_direct["value"]) == [25.0, 111.0]  # the first read plus the revision
    assert ingestor.sync(s).inserted == 0  # a third read changes nothing


def test_quota_errors_are_retried(fake_ga4: FakeGA4, key_file: Path, ledger: Ledger,
                                  state: StateStore, ingestor: Ingestor) -> None:  # fmt: skip
    fill(fake_ga4, days=2)
    fake_ga4.fail_next(429, 503)
    assert ingestor.sync(stream(fake_ga4, state, page_size=100)).inserted == 6


def test_auth_failures_name_the_credentials(fake_ga4: FakeGA4, key_file: Path,
                                            state: StateStore, ingestor: Ingestor) -> None:  # fmt: skip
    fill(fake_ga4, days=1)
    fake_ga4.accept_jwt = False
    with pytest.raises(SourceAuthError, match=r"could not obtain an access token.*credentials_file"):
        ingestor.sync(stream(fake_ga4, state))
    fake_ga4.accept_jwt = True
    fake_ga4.fail_next(403)
    with pytest.raises(SourceAuthError, match=r"HTTP 403.*Viewer role on GA4 property 312345678"):
        ingestor.sync(stream(fake_ga4, state))
