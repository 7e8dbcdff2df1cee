"""The Stripe webhook endpoint: verify, store durably, answer, then process.

``POST /webhooks/stripe/<product>`` (``/webhooks/stripe/<product>/<source-name>`` when a
product has more than one Stripe source). The order of work is what makes it safe:

1. verify ``Stripe-Signature`` over the raw body with ``stripe.Webhook.construct_event``
   (HMAC-SHA256, 5-minute tolerance) and also refuse timestamps more than the tolerance in
   the *future*, which the SDK accepts: forged, unsigned and stale deliveries get a 400
   and nothing is stored;
2. insert the raw payload into the inbox (SQLite, fsync'd) keyed by the ``evt_`` id: a
   retry of the same event finds it there and is answered 200 without any further work;
3. answer 200; Stripe only needs to know the event is safe;
4. a worker thread maps it (per-subscription state makes out-of-order delivery end in the
   right state), appends to the ledger, runs the series hook and marks it processed.

On start, payloads stored but not processed (a crash between 3 and 4) are processed
first. ``/healthz`` answers 200 and ``/metrics`` serves the exporters' Prometheus metrics.
"""

from __future__ import annotations

import json
import logging
import queue
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import stripe

from exporters import telemetry
from exporters.base import Ingestor
from exporters.stripe import StripeStream

log = logging.getLogger(__name__)

TOLERANCE = 300  # seconds; Stripe's default
MAX_BATCH = 500  # deliveries processed together when they queue up
MAX_BODY = 4 * 1024 * 1024  # Stripe events are far smaller; refuse anything bigger unread
ProcessedCallback = Callable[[str, float], None]  # (event id, arrival perf_counter)


@dataclass(frozen=True)
class WebhookRoute:
    stream: StripeStream
    secret: str


def _signature_time(header: str) -> int | None:
    for part in header.split(","):
        key, _, value = part.strip().partition("=")
        if key == "t":
            try:
                return int(value)
            except ValueError:
                return None
    return None


class StripeWebhookReceiver:
    """A threaded HTTP server for the webhook endpoint of every configured Stripe source."""

    def __init__(
        self,
        ingestor: Ingestor,
        routes: Iterable[WebhookRoute],
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        tolerance: int = TOLERANCE,
        on_processed: ProcessedCallback | None = None,
    ) -> None:
        self.ingestor = ingestor
        self.tolerance = tolerance
        self.on_processed = on_processed
        self.routes: dict[str, WebhookRoute] = {}
        for route in routes:
            config = route.stream.config
            self.routes[f"/webhooks/stripe/{config.product}/{config.name}"] = route
            self.routes.setdefault(f"/webhooks/stripe/{config.product}", route)
        self._queue: queue.Queue[tuple[WebhookRoute, dict[str, Any], float] | None] = (
            queue.Queue()
        )
        self._server = ThreadingHTTPServer((host, port), self._handler())
        self._server.daemon_threads = True
        self._threads: list[threading.Thread] = []

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> StripeWebhookReceiver:
        self.recover()
        def serve() -> None:
            self._server.serve_forever(poll_interval=0.05)  # quick, clean shutdown

        for target, name in ((serve, "webhook-http"), (self._work, "webhook-worker")):
            thread = threading.Thread(target=target, name=name, daemon=True)
            thread.start()
            self._threads.append(thread)
        log.info("stripe webhooks listening on %s (%s)", self.url, ", ".join(self.routes))
        return self

    def stop(self) -> None:
        if self._threads:  # shutdown() would wait forever on a server never started
            self._server.shutdown()
        self._server.server_close()
        self._queue.put(None)
        for thread in self._threads:
            thread.join(timeout=10)

    def drain(self, timeout: float = 10.0) -> None:
        """Wait until every accepted delivery is processed (tests, shutdown)."""
        deadline = time.monotonic() + timeout
        while self._queue.unfinished_tasks and time.monotonic() < deadline:
            time.sleep(0.005)

    def recover(self) -> int:
        """Process payloads that were stored but not processed before a restart."""
        count = 0
        for route in {id(r): r for r in self.routes.values()}.values():
            pending = [json.loads(item.payload)
                       for item in route.stream.state.inbox_pending(route.stream.stream_id)
                       if item.via == "webhook"]  # fmt: skip
            for start in range(0, len(pending), MAX_BATCH):
                self.process_many(route, pending[start : start + MAX_BATCH])
            count += len(pending)
        if count:
            log.info("stripe webhooks: processed %d delivery(ies) left from before", count)
        return count

    # -- processing ---------------------------------------------------------------------

    def _work(self) -> None:
        """Process deliveries in arrival order, whatever has queued up as one batch.

        One ledger append costs about the same for 1 event as for 500 (frame building,
        one DuckDB statement), so under a burst the worker takes everything waiting
        (group commit): latency stays flat instead of growing with the queue.
        """
        stopping = False
        while not stopping:
            items = [self._queue.get()]
            while len(items) < MAX_BATCH:
                try:
                    items.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            try:
                stopping = None in items
                todo = [item for item in items if item is not None]
                for route in {id(r): r for r, _, _ in todo}.values():
                    mine = [(e, t) for r, e, t in todo if r is route]
                    try:
                        self.process_many(route, [e for e, _ in mine])
                    except Exception:  # stays unprocessed in the inbox; recovered on restart
                        log.exception("stripe webhooks: processing %d delivery(ies) failed",
                                      len(mine))  # fmt: skip
                        continue
                    now = time.perf_counter()
                    for evt, arrived in mine:
                        telemetry.WEBHOOK_PROCESSING.labels("stripe").observe(now - arrived)
                        if self.on_processed is not None:
                            try:
                                self.on_processed(str(evt["id"]), arrived)
                            except Exception:
                                log.exception("on_processed callback failed")
            finally:
                for _ in items:
                    self._queue.task_done()

    def process(self, route: WebhookRoute, event_id: str, event: dict[str, Any]) -> None:
        self.process_many(route, [event])

    def process_many(self, route: WebhookRoute, events: list[dict[str, Any]]) -> None:
        """Map, store and mark processed; events the Events API pull already did are skipped."""
        stream = route.stream
        processor = stream.processor
        with processor.lock:
            work = processor.new_work()
            for event in events:
                if not stream.state.inbox_is_processed(stream.stream_id, str(event["id"])):
                    processor.add_event(work, event)
            self.ingestor.store(stream, processor.batch(work))

    # -- HTTP ---------------------------------------------------------------------------

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True  # headers and body leave at once (no 40 ms stalls)

            def log_message(self, format: str, *args: Any) -> None:
                log.debug("webhook %s " + format, self.client_address[0], *args)

            def _answer(self, status: int, body: dict[str, Any]) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self) -> None:
                if self.path == "/healthz":
                    self._answer(200, {"status": "ok"})
                elif self.path == "/metrics":
                    data, content_type = telemetry.render()
                    self.send_response(200)
                    self.send_header("Content-Type", content_type)
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                else:
                    self._answer(404, {"error": "not found"})

            def do_POST(self) -> None:
                arrived = time.perf_counter()
                length = int(self.headers.get("Content-Length") or 0)
                if length > MAX_BODY:
                    self.close_connection = True  # the body is left unread
                    self._answer(413, {"error": f"body over {MAX_BODY} bytes"})
                    return
                body = self.rfile.read(length) if length > 0 else b""
                route = receiver.routes.get(self.path.rstrip("/"))
                if route is None:
                    self._answer(404, {"error": f"no Stripe source at {self.path}"})
                    return
                signature = self.headers.get("Stripe-Signature")
                status, answer, event = receiver.accept(route, body, signature)
                if event is not None:
                    receiver._queue.put((route, event, arrived))
                self._answer(status, answer)

        return Handler

    def accept(
        self, route: WebhookRoute, body: bytes, signature: str | None
    ) -> tuple[int, dict[str, Any], dict[str, Any] | None]:
        """Verify and store one delivery.

        Returns the HTTP status, the JSON answer and, for a first delivery, the event to
        process (None for refusals and retries).
        """
        stream = route.stream
        product = stream.product

        def refuse(status: int, outcome: str, message: str) -> tuple[int, dict[str, Any], None]:
            telemetry.WEBHOOKS.labels("stripe", product, outcome).inc()
            log.warning("stripe webhook for %s refused (%s): %s", product, outcome, message)
            return status, {"error": message}, None

        if not signature:
            return refuse(400, "unsigned", "missing Stripe-Signature header")
        try:
            payload = body.decode("utf-8")
            stripe.Webhook.construct_event(payload, signature, route.secret, self.tolerance)
            event = json.loads(payload)
        except stripe.SignatureVerificationError as exc:
            return refuse(400, "bad_signature", str(exc.user_message or exc))
        except (ValueError, UnicodeDecodeError) as exc:
            return refuse(400, "malformed_json", f"invalid payload: {exc}")
        signed_at = _signature_time(signature)
        if signed_at is None or signed_at > time.time() + self.tolerance:
            return refuse(400, "bad_signature", "timestamp too far in the future")
        if not isinstance(event, dict) or not str(event.get("id", "")).startswith("evt_"):
            return refuse(400, "missing_id", "event without an evt_ id")
        event_id = str(event["id"])
        fresh = stream.state.inbox_put(stream.stream_id, event_id, payload, "webhook")
        telemetry.WEBHOOKS.labels("stripe", product, "accepted" if fresh else "duplicate").inc()
        answer = {"received": True, "id": event_id, "duplicate": not fresh}
        return 200, answer, event if fresh else None
