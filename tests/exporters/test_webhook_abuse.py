"""The webhook endpoint under abuse: slow clients, smuggling, malformed and poison input.

Each case reproduces a finding of the reliability review against the old ``http.server``
endpoint and shows the answer now: a 4xx for every malformed request, no connection that a
client can hold for ever, and one poison event that never holds back the others.
"""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from exporter_fakes import FakeStripe, charge, event, subscription
from test_stripe_webhook import SECRET, make_receiver, post, sign

from exporters import http_server
from exporters.state import StateStore
from exporters.stripe_webhook import StripeWebhookReceiver
from growthwatch.stores.ledger import Ledger

NOW = int(time.time())
PATH = "/webhooks/stripe/acme"


@pytest.fixture
def receiver(fake_stripe: FakeStripe, ledger: Ledger, state: StateStore,
             monkeypatch: pytest.MonkeyPatch) -> Iterator[StripeWebhookReceiver]:  # fmt: skip
    monkeypatch.setenv("GW_TEST_STRIPE_KEY", FakeStripe.api_key)
    monkeypatch.setattr(http_server.GuardedH11Protocol, "head_timeout", 1.0)
    rec = make_receiver(fake_stripe, ledger, state).start()
    yield rec
    rec.stop()


def raw(rec: StripeWebhookReceiver, data: bytes, *, quiet: float = 2.0) -> bytes:
    """Send bytes on a fresh connection; what the server answers until it closes the
    connection or stays quiet for ``quiet`` seconds."""
    host, port = rec.url.removeprefix("http://").split(":")
    out = b""
    with socket.create_connection((host, int(port)), timeout=quiet) as sock:
        sock.sendall(data)
        try:
            while chunk := sock.recv(65536):
                out += chunk
        except (TimeoutError, ConnectionResetError):
            pass
    return out


def signed_request(body: bytes, *, extra: bytes = b"") -> bytes:
    header = sign(body.decode()).encode()
    return (b"POST " + PATH.encode() + b" HTTP/1.1\r\nHost: x\r\nContent-Type: application/json"
            b"\r\nStripe-Signature: " + header + b"\r\nContent-Length: "
            + str(len(body)).encode() + b"\r\nConnection: close\r\n" + extra + b"\r\n" + body)  # fmt: skip


def test_a_thousand_idle_connections_do_not_stop_valid_webhooks(
    receiver: StripeWebhookReceiver, ledger: Ledger
) -> None:
    host, port = receiver.url.removeprefix("http://").split(":")
    idle = []
    try:
        for _ in range(1000):  # each sends a request line only, as a slow-loris client does
            sock = socket.create_connection((host, int(port)), timeout=10)
            sock.sendall(f"POST {PATH} HTTP/1.1\r\n".encode())
            idle.append(sock)
        assert requests.get(receiver.url + "/healthz", timeout=10).status_code == 200
        evt = event("evt_loris", "charge.succeeded", charge("ch_loris", created=NOW), NOW)
        assert post(receiver, evt).status_code == 200
        receiver.drain()
        assert ledger.count() == 1
        # The request-head deadline (1 s here, 10 s by default) closes every one of them.
        time.sleep(2.5)
        closed = 0
        for sock in idle:
            sock.settimeout(5)
            try:
                closed += sock.recv(1) == b""
            except (ConnectionResetError, TimeoutError):
                closed += 1
        assert closed == len(idle)
    finally:
        for sock in idle:
            sock.close()


def test_a_body_trickling_in_gets_408_instead_of_holding_the_connection(
    receiver: StripeWebhookReceiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(http_server, "BODY_TIMEOUT", 1.0)
    monkeypatch.setattr(http_server.read_body, "__defaults__", (1.0,))
    host, port = receiver.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(f"POST {PATH} HTTP/1.1\r\nHost: x\r\nStripe-Signature: t=1,v1=0\r\n"
                     "Content-Length: 100\r\n\r\n{".encode())  # fmt: skip
        started = time.monotonic()
        answer = sock.recv(65536)
        assert b" 408 " in answer.split(b"\r\n")[0]
        assert time.monotonic() - started < 8


def test_a_chunked_body_is_one_request_never_a_smuggled_second(
    receiver: StripeWebhookReceiver, ledger: Ledger
) -> None:
    smuggled = b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"
    # The old endpoint did not decode chunked bodies, so a request inside the chunk data was
    # answered as a second request. Now the chunk data is the body of the one request.
    inside = b"%x\r\n%s\r\n0\r\n\r\n" % (len(smuggled), smuggled)
    answer = raw(receiver, b"POST " + PATH.encode() + b" HTTP/1.1\r\nHost: x\r\n"
                 b"Stripe-Signature: t=1,v1=0\r\nTransfer-Encoding: chunked\r\n\r\n" + inside)  # fmt: skip
    statuses = [line for line in answer.split(b"\r\n") if line.startswith(b"HTTP/1.1 ")]
    assert statuses == [b"HTTP/1.1 400 Bad Request"], answer
    # Both Content-Length and Transfer-Encoding is how smuggling starts: refused, and the
    # connection closed so that nothing after it is read as another request.
    both = b"0\r\n\r\n" + smuggled
    answer = raw(receiver, b"POST " + PATH.encode() + b" HTTP/1.1\r\nHost: x\r\n"
                 b"Stripe-Signature: t=1,v1=0\r\nTransfer-Encoding: chunked\r\nContent-Length: "
                 + str(len(both)).encode() + b"\r\n\r\n" + both)  # fmt: skip
    statuses = [line for line in answer.split(b"\r\n") if line.startswith(b"HTTP/1.1 ")]
    assert statuses == [b"HTTP/1.1 400 Bad Request"], answer
    # and a well-formed chunked delivery is decoded and accepted
    evt = json.dumps(event("evt_chunk", "charge.succeeded", charge("ch_chunk", created=NOW), NOW))
    chunks = b"".join(b"%x\r\n%s\r\n" % (len(p), p) for p in (evt[:50].encode(), evt[50:].encode()))
    ok = raw(receiver, b"POST " + PATH.encode() + b" HTTP/1.1\r\nHost: x\r\nStripe-Signature: "
             + sign(evt).encode() + b"\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
             + chunks + b"0\r\n\r\n")  # fmt: skip
    assert ok.startswith(b"HTTP/1.1 200"), ok
    receiver.drain()
    assert ledger.count() == 1


@pytest.mark.parametrize("body", [b"[1,2,3]", b"null", b"[" * 100_000 + b"]" * 100_000,
                                  b'{"id": "evt_x", "type": 5', b"\xff\xfe"])  # fmt: skip
def test_signed_garbage_gets_a_400_with_a_reason(receiver: StripeWebhookReceiver,
                                                 body: bytes) -> None:  # fmt: skip
    header = sign(body.decode("utf-8", errors="replace")) if body != b"\xff\xfe" else sign("x")
    resp = requests.post(receiver.url + PATH, data=body, timeout=10,
                         headers={"Stripe-Signature": header})  # fmt: skip
    assert resp.status_code == 400 and resp.json()["error"]


@pytest.mark.parametrize(("request_bytes", "status"), [
    (b"POST " + PATH.encode() + b" HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n", b"400"),
    (b"POST /webhooks/stripe/nobody HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\n", b"404"),
    (b"POST " + PATH.encode() + b" HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\n", b"400"),
    (b"GET " + PATH.encode() + b" HTTP/1.1\r\nHost: x\r\n\r\n", b"405"),
    (b"BREW /healthz HTCPCP/1.0\r\n\r\n", b"400"),
])  # fmt: skip
def test_every_malformed_request_gets_an_http_answer(
    receiver: StripeWebhookReceiver, request_bytes: bytes, status: bytes
) -> None:
    answer = raw(receiver, request_bytes)
    assert answer.split(b"\r\n")[0].split(b" ")[1] == status, answer[:200]


def test_one_poison_event_never_strands_its_batch_or_a_restart(
    fake_stripe: FakeStripe, ledger: Ledger, state: StateStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GW_TEST_STRIPE_KEY", FakeStripe.api_key)
    good = [event(f"evt_g{i}", "charge.succeeded", charge(f"ch_g{i}", created=NOW), NOW)
            for i in range(58)]  # fmt: skip
    nan = subscription("sub_nan", created=NOW)
    nan["items"]["data"][0]["price"]["unit_amount_decimal"] = "NaN"
    nan["items"]["data"][0]["price"]["unit_amount"] = None
    poison = [event("evt_nan", "customer.subscription.created", nan, NOW),
              event("evt_far", "charge.succeeded", charge("ch_far", created=int(1e20)), NOW)]
    crashed = make_receiver(fake_stripe, ledger, state)
    route = crashed.routes[PATH]
    for evt in [*good[:30], *poison, *good[30:]]:  # stored, answered, never processed
        body = json.dumps(evt)
        assert crashed.accept(route, body.encode(), sign(body, SECRET))[0] == 200
    crashed.stop()
    restarted = make_receiver(fake_stripe, ledger, state).start()  # recovery runs here
    try:
        assert ledger.count() == 58
        rejected = sorted((r["reason"], r["detail"]) for r in state.rejected())
        # each poison record is dead-lettered by the mapping with what was wrong with it
        assert [reason for reason, _ in rejected] == ["invalid_amount", "malformed_record"]
        assert "NaN is not a non-negative number" in rejected[0][1]
        assert rejected[1][1].startswith("OverflowError")
        assert state.inbox_pending() == []  # nothing left to poison the next restart
    finally:
        restarted.stop()


@pytest.mark.parametrize(("field", "value", "reason"), [
    ("quantity", -3, "invalid_quantity"), ("unit_amount", -2000, "invalid_amount"),
])  # fmt: skip
def test_a_negative_quantity_or_amount_is_rejected_not_stored_as_zero_mrr(
    fake_stripe: FakeStripe, ledger: Ledger, state: StateStore, monkeypatch: pytest.MonkeyPatch,
    field: str, value: int, reason: str,
) -> None:  # fmt: skip
    monkeypatch.setenv("GW_TEST_STRIPE_KEY", FakeStripe.api_key)
    sub = subscription("sub_neg", created=NOW)
    item = sub["items"]["data"][0]
    if field == "quantity":
        item["quantity"] = value
    else:
        item["price"]["unit_amount"] = value
        item["price"]["unit_amount_decimal"] = str(value)
    rec = make_receiver(fake_stripe, ledger, state)
    route = rec.routes[PATH]
    body = json.dumps(event("evt_neg", "customer.subscription.created", sub, NOW))
    assert rec.accept(route, body.encode(), sign(body, SECRET))[0] == 200
    rec.recover()
    assert ledger.count() == 0
    assert [r["reason"] for r in state.rejected()] == [reason]
    rec.stop()


def _peak_rss_mib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


def test_a_flood_of_forged_4_mib_bodies_holds_bounded_memory(
    receiver: StripeWebhookReceiver, ledger: Ledger
) -> None:
    """100 clients at once, each a forged body just under the limit: bodies are read at most
    BODIES_IN_FLIGHT at a time, so memory does not grow with the number of attackers."""
    from concurrent.futures import ThreadPoolExecutor

    body = b"{" + b" " * (4 * 1024 * 1024 - 2) + b"}"
    before = _peak_rss_mib()

    def forge(_: int) -> int:
        return requests.post(receiver.url + PATH, data=body, timeout=120,
                             headers={"Stripe-Signature": "t=1,v1=00"}).status_code  # fmt: skip

    with ThreadPoolExecutor(max_workers=100) as pool:
        statuses = list(pool.map(forge, range(100)))
    grown = _peak_rss_mib() - before
    print(f"\nforged 4 MiB bodies x100: peak RSS grew {grown:.0f} MiB")
    assert statuses == [400] * 100 and ledger.count() == 0
    assert grown < 100 * 4 * 0.6  # far below holding every body at once (400 MiB)
