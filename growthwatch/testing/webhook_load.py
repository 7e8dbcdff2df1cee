"""A load generator for the webhook endpoint: signed Stripe deliveries at a fixed rate.

Run as a separate process (``python -m growthwatch.testing.webhook_load``) so the client
never shares a GIL with the server it measures. It opens ``--connections`` keep-alive
connections on loopback, sends ``--rate`` deliveries a second for ``--seconds`` on a fixed
schedule (a late request is sent at once, never dropped), each a ``charge.succeeded``
with its own event and charge id, and prints one JSON line: sent, status counts, errors,
achieved rate and latency percentiles (ms). Requests go only to the loopback URL given.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import hmac
import json
import statistics
import sys
import time
from typing import Any
from urllib.parse import urlsplit


def delivery(index: int, run: str, secret: str, now: int) -> tuple[bytes, str]:
    charge = {"id": f"ch_{run}_{index}", "object": "charge", "amount": 1000 + index % 97,
              "amount_captured": 1000 + index % 97, "captured": True, "paid": True,
              "status": "succeeded", "currency": "usd", "customer": f"cus_{index % 500}",
              "created": now, "refunded": False, "amount_refunded": 0}  # fmt: skip
    event = {"id": f"evt_{run}_{index}", "object": "event", "type": "charge.succeeded",
             "created": now, "api_version": "2026-10-28.endive", "livemode": False,
             "data": {"object": charge}}  # fmt: skip
    body = json.dumps(event).encode()
    mac = hmac.new(secret.encode(), f"{now}.".encode() + body, hashlib.sha256).hexdigest()
    return body, f"t={now},v1={mac}"


async def _client(host: str, port: int, path: str, queue: asyncio.Queue[tuple[int, float] | None],
                  run: str, secret: str, out: dict[str, Any]) -> None:  # fmt: skip
    reader, writer = await asyncio.open_connection(host, port)
    try:
        while (item := await queue.get()) is not None:
            index, due = item
            body, signature = delivery(index, run, secret, int(time.time()))
            head = (f"POST {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n"
                    f"Stripe-Signature: {signature}\r\nContent-Length: {len(body)}\r\n\r\n")  # fmt: skip
            start = time.perf_counter()
            try:
                writer.write(head.encode() + body)
                status_line = await reader.readline()
                length = 0
                while (line := await reader.readline()) not in (b"\r\n", b""):
                    if line.lower().startswith(b"content-length:"):
                        length = int(line.split(b":")[1])
                await reader.readexactly(length)
                status = int(status_line.split()[1])
            except (OSError, asyncio.IncompleteReadError, IndexError, ValueError) as exc:
                out["errors"].append(f"{type(exc).__name__}: {exc}")
                writer.close()
                reader, writer = await asyncio.open_connection(host, port)
                continue
            out["latency"].append((time.perf_counter() - start) * 1000)
            out["lag"].append(max(0.0, start - due) * 1000)
            out["status"][status] = out["status"].get(status, 0) + 1
    finally:
        writer.close()


async def run_load(url: str, rate: float, seconds: float, connections: int, secret: str,
                   run: str) -> dict[str, Any]:  # fmt: skip
    parts = urlsplit(url)
    assert parts.hostname in ("127.0.0.1", "localhost", "::1"), "loopback targets only"
    out: dict[str, Any] = {"latency": [], "lag": [], "status": {}, "errors": []}
    queue: asyncio.Queue[tuple[int, float] | None] = asyncio.Queue()
    clients = [asyncio.create_task(_client(parts.hostname, parts.port or 80, parts.path, queue,
                                           run, secret, out)) for _ in range(connections)]  # fmt: skip
    total = int(rate * seconds)
    began = time.perf_counter()
    for index in range(total):
        due = began + index / rate
        delay = due - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        queue.put_nowait((index, due))
    for _ in clients:
        queue.put_nowait(None)
    await asyncio.gather(*clients)
    elapsed = time.perf_counter() - began
    lat = sorted(out["latency"])

    def pct(p: float) -> float:
        return round(lat[min(len(lat) - 1, int(p * len(lat)))], 2) if lat else float("nan")

    return {"sent": total, "answered": len(lat), "status": out["status"],
            "errors": len(out["errors"]), "first_errors": out["errors"][:5],
            "seconds": round(elapsed, 2), "rate": round(len(lat) / elapsed, 1),
            "p50_ms": pct(0.50), "p95_ms": pct(0.95), "p99_ms": pct(0.99),
            "mean_schedule_lag_ms": round(statistics.fmean(out["lag"]), 2) if lat else None}  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", required=True, help="http://127.0.0.1:PORT/webhooks/stripe/P")
    parser.add_argument("--rate", type=float, default=500.0)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--secret", required=True)
    parser.add_argument("--run", default="load", help="prefix of the event ids")
    args = parser.parse_args(argv)
    result = asyncio.run(run_load(args.url, args.rate, args.seconds, args.connections,
                                  args.secret, args.run))  # fmt: skip
    print(json.dumps(result))
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
