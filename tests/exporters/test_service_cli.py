"""``growthwatch serve`` and ``growthwatch backfill`` from a config file, end to end."""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import requests
import yaml
from exporter_fakes import FakeStripe, charge, event, subscription

from exporters.service import Service
from growthwatch.cli import main
from growthwatch.config import load_config
from growthwatch.stores.ledger import Ledger
from growthwatch.testing.servers import free_port

SECRET = "whsec_cli"
NOW = int(time.time())


def write_config(tmp_path: Path, fake: FakeStripe, port: int, metrics_port: int) -> Path:
    doc = {
        "storage": {"data_dir": "data"},
        "server": {"host": "127.0.0.1", "port": port, "metrics_port": metrics_port},
        "products": [{"id": "acme", "currency": "USD", "sources": [
            {"type": "stripe", "api_key": "${GW_CLI_STRIPE_KEY}",
             "webhook_secret": "${GW_CLI_WHSEC}", "api_base": fake.url, "schedule": "1s",
             "lookback": "1d", "customer_signups": True},
        ]}],
    }  # fmt: skip
    path = tmp_path / "growthwatch.yaml"
    path.write_text(yaml.safe_dump(doc))
    return path


@pytest.fixture(autouse=True)
def _env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GW_CLI_STRIPE_KEY", FakeStripe.api_key)
    monkeypatch.setenv("GW_CLI_WHSEC", SECRET)


def signed(evt: dict[str, object]) -> tuple[bytes, dict[str, str]]:
    """Signed now, at delivery (a signature is only good for 5 minutes, and a long test
    run reaches this test later than that after the module was imported)."""
    body = json.dumps(evt)
    at = int(time.time())
    mac = hmac.new(SECRET.encode(), f"{at}.{body}".encode(), hashlib.sha256).hexdigest()
    return body.encode(), {"Stripe-Signature": f"t={at},v1={mac}"}


def test_serve_runs_schedules_webhooks_and_metrics(fake_stripe: FakeStripe, tmp_path: Path) -> None:
    fake_stripe.add("events", event("evt_pull", "charge.succeeded",
                                    charge("ch_pull", created=NOW - 60), NOW - 60))  # fmt: skip
    port, metrics_port = free_port(), free_port()
    config = load_config(write_config(tmp_path, fake_stripe, port, metrics_port))
    with Service(config) as service:
        service.start()
        service.scheduler.first_run_spread = 0  # type: ignore[union-attr]
        body, headers = signed(event("evt_hook", "customer.subscription.created",
                                     subscription("sub_h", created=NOW), NOW))  # fmt: skip
        resp = requests.post(f"http://127.0.0.1:{port}/webhooks/stripe/acme", data=body,
                             headers=headers, timeout=5)  # fmt: skip
        assert resp.status_code == 200
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and service.ledger.count() < 2:
            time.sleep(0.05)
        assert service.ledger.count() == 2  # the webhook and the scheduled pull
        assert service.hook.wait_idle()
        text = requests.get(f"http://127.0.0.1:{metrics_port}/metrics", timeout=5).text
        for name in ("growthwatch_events_ingested_total", "growthwatch_events_rejected_total",
                     "growthwatch_pull_duration_seconds_bucket", "growthwatch_cursor_lag_seconds",
                     "growthwatch_last_success_timestamp_seconds",
                     "growthwatch_source_api_errors_total",
                     "growthwatch_webhook_processing_seconds_bucket"):  # fmt: skip
            assert name in text or name.replace("_total", "") in text, name
        assert 'growthwatch_events_ingested_total{product="acme",source="stripe"}' in text
        assert service.series.count() > 0  # the engine wrote series for the new events


def test_backfill_command_with_progress_and_resume(fake_stripe: FakeStripe, tmp_path: Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:  # fmt: skip
    old = NOW - 70 * 86400
    fake_stripe.add("subscriptions", subscription("sub_b", customer="cus_b", created=old))
    fake_stripe.add("charges", *[charge(f"ch_{i}", customer="cus_b", created=old + i * 86400)
                                 for i in range(30)])  # fmt: skip
    path = write_config(tmp_path, fake_stripe, free_port(), free_port())
    since = (datetime.now(UTC) - timedelta(days=80)).date().isoformat()
    assert main(["backfill", "acme/stripe", "--since", since, "--config", str(path)]) == 0
    captured = capsys.readouterr()
    err, out = captured.err, captured.out
    assert "backfill acme/stripe" in err and "100%" in err and "31 new" in err
    assert "rebuilt exactly" in out and "not rebuilt (no invoices" in out
    assert main(["backfill", "stripe", "--since", since, "--config", str(path),
                 "--format", "json"]) == 0  # fmt: skip
    # the rebuild re-derives the subscription's start: a duplicate, like the 30 payments
    captured = capsys.readouterr()
    assert "0 new, 31 duplicate(s)" in captured.err
    summary = json.loads(captured.out)
    assert summary["current_only"] == 1 and summary["not_rebuilt"] == ["sub_b"]
    assert main(["backfill", "nope", "--since", since, "--config", str(path)]) == 2
    with Ledger(tmp_path / "data" / "ledger.duckdb") as ledger:
        assert ledger.count() == 31


def test_serve_command_starts_and_stops_on_sigint(fake_stripe: FakeStripe, tmp_path: Path) -> None:
    port = free_port()
    path = write_config(tmp_path, fake_stripe, port, free_port())
    proc = subprocess.Popen(
        [sys.executable, "-m", "growthwatch", "serve", "--config", str(path), "--no-schedule"],
        env={**os.environ}, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if requests.get(f"http://127.0.0.1:{port}/healthz", timeout=1).ok:
                    break
            except requests.ConnectionError:
                time.sleep(0.1)
        else:
            pytest.fail(proc.stderr.read().decode() if proc.poll() is not None else "no answer")
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=30) == 0
        assert "POST /webhooks/stripe/acme" in proc.stderr.read().decode()  # type: ignore[union-attr]
    finally:
        if proc.poll() is None:
            proc.kill()
