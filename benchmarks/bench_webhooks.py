"""Webhook latency: signed Stripe webhooks on loopback -> ledger -> InfluxDB -> series.

The receiver, the ledger (DuckDB file), the state file (SQLite, fsync'd inbox), a real
InfluxDB (``InfluxServer``) and the metrics engine run exactly as ``growthwatch serve``
wires them. The client posts N signed webhooks (half ``customer.subscription.created``,
half ``customer.subscription.deleted`` for the same subscriptions: N/2 cancellations) and
each latency is measured from the moment the client starts sending the request:

- answer:   the 200 reaches the client (verified, stored durably in the inbox);
- ledger:   the event is in the ledger (DuckDB append committed);
- InfluxDB: its raw point was acknowledged by InfluxDB (204), i.e. queryable;
- series:   a metrics-engine update covering it finished (MRR/customers/churn series
            rewritten in InfluxDB); updates coalesce under load.

Three passes: a burst (back to back, as fast as one client can send), paced (a fixed
rate, as Stripe delivers in normal operation) and isolated (one webhook at a time on an
idle service: what a lone cancellation sees). The reference figure is the bare HTTP
round trip of the same server (``GET /healthz``) in the same run.

    .venv/bin/python benchmarks/bench_webhooks.py [--webhooks 1000] [--rate 25]
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import json
import os
import statistics
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import pandas as pd
import requests

from exporters.base import Ingestor
from exporters.series_hook import LiveSeriesHook
from exporters.state import StateStore
from exporters.stripe import StripeStream
from exporters.stripe_webhook import StripeWebhookReceiver, WebhookRoute
from growthwatch.config import SourceConfig
from growthwatch.metrics.engine import MetricsEngine
from growthwatch.stores.influx import InfluxStore
from growthwatch.stores.ledger import Ledger
from growthwatch.testing.servers import InfluxServer

SECRET = "whsec_bench"


def subscription(sub_id: str, created: int, status: str = "active") -> dict[str, Any]:
    """A minimal subscription in Stripe's shape (one licensed monthly price)."""
    return {
        "id": sub_id, "object": "subscription", "customer": f"cus_{sub_id[4:]}",
        "status": status, "currency": "usd", "created": created, "start_date": created,
        "trial_start": None, "trial_end": None, "ended_at": created + 60 if status ==
        "canceled" else None, "canceled_at": None, "discounts": [], "pause_collection": None,
        "items": {"object": "list", "data": [{
            "id": f"si_{sub_id[4:]}", "object": "subscription_item", "quantity": 3,
            "price": {"id": "price_team", "object": "price", "nickname": "team",
                      "unit_amount": 1500, "unit_amount_decimal": "1500", "currency": "usd",
                      "billing_scheme": "per_unit", "transform_quantity": None,
                      "recurring": {"interval": "month", "interval_count": 1,
                                    "usage_type": "licensed"}},
        }], "has_more": False, "url": "/v1/subscription_items"},
    }  # fmt: skip


def webhooks(n: int, prefix: str) -> list[dict[str, Any]]:
    now = int(time.time()) - 3600
    out = []
    for i in range(n // 2):
        sub_id = f"sub_{prefix}{i:05d}"
        out.append({"id": f"evt_{prefix}c{i:05d}", "object": "event", "created": now + i,
                    "type": "customer.subscription.created", "api_version": "2026-10-28.endive",
                    "data": {"object": subscription(sub_id, now + i)}})  # fmt: skip
    for i in range(n - n // 2):
        sub_id = f"sub_{prefix}{i:05d}"
        out.append({"id": f"evt_{prefix}d{i:05d}", "object": "event", "created": now + 1800 + i,
                    "type": "customer.subscription.deleted", "api_version": "2026-10-28.endive",
                    "data": {"object": subscription(sub_id, now + i, "canceled")}})  # fmt: skip
    return out


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))] * 1000


class Probe:
    """Times each webhook's stages (the hook runs once per stored batch, before its reports)."""

    def __init__(self, ledger: Ledger) -> None:
        self.ledger = ledger
        self.sent: dict[str, float] = {}
        self.answer: dict[str, float] = {}
        # (ledger done, influx done) of the batch being processed: the worker stores what
        # has queued up as one batch, then reports each of its deliveries
        self.current = (0.0, 0.0)
        self.ledger_ms: list[float] = []
        self.influx_ms: list[float] = []
        self.series_ms: list[float] = []
        self.waiting: list[tuple[int, float]] = []  # (seq, sent) not yet covered by the series
        self.lock = threading.Lock()

    def processed(self, event_id: str, arrived: float) -> None:
        t_ledger, t_influx = self.current
        sent = self.sent[event_id]
        self.ledger_ms.append(t_ledger - sent)
        self.influx_ms.append(t_influx - sent)
        with self.lock:
            self.waiting.append((self.ledger.max_seq(), sent))

    def updated(self, last_seq: int) -> None:
        now = time.perf_counter()
        with self.lock:
            done = [s for seq, s in self.waiting if seq <= last_seq]
            self.waiting = [(seq, s) for seq, s in self.waiting if seq > last_seq]
        self.series_ms.extend(now - s for s in done)


def run_pass(name: str, receiver: StripeWebhookReceiver, probe: Probe, hook: LiveSeriesHook,
             events: list[dict[str, Any]], rate: float | None,
             isolated: bool = False) -> dict[str, Any]:  # fmt: skip
    session = requests.Session()
    url = receiver.url + "/webhooks/stripe/bench"
    for key in ("ledger_ms", "influx_ms", "series_ms"):
        getattr(probe, key).clear()
    answers: list[float] = []
    started = time.perf_counter()
    for i, evt in enumerate(events):
        if rate:
            target = started + i / rate
            while (delay := target - time.perf_counter()) > 0:
                time.sleep(delay)
        body = json.dumps(evt)
        stamp = int(time.time())
        mac = hmac.new(SECRET.encode(), f"{stamp}.{body}".encode(), hashlib.sha256).hexdigest()
        t0 = time.perf_counter()
        probe.sent[evt["id"]] = t0
        resp = session.post(url, data=body.encode(), timeout=30,
                            headers={"Stripe-Signature": f"t={stamp},v1={mac}",
                                     "Content-Type": "application/json"})  # fmt: skip
        answers.append(time.perf_counter() - t0)
        assert resp.status_code == 200, resp.text
        if isolated:  # one at a time on an idle service: the latency of a lone cancellation
            receiver.drain(timeout=30)
            hook.wait_idle(timeout=30)
    receiver.drain(timeout=300)
    hook.wait_idle(timeout=300)
    elapsed = time.perf_counter() - started
    return {
        "pass": name, "n": len(events), "seconds": elapsed,
        "answer": [a * 1000 for a in answers],
        "ledger": [x * 1000 for x in probe.ledger_ms],
        "influx": [x * 1000 for x in probe.influx_ms],
        "series": [x * 1000 for x in probe.series_ms],
    }  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--webhooks", type=int, default=1000)
    parser.add_argument("--rate", type=float, default=25.0, help="paced pass, webhooks/s")
    parser.add_argument("--isolated", type=int, default=25,
                        help="pairs of webhooks sent one at a time on an idle service")  # fmt: skip
    args = parser.parse_args()
    os.environ.setdefault("GW_BENCH_STRIPE_KEY", "sk_test_bench")
    influx_server = InfluxServer().start()
    tmp = Path(tempfile.mkdtemp(prefix="gw-bench-webhooks-"))
    try:
        ledger = Ledger(tmp / "ledger.duckdb")
        state = StateStore(tmp / "exporters.sqlite")
        influx = InfluxStore(influx_server.url, "bench", compress=False)
        influx.ensure_database()
        engine = MetricsEngine(ledger, state_path=tmp / "engine.json")
        probe = Probe(ledger)
        hook = LiveSeriesHook(influx=influx, engine=engine, stores=[influx],
                              on_update=probe.updated)  # fmt: skip

        def timed_hook(events: pd.DataFrame) -> None:
            t_ledger = time.perf_counter()
            hook(events)
            probe.current = (t_ledger, time.perf_counter())

        config = SourceConfig("stripe", "stripe", "bench", "15m", "3d",
                              {"api_key": "${GW_BENCH_STRIPE_KEY}", "api_base": "http://127.0.0.1:9"})  # fmt: skip
        stream = StripeStream(config, state)
        receiver = StripeWebhookReceiver(
            Ingestor(ledger, state, timed_hook), [WebhookRoute(stream, SECRET)],
            on_processed=probe.processed,
        ).start()
        session = requests.Session()
        for _ in range(50):  # warm-up: connections, DuckDB, first engine run
            session.get(receiver.url + "/healthz", timeout=5)
        warm = run_pass("warm-up", receiver, probe, hook, webhooks(20, "w"), None)
        del warm
        rtt = []
        for _ in range(args.webhooks):
            t0 = time.perf_counter()
            session.get(receiver.url + "/healthz", timeout=5)
            rtt.append((time.perf_counter() - t0) * 1000)
        results = [
            run_pass("burst", receiver, probe, hook, webhooks(args.webhooks, "b"), None),
            run_pass(f"paced {args.rate:g}/s", receiver, probe, hook,
                     webhooks(args.webhooks, "p"), args.rate),
            run_pass("isolated", receiver, probe, hook, webhooks(2 * args.isolated, "i"),
                     None, isolated=True)  # ledger now holds 2,000+ events
        ]  # fmt: skip
        cancelled = influx_server.query(
            "SELECT count(value) FROM growth_events WHERE type = 'subscription_cancelled'", "bench"
        )
        print(f"\nStripe webhooks on loopback, {args.webhooks} per pass "
              f"({os.cpu_count()} cores; InfluxDB 1.x at {influx_server.url})")  # fmt: skip
        print(f"reference: bare HTTP round trip GET /healthz: p50 {statistics.median(rtt):.2f} ms,"
              f" p95 {pct([r / 1000 for r in rtt], 0.95):.2f} ms")  # fmt: skip
        header = f"{'pass':<14}{'stage':<22}{'p50 ms':>9}{'p95 ms':>9}{'max ms':>9}"
        print(header)
        print("-" * len(header))
        for r in results:
            for key, label in (("answer", "200 answered (inbox)"), ("ledger", "webhook -> ledger"),
                               ("influx", "webhook -> InfluxDB"), ("series", "webhook -> series")):  # fmt: skip
                values = [v / 1000 for v in r[key]]
                print(f"{r['pass']:<14}{label:<22}{pct(values, .5):>9.2f}{pct(values, .95):>9.2f}"
                      f"{max(values) * 1000:>9.2f}")  # fmt: skip
            print(f"{'':<14}{r['n']} webhooks in {r['seconds']:.2f} s "
                  f"({r['n'] / r['seconds']:.0f}/s end to end)")  # fmt: skip
        print(f"ledger: {ledger.count()} events, {ledger.count(types='subscription_cancelled')} "
              f"cancellations; InfluxDB growth_events cancellations: "
              f"{cancelled[0]['count'] if cancelled else 0}")  # fmt: skip
        receiver.stop()
        hook.close()
        ledger.close()
        state.close()
    finally:
        influx_server.cleanup()


if __name__ == "__main__":
    main()
