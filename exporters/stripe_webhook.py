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
first. ``/healthz`` answers 200; Prometheus metrics are served on their own port
(``server.metrics_port``), never next to an endpoint the internet reaches.

The HTTP layer is uvicorn (``exporters.http_server``): the route and the presence of
``Stripe-Signature`` are checked before the body is read, the body is read under a size
limit and a timeout, and every malformed request gets a 4xx answer. One delivery that
cannot be mapped (a poison event) is dead-lettered with its reason; it never holds back
the others of its batch, the worker, or a restart.
"""

from __future__ import annotations

import asyncio
import json
import logging
import queue
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import stripe
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from exporters import telemetry
from exporters.base import Ingestor, Rejection
from exporters.http_server import (
    BODIES_IN_FLIGHT,
    BackgroundServer,
    BodyTimeout,
    BodyTooLarge,
    read_body,
)
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
        self._server = BackgroundServer(self.app(), host, port, name="webhook-http")
        self._threads: list[threading.Thread] = []

    @property
    def url(self) -> str:
        host, port = self._server.address
        return f"http://{host}:{port}"

    def start(self) -> StripeWebhookReceiver:
        self.recover()
        worker = threading.Thread(target=self._work, name="webhook-worker", daemon=True)
        worker.start()
        self._threads.append(worker)
        self._server.start()
        log.info("stripe webhooks listening on %s (%s)", self.url, ", ".join(self.routes))
        return self

    def stop(self) -> None:
        self._server.stop()
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
                try:
                    self.process_many(route, pending[start : start + MAX_BATCH])
                except Exception:  # never a crash loop: what is left stays in the inbox
                    log.exception("stripe webhooks: recovering %s failed; left in the inbox",
                                  route.stream.stream_id)  # fmt: skip
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
        """Map, store and mark processed; events the Events API pull already did are skipped.

        A delivery whose mapping raises (a poison event: ``"NaN"`` amounts, a timestamp in
        the year 3000000) is dead-lettered: recorded as rejected with its reason, marked
        processed, counted; the rest of the batch goes on.
        """
        stream = route.stream
        processor = stream.processor
        with processor.lock:
            work = processor.new_work()
            for event in events:
                event_id = str(event.get("id"))
                if stream.state.inbox_is_processed(stream.stream_id, event_id):
                    continue
                try:
                    processor.add_event(work, event)
                except Exception as exc:  # defence in depth: the mapping guards its own
                    log.warning("stripe webhook %s dead-lettered: %s", event_id, exc)
                    work.rejected.append(Rejection("unprocessable_event",
                                                   f"{event_id}: {type(exc).__name__}: {exc}"[:300],
                                                   json.dumps(event, default=str)[:2000]))  # fmt: skip
                    work.processed.append((event_id, "rejected"))
            self.ingestor.store(stream, processor.batch(work))

    # -- HTTP ---------------------------------------------------------------------------

    def app(self) -> Starlette:
        """The ASGI app: ``POST /webhooks/stripe/...`` and ``GET /healthz``."""

        bodies = asyncio.Semaphore(BODIES_IN_FLIGHT)

        async def healthz(request: Request) -> Response:
            return JSONResponse({"status": "ok"})

        async def webhook(request: Request) -> Response:
            arrived = time.perf_counter()
            route = self.routes.get(request.url.path.rstrip("/"))
            if route is None:  # nothing read: the route is known from the request line
                return _answer(404, {"error": f"no Stripe source at {request.url.path}"})
            if "transfer-encoding" in request.headers and "content-length" in request.headers:
                # h11 lets Transfer-Encoding win, as HTTP says; a proxy in front may not:
                # the two together are how request smuggling starts, so refuse and close.
                return _answer(400, {"error": "both Content-Length and Transfer-Encoding"})
            signature = request.headers.get("stripe-signature")
            if not signature:
                telemetry.WEBHOOKS.labels("stripe", route.stream.product, "unsigned").inc()
                return _answer(400, {"error": "missing Stripe-Signature header"})
            async with bodies:  # at most BODIES_IN_FLIGHT bodies held at once
                try:
                    body = await read_body(request, MAX_BODY)
                except BodyTooLarge:
                    return _answer(413, {"error": f"body over {MAX_BODY} bytes"})
                except BodyTimeout as exc:
                    return _answer(408, {"error": str(exc)})
                status, answer, event = await run_in_threadpool(self.accept, route, body,
                                                                signature)  # fmt: skip
            if event is not None:
                self._queue.put((route, event, arrived))
            return JSONResponse(answer, status_code=status)

        async def not_found(request: Request, exc: Exception) -> Response:
            return _answer(404, {"error": "not found"}, close=False)

        async def not_allowed(request: Request, exc: Exception) -> Response:
            return _answer(405, {"error": "method not allowed"})

        return Starlette(
            routes=[Route("/healthz", healthz, methods=["GET"]),
                    Route("/webhooks/stripe/{rest:path}", webhook, methods=["POST"])],
            exception_handlers={404: not_found, 405: not_allowed},
        )  # fmt: skip

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
            # The signature first, over the raw body; then our own parsing (the SDK's
            # construct_event assumes an object and crashes on a signed `[1,2,3]`).
            stripe.WebhookSignature.verify_header(payload, signature, route.secret, self.tolerance)
            event = json.loads(payload)
        except stripe.SignatureVerificationError as exc:
            return refuse(400, "bad_signature", str(exc.user_message or exc))
        except (ValueError, UnicodeDecodeError, RecursionError) as exc:
            reason = "nested too deeply" if isinstance(exc, RecursionError) else str(exc)
            return refuse(400, "malformed_json", f"invalid payload: {reason}")
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


def _answer(status: int, body: dict[str, Any], *, close: bool = True) -> Response:
    """A JSON refusal; ``close``: drop the connection (its unread body is not our problem)."""
    headers = {"Connection": "close"} if close else None
    return JSONResponse(body, status_code=status, headers=headers)
