"""A churn spike through a running ``Service``, for the end-to-end test and the benchmark.

Local servers speak the wire formats the detector's sinks talk to (no real Grafana or
pager can run here): ``CaptureServer`` answers Grafana's annotation API (``POST
/api/annotations`` -> ``{"id": n, "message": "Annotation added"}``, ``PATCH
/api/annotations/<id>`` -> ``{"message": "Annotation patched"}``) and accepts apprise's
``json://`` posts, recording every request with its arrival time. ``seed_history`` puts
weeks of ordinary cancellations in a ledger; ``cancellation_webhook`` is a signed
``customer.subscription.deleted`` delivery in Stripe's shape.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import numpy as np

from growthwatch import EventType, GrowthEvent, Ledger


@dataclass
class Captured:
    method: str
    path: str
    body: Any
    at: float  # time.perf_counter() on arrival


@dataclass
class CaptureServer:
    requests: list[Captured] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._next_id = 0
        self._lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def _do(self, method: str) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                try:
                    body = json.loads(raw) if raw else None
                except ValueError:
                    body = raw.decode(errors="replace")
                with server._lock:
                    server.requests.append(Captured(method, self.path, body, time.perf_counter()))
                    if method == "POST" and self.path.startswith("/api/annotations"):
                        server._next_id += 1
                        answer: Any = {"id": server._next_id, "message": "Annotation added"}
                    elif method == "PATCH":
                        answer = {"message": "Annotation patched"}
                    else:
                        answer = {"ok": True}
                data = json.dumps(answer).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_POST(self) -> None:
                self._do("POST")

            def do_PATCH(self) -> None:
                self._do("PATCH")

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever,
                                       kwargs={"poll_interval": 0.05}, daemon=True)  # fmt: skip

    @property
    def port(self) -> int:
        return int(self.httpd.server_address[1])

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> CaptureServer:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def matching(self, method: str, prefix: str) -> list[Captured]:
        with self._lock:
            return [r for r in self.requests if r.method == method and r.path.startswith(prefix)]


def seed_history(ledger: Ledger, product: str, day: datetime, days: int = 35,
                 per_day: float = 2.0, seed: int = 7) -> int:  # fmt: skip
    """``days`` ordinary days of cancellations (Poisson ``per_day``) before ``day``."""
    rng = np.random.default_rng(seed)
    events = []
    for d in range(days, 0, -1):
        start = day - timedelta(days=d)
        for i in range(int(rng.poisson(per_day))):
            at = start + timedelta(seconds=float(rng.uniform(0, 86_400)))
            plan = "team" if rng.random() < 0.7 else "pro"
            events.append(GrowthEvent(
                product=product, type=EventType.SUBSCRIPTION_CANCELLED, timestamp=at,
                value=Decimal(-45), currency="USD", subject=f"cus_h{d}_{i}",
                mrr_before=Decimal(45), mrr_after=Decimal(0),
                metadata={"plan": plan, "reason": "voluntary"},
                source="stripe", source_id=f"sub_hist_{d}_{i}", kind="subscription_cancelled",
            ))  # fmt: skip
    ledger.append(events)
    return len(events)


def subscription(sub_id: str, created: int, ended: int) -> dict[str, Any]:
    """A cancelled subscription in Stripe's shape (one licensed monthly price)."""
    return {
        "id": sub_id, "object": "subscription", "customer": f"cus_{sub_id[4:]}",
        "status": "canceled", "currency": "usd", "created": created, "start_date": created,
        "trial_start": None, "trial_end": None, "ended_at": ended, "canceled_at": ended,
        "cancellation_details": {"reason": "payment_failed", "feedback": None, "comment": None},
        "discounts": [], "pause_collection": None,
        "items": {"object": "list", "data": [{
            "id": f"si_{sub_id[4:]}", "object": "subscription_item", "quantity": 1,
            "price": {"id": "price_pro", "object": "price", "nickname": "pro",
                      "unit_amount": 4500, "unit_amount_decimal": "4500", "currency": "usd",
                      "billing_scheme": "per_unit", "transform_quantity": None,
                      "recurring": {"interval": "month", "interval_count": 1,
                                    "usage_type": "licensed"}},
        }], "has_more": False, "url": "/v1/subscription_items"},
    }  # fmt: skip


def cancellation_webhook(
    i: int, ended: datetime, secret: str, prefix: str = "b"
) -> tuple[bytes, dict[str, str]]:
    """A signed ``customer.subscription.deleted`` delivery (signature at the wall clock)."""
    end_s = int(ended.astimezone(UTC).timestamp())
    sub_id = f"sub_{prefix}{i:05d}"
    evt = {"id": f"evt_{prefix}{i:05d}", "object": "event", "created": end_s,
           "type": "customer.subscription.deleted", "api_version": "2026-10-28.endive",
           "data": {"object": subscription(sub_id, end_s - 90 * 86_400, end_s)}}  # fmt: skip
    body = json.dumps(evt)
    at = int(time.time())
    mac = hmac.new(secret.encode(), f"{at}.{body}".encode(), hashlib.sha256).hexdigest()
    return body.encode(), {
        "Content-Type": "application/json",
        "Stripe-Signature": f"t={at},v1={mac}",
    }
