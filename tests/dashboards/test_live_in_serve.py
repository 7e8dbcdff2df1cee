"""Inside ``growthwatch serve``: a new event reaches Grafana Live through the real service
(ledger -> series hook -> metrics update -> ``dashboards.live`` listener -> HTTP push)."""

from __future__ import annotations

import sys
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest
import yaml

from exporters.service import Service
from growthwatch import EventType, GrowthEvent, load_config
from growthwatch.testing.servers import free_port

sys.path.insert(0, str(Path(__file__).parent))
from fake_grafana import FakeGrafana


def test_a_new_subscription_is_pushed_to_grafana_live(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:  # fmt: skip
    grafana = FakeGrafana().start()
    monkeypatch.setenv("GW_TEST_GRAFANA_TOKEN", grafana.token)
    doc = {
        "storage": {"data_dir": "data"},
        "server": {"host": "127.0.0.1", "port": free_port()},
        "products": [{"id": "acme", "currency": "USD"}],
        "grafana": {"url": grafana.url, "token": "${GW_TEST_GRAFANA_TOKEN}"},
    }
    (tmp_path / "growthwatch.yaml").write_text(yaml.safe_dump(doc))
    config = load_config(tmp_path / "growthwatch.yaml")
    try:
        with Service(config) as service:
            service.start(schedule=False)
            assert "dashboards.live" in service.components
            event = GrowthEvent(
                product="acme", type=EventType("subscription_started"),
                timestamp=datetime(2026, 10, 30, 12, tzinfo=UTC), value=Decimal("49"),
                currency="USD", subject="cus_1", mrr_before=Decimal(0), mrr_after=Decimal("49"),
                metadata={"subscription": "sub_1"}, source="test", source_id="evt_1",
            )  # fmt: skip
            before = service.ledger.max_seq()
            service.ledger.append([event])
            service.hook(service.ledger.read(after_seq=before))  # what the ingestor does
            assert service.hook.wait_idle()
    finally:
        grafana.stop()
    pushes = [r for r in grafana.requests if r.path == "/api/live/push/growthwatch"]
    assert pushes and all(r.headers["Authorization"] == f"Bearer {grafana.token}" for r in pushes)
    lines = [line for r in pushes for line in r.body.decode().splitlines()]
    # the day's MRR of acme is the new subscription's 49 (and the portfolio's, product=all)
    day = int(datetime(2026, 10, 30, tzinfo=UTC).timestamp()) * 10**9
    mrr = [line for line in lines if line.startswith("mrr_daily,product=acme ")
           and line.endswith(f" {day}")]  # fmt: skip
    assert len(mrr) == 1 and "mrr=49.0" in mrr[0].split(" ")[1].split(",")
    assert any(line.startswith("customers_daily,product=acme ") and "active=1i" in line
               for line in lines)  # fmt: skip
