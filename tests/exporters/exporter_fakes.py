"""Local HTTP servers that speak the sources' documented wire formats, for the exporter tests.

- ``FakeStripe``: ``/v1/<resource>`` list objects (``{"object": "list", "data", "has_more",
  "url"}``) with ``created[gte|lt]``, ``types[]``, ``status``, ``charge`` filters and
  ``starting_after`` cursor pagination, newest first like Stripe; retrieve by id; Bearer
  auth with Stripe's error body; injectable 429/5xx answers. Objects are Stripe's official
  examples from ``tests/fixtures/stripe/fixtures3.json`` with ids/timestamps overridden.
- ``FakeMixpanel``: ``/api/2.0/export`` JSONL over HTTP Basic with ``project_id``.
- ``FakeGA4``: ``/v1beta/properties/<id>:runReport`` with offset paging, plus the OAuth
  token endpoint google-auth's service-account flow posts its signed JWT to.
"""

from __future__ import annotations

import base64
import copy
import json
import re
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from exporters.base import RetryPolicy
from growthwatch.config import SourceConfig

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "stripe" / "fixtures3.json"
_RESOURCES = json.loads(FIXTURES.read_text())["resources"]
_TEXT = {name: json.dumps(obj) for name, obj in _RESOURCES.items()}  # parse: a fresh copy


def stripe_fixture(resource: str, **overrides: Any) -> dict[str, Any]:
    """Stripe's official example object of ``resource`` with top-level fields replaced."""
    obj: dict[str, Any] = json.loads(_TEXT[resource])
    obj.update(overrides)
    return obj


def subscription(
    sub_id: str,
    *,
    customer: str = "cus_1",
    status: str = "active",
    unit_amount: int = 2000,
    quantity: int = 1,
    interval: str = "month",
    interval_count: int = 1,
    currency: str = "usd",
    created: int = 1_700_000_000,
    trial: tuple[int, int] | None = None,
    discounts: list[Any] | None = None,
    price_id: str = "price_pro",
    nickname: str | None = "pro",
    ended_at: int | None = None,
    cancel_at_period_end: bool = False,
) -> dict[str, Any]:
    """A subscription in the fixture's shape with one item (price + legacy plan)."""
    sub = stripe_fixture(
        "subscription",
        id=sub_id,
        customer=customer,
        status=status,
        currency=currency,
        created=created,
        start_date=created,
        billing_cycle_anchor=created,
        cancel_at=None,
        canceled_at=ended_at,
        ended_at=ended_at,
        cancel_at_period_end=cancel_at_period_end,
        trial_start=trial[0] if trial else None,
        trial_end=trial[1] if trial else None,
        discounts=discounts or [],
        pause_collection=None,
        pending_update=None,
    )
    item = sub["items"]["data"][0]
    item["id"] = f"si_{sub_id[4:]}"
    item["subscription"] = sub_id
    item["quantity"] = quantity
    price = item["price"]
    price.update(id=price_id, nickname=nickname, currency=currency, unit_amount=unit_amount,
                 unit_amount_decimal=str(unit_amount), transform_quantity=None)
    price["recurring"].update(interval=interval, interval_count=interval_count)
    item["plan"].update(id=price_id, amount=unit_amount, amount_decimal=str(unit_amount),
                        currency=currency, interval=interval, interval_count=interval_count,
                        billing_scheme="per_unit", transform_usage=None)
    sub["items"]["url"] = f"/v1/subscription_items?subscription={sub_id}"
    return sub


def charge(charge_id: str, *, amount: int = 2000, customer: str | None = "cus_1",
           created: int = 1_700_000_000, currency: str = "usd") -> dict[str, Any]:
    return stripe_fixture(
        "charge", id=charge_id, amount=amount, amount_captured=amount, captured=True,
        customer=customer, created=created, currency=currency, status="succeeded", paid=True,
    )


def refund(refund_id: str, *, charge_id: str, amount: int = 500, created: int = 1_700_000_000,
           currency: str = "usd", customer: str | None = None) -> dict[str, Any]:
    return stripe_fixture(
        "refund", id=refund_id, charge=charge_id, amount=amount, created=created,
        currency=currency, customer=customer, status="succeeded",
    )


def invoice_failed(invoice_id: str, *, customer: str = "cus_1", amount: int = 2000,
                   attempt: int = 1, created: int = 1_700_000_000) -> dict[str, Any]:
    return stripe_fixture(
        "invoice", id=invoice_id, customer=customer, amount_due=amount, amount_remaining=amount,
        attempt_count=attempt, attempted=True, status="open", created=created,
    )


def event(event_id: str, etype: str, obj: dict[str, Any], created: int,
          previous: dict[str, Any] | None = None) -> dict[str, Any]:
    """An event in the fixture's shape around ``obj``."""
    data: dict[str, Any] = {"object": copy.deepcopy(obj)}
    if previous is not None:
        data["previous_attributes"] = previous
    return stripe_fixture(
        "event", id=event_id, type=etype, created=created, data=data,
        api_version="2026-10-28.endive",
    )


class _Server:
    """A ThreadingHTTPServer on a free loopback port, run in a daemon thread."""

    def __init__(self) -> None:
        self.requests: list[tuple[str, str, dict[str, str]]] = []
        self.faults: list[int] = []  # statuses to answer before serving normally
        self.lock = threading.Lock()
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(
            target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def start(self) -> _Server:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def fail_next(self, *statuses: int) -> None:
        with self.lock:
            self.faults.extend(statuses)

    def _take_fault(self) -> int | None:
        with self.lock:
            return self.faults.pop(0) if self.faults else None

    def handle(self, handler: BaseHTTPRequestHandler, method: str) -> tuple[int, Any, str]:
        raise NotImplementedError

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True  # headers and body leave at once (no 40 ms stalls)

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def _do(self, method: str) -> None:
                server.requests.append((method, self.path, dict(self.headers)))
                fault = None if self.path.startswith("/token") else server._take_fault()
                if fault is not None:
                    length = int(self.headers.get("Content-Length") or 0)
                    if length:
                        self.rfile.read(length)  # keep the connection usable
                    status, body, ctype = fault, {"error": {"message": f"injected {fault}",
                                                  "type": "api_error"}}, "application/json"
                    extra = {"Retry-After": "0"} if fault == 429 else {}
                else:
                    status, body, ctype = server.handle(self, method)
                    extra = {}
                data = body if isinstance(body, bytes) else json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(data)))
                for key, value in extra.items():
                    self.send_header(key, value)
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self) -> None:
                self._do("GET")

            def do_POST(self) -> None:
                self._do("POST")

        return Handler


class FakeStripe(_Server):
    """Stripe's list/retrieve wire format over a fixed set of objects (see module doc).

    Also: ``subscription`` filter and ``expand[]`` on lists, ``GET /v1/invoices/<id>/lines``
    (paginated), and discount lists collapsed to ids unless expanded (``data.discounts`` on
    a list, ``discounts`` on a retrieve), as the pinned API version answers.
    """

    api_key = "sk_test_growthwatch"
    _EXPANDABLE = frozenset({"subscriptions", "invoices"})

    def __init__(self) -> None:
        super().__init__()
        self.objects: dict[str, list[dict[str, Any]]] = {}
        self._sorted: dict[str, list[dict[str, Any]]] = {}  # newest first, cached
        self.lines: dict[str, list[dict[str, Any]]] = {}  # invoice id -> all its lines

    def add(self, resource: str, *objects: dict[str, Any], copy_objects: bool = True) -> None:
        """Serve ``objects``; ``copy_objects=False`` for large generated sets never reused."""
        with self.lock:
            added = copy.deepcopy(list(objects)) if copy_objects else list(objects)
            self.objects.setdefault(resource, []).extend(added)
            self._sorted.pop(resource, None)

    def _newest_first(self, resource: str) -> list[dict[str, Any]]:
        with self.lock:
            if resource not in self._sorted:
                # Newest first, as Stripe lists; stable for equal times (later-added first).
                items = list(reversed(self.objects.get(resource, [])))
                items.sort(key=lambda o: -int(o.get("created") or 0))
                self._sorted[resource] = items
            return self._sorted[resource]

    @staticmethod
    def _collapse(resource: str, obj: dict[str, Any], expanded: bool) -> dict[str, Any]:
        if expanded or resource not in FakeStripe._EXPANDABLE:
            return obj
        if not any(isinstance(d, dict) for d in obj.get("discounts") or []):
            return obj
        out = dict(obj)
        out["discounts"] = [d["id"] if isinstance(d, dict) else d for d in obj["discounts"]]
        return out

    @staticmethod
    def _page(items: list[dict[str, Any]], params: dict[str, Any], url: str) -> dict[str, Any]:
        if "starting_after" in params:
            ids = [o["id"] for o in items]
            items = items[ids.index(params["starting_after"]) + 1 :]
        limit = int(params.get("limit", 10))
        return {"object": "list", "data": items[:limit], "has_more": len(items) > limit,
                "url": url}  # fmt: skip

    def handle(self, handler: BaseHTTPRequestHandler, method: str) -> tuple[int, Any, str]:
        auth = handler.headers.get("Authorization", "")
        if auth != f"Bearer {self.api_key}":
            return 401, {"error": {"message": f"Invalid API Key provided: {auth[7:15]}***",
                                   "type": "invalid_request_error"}}, "application/json"
        parts = urlsplit(handler.path)
        query = parse_qsl(parts.query)
        match = re.fullmatch(r"/v1/([a-z_]+)(?:/([A-Za-z0-9_]+))?(/lines)?", parts.path)
        if not match:
            return 404, {"error": {"message": "unknown path", "type": "invalid_request_error"}}, \
                "application/json"
        resource, obj_id, lines = match.groups()
        params: dict[str, Any] = {}
        types: list[str] = []
        expand: set[str] = set()
        for key, value in query:
            if key.startswith("types["):
                types.append(value)
            elif key.startswith("expand["):
                expand.add(value)
            else:
                params[key] = value
        items = self._newest_first(resource)
        if obj_id:
            for obj in items:
                if obj["id"] == obj_id:
                    if lines:
                        data = self.lines.get(obj_id) or list(
                            (obj.get("lines") or {}).get("data") or [])
                        return 200, self._page(data, params, f"/v1/{resource}/{obj_id}/lines"), \
                            "application/json"
                    return 200, self._collapse(resource, obj, "discounts" in expand), \
                        "application/json"
            return 404, {"error": {"message": f"No such {resource}: {obj_id}",
                                   "type": "invalid_request_error"}}, "application/json"
        selected = []
        for obj in items:
            created = int(obj.get("created") or 0)
            if "created[gte]" in params and created < int(params["created[gte]"]):
                continue
            if "created[lt]" in params and created >= int(params["created[lt]"]):
                continue
            if types and obj.get("type") not in types:
                continue
            if params.get("charge") and obj.get("charge") != params["charge"]:
                continue
            if params.get("subscription") and _subscription_of(obj) != params["subscription"]:
                continue
            if params.get("customer") and obj.get("customer") != params["customer"]:
                continue
            if params.get("pending") == "true" and obj.get("invoice") is not None:
                continue
            if resource == "invoices" and params.get("status") not in (None, obj.get("status")):
                continue
            selected.append(obj)
        page = self._page(selected, params, f"/v1/{resource}")
        page["data"] = [self._collapse(resource, o, "data.discounts" in expand)
                        for o in page["data"]]  # fmt: skip
        return 200, page, "application/json"


def _subscription_of(obj: dict[str, Any]) -> str | None:
    """An invoice's subscription (``parent.subscription_details`` or legacy field)."""
    parent = obj.get("parent")
    if isinstance(parent, dict) and isinstance(parent.get("subscription_details"), dict):
        sub = parent["subscription_details"].get("subscription")
        return sub if isinstance(sub, str) else None
    sub = obj.get("subscription")
    return sub if isinstance(sub, str) else None


class FakeMixpanel(_Server):
    username = "sa.growthwatch"
    secret = "mp-secret"
    project_id = "1234567"

    def __init__(self) -> None:
        super().__init__()
        self.lines: list[str] = []  # raw JSONL lines, each with a "properties.time"

    def handle(self, handler: BaseHTTPRequestHandler, method: str) -> tuple[int, Any, str]:
        expected = base64.b64encode(f"{self.username}:{self.secret}".encode()).decode()
        if handler.headers.get("Authorization") != f"Basic {expected}":
            return 401, {"error": "Unable to authenticate request", "status": "error"}, \
                "application/json"
        parts = urlsplit(handler.path)
        query = dict(parse_qsl(parts.query))
        if parts.path != "/api/2.0/export":
            return 404, {"error": "not found"}, "application/json"
        if query.get("project_id") != self.project_id:
            return 400, {"error": "project_id missing or wrong"}, "application/json"
        low = time.mktime(time.strptime(query["from_date"], "%Y-%m-%d")) - time.timezone
        high = time.mktime(time.strptime(query["to_date"], "%Y-%m-%d")) - time.timezone + 86400
        names = set(json.loads(query["event"])) if "event" in query else None
        out = []
        for line in self.lines:
            try:
                obj = json.loads(line)
                t = obj["properties"]["time"]
                name = obj["event"]
            except (ValueError, KeyError, TypeError):
                out.append(line)  # malformed lines go out as they are
                continue
            if low <= t < high and (names is None or name in names):
                out.append(line)
        return 200, ("\n".join(out) + ("\n" if out else "")).encode(), "text/plain"


class FakeGA4(_Server):
    property_id = "312345678"

    def __init__(self) -> None:
        super().__init__()
        self.rows: list[tuple[str, str, int, int]] = []  # (YYYYMMDD, channel, sessions, users)
        self.tokens: set[str] = set()
        self.token_requests = 0
        self.accept_jwt = True

    def handle(self, handler: BaseHTTPRequestHandler, method: str) -> tuple[int, Any, str]:
        length = int(handler.headers.get("Content-Length") or 0)
        body = handler.rfile.read(length) if length else b""
        parts = urlsplit(handler.path)
        if parts.path == "/token":
            form = dict(parse_qsl(body.decode()))
            self.token_requests += 1
            if form.get("grant_type") != "urn:ietf:params:oauth:grant-type:jwt-bearer" or not \
                    self.accept_jwt or form.get("assertion", "").count(".") != 2:
                return 400, {"error": "invalid_grant", "error_description": "Invalid JWT"}, \
                    "application/json"
            token = f"ya29.test-{len(self.tokens)}"
            self.tokens.add(token)
            return 200, {"access_token": token, "expires_in": 3600, "token_type": "Bearer"}, \
                "application/json"
        if parts.path != f"/v1beta/properties/{self.property_id}:runReport":
            return 404, {"error": {"code": 404, "message": "not found", "status": "NOT_FOUND"}}, \
                "application/json"
        auth = handler.headers.get("Authorization", "")
        if not auth.startswith("Bearer ") or auth[7:] not in self.tokens:
            return 401, {"error": {"code": 401, "message": "Request had invalid authentication "
                                   "credentials.", "status": "UNAUTHENTICATED"}}, \
                "application/json"
        request = json.loads(body)
        (date_range,) = request["dateRanges"]
        low = date_range["startDate"].replace("-", "")
        high = date_range["endDate"].replace("-", "")
        rows = sorted(r for r in self.rows if low <= r[0] <= high)
        offset = int(request.get("offset", 0))
        limit = int(request.get("limit", 10000))
        page = rows[offset : offset + limit]
        out: dict[str, Any] = {
            "dimensionHeaders": [{"name": d["name"]} for d in request["dimensions"]],
            "metricHeaders": [{"name": m["name"], "type": "TYPE_INTEGER"}
                              for m in request["metrics"]],
            "rowCount": len(rows),
            "metadata": {"currencyCode": "USD", "timeZone": "Etc/UTC"},
            "kind": "analyticsData#runReport",
        }
        if page:
            out["rows"] = [
                {"dimensionValues": [{"value": d}, {"value": c}],
                 "metricValues": [{"value": str(s)}, {"value": str(u)}]}
                for d, c, s, u in page
            ]
        return 200, out, "application/json"


@contextmanager
def running(server: _Server) -> Iterator[Any]:
    server.start()
    try:
        yield server
    finally:
        server.stop()


FAST = RetryPolicy(max_retries=3, backoff=0.01, max_delay=0.05)


def source(type_: str, product: str = "acme", name: str | None = None, *, schedule: str = "15m",
           lookback: str = "3d", **options: Any) -> SourceConfig:
    return SourceConfig(
        type=type_, name=name or type_, product=product, schedule=schedule,
        lookback=lookback, options=options,
    )
