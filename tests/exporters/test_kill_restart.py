"""``serve`` SIGKILLed at seeded random moments while webhooks flow, and restarted: every
acknowledged delivery is in the ledger exactly once, and the series equal a recompute of
that ledger from scratch (what an uninterrupted run would have written)."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import requests
import yaml
from exporter_fakes import FakeStripe, charge, event, subscription
from test_service_cli import SECRET, signed

from growthwatch.metrics.engine import MetricsEngine
from growthwatch.metrics.settings import MetricsSettings
from growthwatch.stores.ledger import Ledger
from growthwatch.stores.series import SeriesStore
from growthwatch.testing.servers import free_port

GW = str(Path(sys.executable).with_name("growthwatch"))
NOW = int(time.time())


def start(config: Path, port: int) -> subprocess.Popen[bytes]:
    env = {**os.environ, "GW_CLI_STRIPE_KEY": FakeStripe.api_key, "GW_CLI_WHSEC": SECRET}
    proc = subprocess.Popen([GW, "serve", "--config", str(config), "--no-schedule"],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if requests.get(f"http://127.0.0.1:{port}/healthz", timeout=0.5).ok:
                return proc
        except requests.RequestException:
            time.sleep(0.05)
    proc.kill()
    raise AssertionError("serve did not come up")


@pytest.mark.slow
def test_sigkill_at_random_moments_loses_and_doubles_nothing(tmp_path: Path) -> None:
    rng = random.Random(20261201)
    port = free_port()
    doc = {"storage": {"data_dir": "data"},
           "server": {"host": "127.0.0.1", "port": port, "metrics_port": free_port()},
           "products": [{"id": "acme", "currency": "USD", "sources": [
               {"type": "stripe", "api_key": "${GW_CLI_STRIPE_KEY}",
                "webhook_secret": "${GW_CLI_WHSEC}", "api_base": "http://127.0.0.1:9"}]}]}  # fmt: skip
    config = tmp_path / "growthwatch.yaml"
    config.write_text(yaml.safe_dump(doc))
    deliveries = []
    for i in range(120):  # subscriptions starting, a third of them cancelled, and payments
        t = NOW - 3600 + i
        deliveries.append(event(f"evt_s{i}", "customer.subscription.created",
                                subscription(f"sub_{i}", customer=f"cus_{i}", created=t), t))  # fmt: skip
        deliveries.append(event(f"evt_p{i}", "charge.succeeded",
                                charge(f"ch_{i}", customer=f"cus_{i}", created=t), t))  # fmt: skip
        if i % 3 == 0:
            gone = subscription(f"sub_{i}", customer=f"cus_{i}", created=t, status="canceled",
                                ended_at=t + 60)  # fmt: skip
            deliveries.append(event(f"evt_x{i}", "customer.subscription.deleted", gone, t + 60))
    kills = sorted(rng.sample(range(20, len(deliveries) - 20), 4))
    proc = start(config, port)
    acknowledged: set[str] = set()
    try:
        pending = list(deliveries)
        sent = 0
        while pending:
            evt = pending[0]
            if kills and sent >= kills[0]:
                kills.pop(0)
                proc.send_signal(signal.SIGKILL)  # mid-stream: the worker may be mid-batch
                proc.wait()
                proc = start(config, port)
            body, headers = signed(evt)
            try:
                ok = requests.post(f"http://127.0.0.1:{port}/webhooks/stripe/acme", data=body,
                                   headers=headers, timeout=10).status_code == 200  # fmt: skip
            except requests.RequestException:
                ok = False  # like Stripe: not acknowledged, delivered again
            if ok:
                acknowledged.add(str(evt["id"]))
                pending.pop(0)
                sent += 1
        time.sleep(2)  # let the last worker batch and series update finish
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert acknowledged == {str(e["id"]) for e in deliveries}
    data = tmp_path / "data"
    with Ledger(data / "ledger.duckdb") as ledger:
        events = ledger.read()
        assert len(events) == events["idempotency_key"].nunique()  # nothing twice
        assert set(events["source_id"]) >= {f"ch_{i}" for i in range(120)}
        assert (events["type"] == "subscription_cancelled").sum() == 40
        assert (events["type"] == "subscription_started").sum() == 120
        fresh = SeriesStore(tmp_path / "fresh.duckdb")
        MetricsEngine(ledger, MetricsSettings()).recompute([fresh])
    served = SeriesStore(data / "series.duckdb")
    for measurement in ("mrr_daily", "customers_daily", "revenue_daily"):
        a = served.read(measurement).sort_values(["time", "product"], ignore_index=True)
        b = fresh.read(measurement).sort_values(["time", "product"], ignore_index=True)
        pd.testing.assert_frame_equal(a[b.columns], b, check_dtype=False)
    served.close()
    fresh.close()
    assert json.loads((data / "metrics-state.json").read_text())["last_seq"] > 0
