"""``serve`` starts and keeps every event when a dependency is missing: InfluxDB down at
start (or back empty), one source with unset credentials."""

from __future__ import annotations

import shutil
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest
import requests
import yaml
from exporter_fakes import FakeStripe, event, subscription
from test_service_cli import NOW, SECRET, signed

from exporters.service import Service
from growthwatch.config import load_config
from growthwatch.events import EventType, GrowthEvent
from growthwatch.testing.servers import InfluxServer, free_port


@pytest.fixture
def private_influx() -> Iterator[InfluxServer]:
    """An InfluxDB of this test alone: it is stopped, started and emptied on purpose."""
    server = InfluxServer()
    yield server
    server.stop()
    server.cleanup()


def config_file(tmp_path: Path, fake: FakeStripe, port: int, influx_url: str,
                extra_products: list[dict[str, object]] = ()) -> Path:  # type: ignore[assignment]  # fmt: skip
    doc = {
        "storage": {"data_dir": "data"},
        "influxdb": {"url": influx_url, "database": "gw"},
        "server": {"host": "127.0.0.1", "port": port},
        "products": [{"id": "acme", "currency": "USD", "sources": [
            {"type": "stripe", "api_key": "${GW_CLI_STRIPE_KEY}",
             "webhook_secret": "${GW_CLI_WHSEC}", "api_base": fake.url, "schedule": "1h"},
        ]}, *extra_products],
    }  # fmt: skip
    path = tmp_path / "growthwatch.yaml"
    path.write_text(yaml.safe_dump(doc))
    return path


@pytest.fixture(autouse=True)
def _env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GW_CLI_STRIPE_KEY", FakeStripe.api_key)
    monkeypatch.setenv("GW_CLI_WHSEC", SECRET)
    monkeypatch.delenv("GW_UNSET_STRIPE_KEY", raising=False)


def post(port: int, evt_id: str, sub_id: str) -> None:
    body, headers = signed(event(evt_id, "customer.subscription.created",
                                 subscription(sub_id, created=NOW), NOW))  # fmt: skip
    resp = requests.post(f"http://127.0.0.1:{port}/webhooks/stripe/acme", data=body,
                         headers=headers, timeout=30)  # fmt: skip
    assert resp.status_code == 200, resp.text


def event_for_ledger() -> GrowthEvent:
    return GrowthEvent(product="acme", type=EventType.PAYMENT,
                       timestamp=datetime(2026, 1, 1, tzinfo=UTC),
                       value=Decimal("9.99"), currency="USD", subject="cus_1",
                       source="stripe", source_id="evt_before")  # fmt: skip


def wait_for(condition: object, timeout: float = 60.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():  # type: ignore[operator]
            return True
        time.sleep(0.05)
    return False


def raw_points(server: InfluxServer) -> int:
    try:
        rows = server.query('SELECT count("value") FROM "growth_events"', "gw")
    except RuntimeError:  # "database not found": nothing written yet
        return 0
    return int(str(rows[0]["count"])) if rows else 0


def test_serve_starts_with_influxdb_down_and_replays_when_it_is_back(
    fake_stripe: FakeStripe, tmp_path: Path, private_influx: InfluxServer
) -> None:
    port = free_port()
    config = load_config(config_file(tmp_path, fake_stripe, port, private_influx.url))
    with Service(config) as service:  # InfluxDB is not running yet
        service.start(schedule=False)
        post(port, "evt_down_1", "sub_down_1")
        assert wait_for(lambda: service.ledger.count() == 1)  # the ledger never waits on it
        assert service.influx is not None and service.influx.spool is not None
        assert wait_for(lambda: service.influx.spool.lines() >= 1)  # type: ignore[union-attr]
        private_influx.start()
        post(port, "evt_down_2", "sub_down_2")  # the next write replays the spool first
        assert wait_for(lambda: service.ledger.count() == 2)
        assert wait_for(lambda: raw_points(private_influx) == 2)
        assert service.influx.spool.lines() == 0


def test_an_influxdb_restarted_empty_gets_its_database_back(
    fake_stripe: FakeStripe, tmp_path: Path, private_influx: InfluxServer
) -> None:
    private_influx.start()
    port = free_port()
    config = load_config(config_file(tmp_path, fake_stripe, port, private_influx.url))
    with Service(config) as service:
        service.start(schedule=False)
        post(port, "evt_empty_1", "sub_empty_1")
        assert wait_for(lambda: raw_points(private_influx) == 1)
        assert service.hook.wait_idle(timeout=120)  # no series write in flight
        private_influx.stop()
        for folder in ("meta", "data", "wal"):
            shutil.rmtree(private_influx.root / folder, ignore_errors=True)
        private_influx.start()  # answers 404 "database not found" to every write now
        post(port, "evt_empty_2", "sub_empty_2")
        # re-created, point written (the spool keeps anything that failed meanwhile)
        assert wait_for(lambda: raw_points(private_influx) == 1, timeout=120)
        assert service.ledger.count() == 2


def test_a_source_with_unset_credentials_never_stops_the_others(
    fake_stripe: FakeStripe, tmp_path: Path, influx_server: InfluxServer
) -> None:
    port = free_port()
    broken = {"id": "beta", "currency": "USD", "sources": [
        {"type": "stripe", "api_key": "${GW_UNSET_STRIPE_KEY}", "api_base": fake_stripe.url}]}  # fmt: skip
    config = load_config(config_file(tmp_path, fake_stripe, port, influx_server.url, [broken]))
    with Service(config) as service:
        service.start(schedule=False)
        assert list(service.not_started) == ["beta/stripe"]
        assert "GW_UNSET_STRIPE_KEY" in service.not_started["beta/stripe"]
        post(port, "evt_ok", "sub_ok")
        assert wait_for(lambda: service.ledger.count() == 1)


def test_serve_loads_the_ledger_keys_at_start(
    fake_stripe: FakeStripe, tmp_path: Path, influx_server: InfluxServer
) -> None:
    """The key set is read at start, in the background, not by the first webhook."""
    port = free_port()
    config = load_config(config_file(tmp_path, fake_stripe, port, influx_server.url))
    with Service(config) as service:
        service.ledger.append([event_for_ledger()])
    with Service(config) as service:
        assert service.ledger._keys is None
        service.start(schedule=False)
        assert wait_for(lambda: service.ledger._keys_seq == 1)  # every stored key is held
        assert service.ledger.max_seq() == 1


def test_the_example_config_serves_on_a_machine_with_no_servers(tmp_path: Path) -> None:
    """`config example > growthwatch.yaml && serve`: no InfluxDB, no credentials set."""
    import os
    import signal
    import subprocess
    import sys

    from growthwatch.cli.config_cmd import example_text

    port = free_port()
    (tmp_path / "growthwatch.yaml").write_text(example_text().replace("port: 8000", f"port: {port}"))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("STRIPE_", "MIXPANEL_", "GA4_"))}
    gw = str(Path(sys.executable).with_name("growthwatch"))
    proc = subprocess.Popen([gw, "serve", "--config", "growthwatch.yaml"], cwd=tmp_path, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)  # fmt: skip
    try:
        assert wait_for(lambda: _healthy(port) or proc.poll() is not None, timeout=60)
        assert proc.poll() is None, proc.communicate()
    finally:
        proc.send_signal(signal.SIGTERM)
        _out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert "not started acme-crm/stripe" in err and "STRIPE_API_KEY_ACME" in err


def _healthy(port: int) -> bool:
    try:
        return requests.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200
    except requests.RequestException:
        return False


def test_a_frozen_influxdb_never_holds_back_the_ledger(
    fake_stripe: FakeStripe, tmp_path: Path, private_influx: InfluxServer
) -> None:
    """influxd SIGSTOPped (accepts connections, never answers) while webhooks flow."""
    import signal

    private_influx.start()
    port = free_port()
    config = load_config(config_file(tmp_path, fake_stripe, port, private_influx.url))
    with Service(config) as service:
        service.start(schedule=False)
        assert service.influx is not None
        service.influx.timeout = 2.0  # so that the test ends soon after influxd resumes
        assert private_influx.process is not None
        private_influx.process.send_signal(signal.SIGSTOP)
        try:
            for i in range(100):
                post(port, f"evt_frozen_{i}", f"sub_frozen_{i}")
            # every acknowledged event reaches the ledger while InfluxDB still answers nothing
            assert wait_for(lambda: service.ledger.count() == 100, timeout=60)
            assert raw_points_or_none(private_influx) is None  # still frozen
        finally:
            private_influx.process.send_signal(signal.SIGCONT)
        assert wait_for(lambda: raw_points(private_influx) == 100, timeout=120)


def raw_points_or_none(server: InfluxServer) -> int | None:
    try:
        rows = requests.get(f"{server.url}/query", params={
            "db": "gw", "q": 'SELECT count("value") FROM "growth_events"'}, timeout=0.5)  # fmt: skip
    except requests.RequestException:
        return None
    return len(rows.content)


class _Proxy:
    """In front of a real InfluxDB: forwards, or answers 503, or answers slowly."""

    def __init__(self, upstream: str) -> None:
        import threading
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        proxy = self
        self.mode = "forward"
        self.upstream = upstream

        class Handler(BaseHTTPRequestHandler):
            def _relay(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else None
                if proxy.mode == "fail":
                    self.send_response(503)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                if proxy.mode == "slow":
                    time.sleep(1.5)
                headers = {k: v for k, v in self.headers.items()
                           if k.lower() in ("content-type", "content-encoding")}  # fmt: skip
                resp = requests.request(self.command, proxy.upstream + self.path, data=body,
                                        headers=headers, timeout=30)  # fmt: skip
                self.send_response(resp.status_code)
                self.send_header("Content-Length", str(len(resp.content)))
                self.end_headers()
                self.wfile.write(resp.content)

            do_GET = do_POST = _relay

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def test_influxdb_answering_5xx_then_slowly_loses_and_doubles_nothing(
    fake_stripe: FakeStripe, tmp_path: Path, private_influx: InfluxServer
) -> None:
    private_influx.start()
    proxy = _Proxy(private_influx.url)
    port = free_port()
    config = load_config(config_file(tmp_path, fake_stripe, port, proxy.url))
    try:
        with Service(config) as service:
            service.start(schedule=False)
            assert service.influx is not None
            service.influx.retry.backoff = 0.05  # the test need not wait out real backoffs
            proxy.mode = "fail"
            for i in range(30):
                post(port, f"evt_5xx_{i}", f"sub_5xx_{i}")
            assert wait_for(lambda: service.ledger.count() == 30)
            proxy.mode = "slow"
            for i in range(20):
                post(port, f"evt_slow_{i}", f"sub_slow_{i}")
            assert wait_for(lambda: service.ledger.count() == 50)  # the ledger kept pace
            proxy.mode = "forward"
            post(port, "evt_after", "sub_after")
            assert wait_for(lambda: raw_points(private_influx) == 51, timeout=120)
            assert service.hook.wait_idle(timeout=120)
    finally:
        proxy.close()
