"""The HTTP server in front of the webhook endpoint: uvicorn (h11) running a small ASGI app.

Why not ``http.server``: one thread per connection, no timeouts and a backlog of 5 let
anyone who reaches the port take the endpoint down (a thousand connections that send only
a request line, a body trickling at a byte a second), and its hand-rolled parsing answered
a chunked body as a second request. uvicorn is a well-kept production server: an asyncio
loop holds thousands of idle connections for the price of a socket each, h11 parses HTTP
strictly (chunked bodies are decoded, malformed requests get a 400), and it has a real
listen backlog and a concurrency limit (503 beyond it).

What this module adds to it, because uvicorn has no such settings:

* a **request-head timeout**: a connection that has not sent a complete request head
  within ``head_timeout`` seconds of connecting (or of its previous response) is closed,
  so slow-loris connections do not pile up;
* a **body timeout** and a **size limit** enforced while reading (``read_body``), so the
  route and the signature header can be checked before a byte of the body is read.

The server runs in a background thread with its own event loop; the handlers that touch
SQLite or the ledger run in the thread pool, never on the loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import resource
import socket
import threading
from collections.abc import Awaitable, Callable
from typing import Any

import uvicorn
from starlette.requests import Request
from uvicorn.protocols.http.h11_impl import H11Protocol

log = logging.getLogger(__name__)

HEAD_TIMEOUT = 10.0  # seconds to send a request line and headers
BODY_TIMEOUT = 15.0  # seconds to send a body (Stripe's events are a few KB)
DRAIN_LIMIT = 16 * 1024 * 1024  # an oversized body up to this is read and dropped, then 413
BACKLOG = 2048
MAX_CONNECTIONS = 4096  # concurrent connections before new requests get a 503
# Bodies read at the same time: memory for bodies stays under BODIES_IN_FLIGHT x the body
# limit however many clients send at once (200 forged 4 MiB bodies used to hold 800 MiB).
BODIES_IN_FLIGHT = 16


class BodyTooLarge(Exception):
    pass


class BodyTimeout(Exception):
    pass


async def read_body(request: Request, limit: int, timeout: float = BODY_TIMEOUT) -> bytes:
    """The request body, refused past ``limit`` bytes or ``timeout`` seconds.

    A body over the limit is read to its end and thrown away (up to ``DRAIN_LIMIT``, held
    in no buffer) before ``BodyTooLarge`` is raised, so the client reads the 413 instead of
    a connection reset; a declared ``Content-Length`` past ``DRAIN_LIMIT`` is refused
    without reading. A chunked body is counted as it arrives.
    """
    declared = request.headers.get("content-length")
    if declared is not None and int(declared) > DRAIN_LIMIT:  # h11 checked it is a number
        raise BodyTooLarge(declared)
    keep = declared is None or int(declared) <= limit  # an oversized one is never held
    body = bytearray()
    seen = 0
    try:
        async with asyncio.timeout(timeout):
            async for chunk in request.stream():
                seen += len(chunk)
                if seen > DRAIN_LIMIT:
                    break
                if keep and seen <= limit:
                    body += chunk
    except TimeoutError:
        raise BodyTimeout(f"no complete body within {timeout:g} s") from None
    if seen > limit:
        raise BodyTooLarge(str(seen))
    return bytes(body)


class GuardedH11Protocol(H11Protocol):
    """uvicorn's h11 protocol plus a deadline for each request head."""

    head_timeout: float = HEAD_TIMEOUT
    _head_timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm_head_timer()

    def _arm_head_timer(self) -> None:
        self._head_cycle = self.cycle
        self._head_timer = self.loop.call_later(self.head_timeout, self._head_expired)

    def _head_expired(self) -> None:
        if self.cycle is self._head_cycle and not self.transport.is_closing():
            log.debug("closing a connection that sent no request head in %gs", self.head_timeout)
            self.transport.close()

    def handle_events(self) -> None:
        super().handle_events()
        if self.cycle is not self._head_cycle and self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if not self.transport.is_closing():
            if self._head_timer is not None:
                self._head_timer.cancel()
            self._arm_head_timer()

    def connection_lost(self, exc: Exception | None) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None
        super().connection_lost(exc)


ASGIApp = Callable[[dict[str, Any], Any, Any], Awaitable[None]]


class BackgroundServer:
    """An ASGI app served by uvicorn from a thread; ``port=0`` picks a free port."""

    def __init__(self, app: ASGIApp, host: str, port: int, *, name: str = "http") -> None:
        _raise_open_files_limit()
        self.sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((host, port))
        self.sock.listen(BACKLOG)
        self.config = uvicorn.Config(
            app, http=GuardedH11Protocol, lifespan="off", log_level="warning",
            access_log=False, backlog=BACKLOG, limit_concurrency=MAX_CONNECTIONS,
            timeout_keep_alive=5, h11_max_incomplete_event_size=64 * 1024,
            server_header=False,
        )  # fmt: skip
        self.server = uvicorn.Server(self.config)
        self.name = name
        self._thread: threading.Thread | None = None

    @property
    def address(self) -> tuple[str, int]:
        host, port = self.sock.getsockname()[:2]
        return str(host), int(port)

    def start(self) -> BackgroundServer:
        self._thread = threading.Thread(
            target=self.server.run, kwargs={"sockets": [self.sock]}, name=self.name, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        self.server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None
        self.sock.close()


def _raise_open_files_limit() -> None:
    """Let the process hold as many sockets as the system allows (idle clients cost one)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
