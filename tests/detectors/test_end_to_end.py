"""End to end: a burst of signed Stripe cancellations for one product pages once.

A real ``Service`` (webhook receiver, ledger, metrics engine, live series hook, a real
InfluxDB) with the detector attached; apprise posts to a local ``json://`` endpoint and the
Grafana sink to a local server speaking Grafana's annotation API. The detector's clock is
fixed (``service.clock``) so the judged day does not depend on today's date.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import requests
import yaml

from detectors.scenario import CaptureServer, cancellation_webhook, seed_history
from exporters.service import Service
from growthwatch.config import load_config
from growthwatch.stores.ledger import Ledger
from growthwatch.testing.servers import InfluxServer, free_port

SECRET = "whsec_detector"
DAY = datetime(2026, 3, 10, tzinfo=UTC)  # a Tuesday
NOW = DAY + timedelta(hours=15)


def write_config(tmp: Path, port: int, influx: InfluxServer, db: str, capture: CaptureServer) -> Path:
    doc = {
        "storage": {"data_dir": str(tmp / "data")},
        "server": {"host": "127.0.0.1", "port": port},
        "influxdb": {"url": influx.url, "database": db},
        "products": [{"id": "acme", "currency": "USD", "sources": [
            {"type": "stripe", "api_key": "${GW_DET_STRIPE_KEY}",
             "webhook_secret": "${GW_DET_WHSEC}", "api_base": "http://127.0.0.1:9"},
        ]}],
        "detector": {"metrics": ["customers_daily.cancellations"], "interval": "1h"},
        "alerts": {"routes": [{"name": "oncall", "url": "${GW_DET_APPRISE}",
                               "min_severity": "warning"}]},
        "grafana": {"url": capture.url, "token": "${GW_DET_GRAFANA}"},
    }  # fmt: skip
    path = tmp / "growthwatch.yaml"
    path.write_text(yaml.safe_dump(doc))
    return path


@pytest.mark.influx
def test_a_cancellation_burst_pages_once_annotates_once_and_writes_one_anomaly(
    tmp_path: Path, influx_server: InfluxServer, influx_db: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    capture = CaptureServer().start()
    monkeypatch.setenv("GW_DET_STRIPE_KEY", "sk_test_unused")
    monkeypatch.setenv("GW_DET_WHSEC", SECRET)
    monkeypatch.setenv("GW_DET_APPRISE", f"json://127.0.0.1:{capture.port}/notify")
    monkeypatch.setenv("GW_DET_GRAFANA", "glsa_test_token")
    port = free_port()
    config = load_config(write_config(tmp_path, port, influx_server, influx_db, capture))
    config.data_dir.mkdir(parents=True, exist_ok=True)
    ledger = Ledger(config.ledger_path)
    seeded = seed_history(ledger, "acme", DAY, days=35, per_day=2.0)
    ledger.close()
    assert seeded > 40
    try:
        with Service(config) as service:
            service.clock = lambda: NOW.timestamp()  # type: ignore[attr-defined]
            service.start(schedule=False)
            detector = service.components["detectors.service"]
            for i in range(25):  # a burst: 25 cancellations between 14:00 and 14:50
                body, headers = cancellation_webhook(i, DAY + timedelta(hours=14, minutes=2 * i), SECRET)
                resp = requests.post(f"http://127.0.0.1:{port}/webhooks/stripe/acme",
                                     data=body, headers=headers, timeout=5)  # fmt: skip
                assert resp.status_code == 200
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline and service.ledger.count(types="subscription_cancelled") < seeded + 25:
                time.sleep(0.05)
            assert service.hook.wait_idle(timeout=30)
            assert detector.wait_idle(timeout=30)  # type: ignore[attr-defined]
            time.sleep(0.3)
            assert service.hook.wait_idle(timeout=30) and detector.wait_idle(timeout=30)  # type: ignore[attr-defined]
        notes = capture.matching("POST", "/notify")
        annotations = capture.matching("POST", "/api/annotations")
        assert len(notes) == 1, [n.body for n in notes]
        assert "acme" in notes[0].body["title"] and "cancellations" in notes[0].body["message"]
        assert len(annotations) == 1
        ann = annotations[0].body
        assert "product:acme" in ann["tags"] and ann["time"] == ann["timeEnd"]
        rows = influx_server.query("SELECT * FROM anomalies", influx_db)
        assert len(rows) == 1
        row = rows[0]
        assert row["product"] == "acme" and row["metric"] == "customers_daily.cancellations"
        assert row["state"] == "open" and row["open"] == 1 and row["segment"] == "all"
        assert row["observed"] > row["upper"] and 0 <= row["score"] <= 1
        # the burst is all Stripe cancellation_details.reason payment_failed (and plan pro);
        # the history has no cancel_reason and is 70 % team
        assert "cancel_reason=payment_failed" in row["explanation"]
    finally:
        capture.stop()
