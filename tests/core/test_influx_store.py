"""InfluxStore: batching with gzip, retries, clear 4xx errors, spooling through an outage."""

from __future__ import annotations

import gzip
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pandas as pd
import pytest

from growthwatch.points import PointBatch
from growthwatch.stores.influx import InfluxStore, InfluxUnavailable, InfluxWriteError
from growthwatch.testing.servers import InfluxServer

T0 = datetime(2025, 1, 1, tzinfo=UTC)


def batch(start: int, n: int) -> PointBatch:
    """Points with ids start..start+n-1, one second apart; field `id` identifies each."""
    ids = list(range(start, start + n))
    frame = pd.DataFrame(
        {
            "time": pd.to_datetime([T0 + timedelta(seconds=i) for i in ids], utc=True),
            "product": ["acme"] * n,
            "id": pd.Series(ids, dtype="int64"),
            "value": [i * 0.5 for i in ids],
        }
    )
    return PointBatch("ingest", frame, ("product",), ("id", "value"))


class Recorder(BaseHTTPRequestHandler):
    """Answers /write like InfluxDB, failing the first `fail` requests with `status`."""

    bodies: list[bytes]
    plan: list[int]

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        gzipped = self.headers.get("Content-Encoding") == "gzip"
        self.server.gzipped.append(gzipped)  # type: ignore[attr-defined]
        if gzipped:
            body = gzip.decompress(body)
        self.server.bodies.append(body)  # type: ignore[attr-defined]
        status = self.server.plan.pop(0) if self.server.plan else 204  # type: ignore[attr-defined]
        self.send_response(status)
        payload = b'{"error":"unable to parse \'x\': missing fields"}' if status == 400 else b""
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def recorder() -> Iterator[ThreadingHTTPServer]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), Recorder)
    server.bodies = []  # type: ignore[attr-defined]
    server.plan = []  # type: ignore[attr-defined]
    server.gzipped = []  # type: ignore[attr-defined]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()


def url(server: ThreadingHTTPServer) -> str:
    return f"http://127.0.0.1:{server.server_address[1]}"


def test_batches_are_gzip_chunks_of_batch_size(recorder: ThreadingHTTPServer) -> None:
    store = InfluxStore(url(recorder), "db", batch_size=4, compress=True)
    result = store.write(batch(0, 10))
    assert (result.points, result.requests) == (10, 3)
    assert recorder.gzipped == [True, True, True]  # type: ignore[attr-defined]
    sizes = [len(b.decode().strip().split("\n")) for b in recorder.bodies]  # type: ignore[attr-defined]
    assert sizes == [4, 4, 2]


def test_gzip_only_off_loopback_by_default(recorder: ThreadingHTTPServer) -> None:
    assert InfluxStore("http://influx.example:8086", "db").compress
    assert not InfluxStore("http://localhost:8086", "db").compress
    assert not InfluxStore("http://[::1]:8086", "db").compress
    store = InfluxStore(url(recorder), "db")
    store.write(batch(0, 3))
    assert recorder.gzipped == [False]  # type: ignore[attr-defined]
    assert recorder.bodies[0].decode().count("\n") == 3  # type: ignore[attr-defined]


def test_5xx_is_retried_with_backoff(recorder: ThreadingHTTPServer) -> None:
    recorder.plan.extend([503, 500])  # type: ignore[attr-defined]
    store = InfluxStore(url(recorder), "db", backoff=0.01)
    result = store.write(batch(0, 3))
    assert result.points == 3 and result.requests == 3
    assert len(recorder.bodies) == 3  # type: ignore[attr-defined]


def test_4xx_raises_with_influx_message_and_is_not_retried(recorder: ThreadingHTTPServer) -> None:
    recorder.plan.append(400)  # type: ignore[attr-defined]
    store = InfluxStore(url(recorder), "mydb", backoff=0.01)
    with pytest.raises(
        InfluxWriteError, match=r"refused the write to 'mydb': HTTP 400.*missing fields"
    ):
        store.write(batch(0, 1))
    assert len(recorder.bodies) == 1  # type: ignore[attr-defined]


def test_unreachable_without_spool_raises() -> None:
    store = InfluxStore("http://127.0.0.1:9", "db", max_retries=1, backoff=0.01, timeout=0.5)
    with pytest.raises(InfluxUnavailable, match="unreachable"):
        store.write(batch(0, 1))


def count_ids(server: InfluxServer, db: str) -> tuple[int, int, set[int]]:
    rows = server.query('SELECT "id" FROM "ingest"', db)
    ids = [int(str(r["id"])) for r in rows]
    return len(ids), len(set(ids)), set(ids)


@pytest.mark.influx
def test_rewrite_overwrites_same_key(influx_server: InfluxServer, influx_db: str) -> None:
    store = InfluxStore(influx_server.url, influx_db)
    store.ensure_database()
    store.write(batch(0, 100))
    store.write(batch(0, 100))
    assert count_ids(influx_server, influx_db)[:2] == (100, 100)


def rate_batch(rates: list[float], active: list[int], tag: str = "it's \"q\" a\\b") -> PointBatch:
    """Two days of a rate series; the tag value needs InfluxQL escaping."""
    frame = pd.DataFrame(
        {
            "time": pd.to_datetime([T0, T0 + timedelta(days=1)], utc=True),
            "product": [tag, tag],
            "active": pd.Series(active, dtype="int64"),
            "rate": rates,
        }
    )
    return PointBatch("rates", frame, ("product",), ("active", "rate"))


@pytest.mark.influx
def test_an_undefined_field_clears_the_stored_value(
    influx_server: InfluxServer, influx_db: str
) -> None:
    """InfluxDB merges a rewritten point's fields into the old ones; a rate that became
    undefined (NaN) must not keep its old value, and nothing else may be lost."""
    store = InfluxStore(influx_server.url, influx_db)
    store.ensure_database()
    store.write(rate_batch([0.25, 0.5], [4, 2]))
    store.write(rate_batch([0.1, 0.2], [1, 1], tag="other"))
    store.write(rate_batch([float("nan"), 0.75], [0, 4]))
    rows = influx_server.query('SELECT "active", "rate", "product" FROM "rates"', influx_db)
    got = sorted((str(r["product"]), str(r["time"]), r["active"], r["rate"]) for r in rows)
    day1, day2 = "2025-01-01T00:00:00Z", "2025-01-02T00:00:00Z"
    assert got == [
        ("it's \"q\" a\\b", day1, 0, None),
        ("it's \"q\" a\\b", day2, 4, 0.75),
        ("other", day1, 1, 0.1),
        ("other", day2, 1, 0.2),
    ]


def test_undefined_fields_while_influx_is_down_are_spooled_not_raised(tmp_path: Path) -> None:
    """The clearing check needs InfluxDB; when it is down the points still go to the spool."""
    store = InfluxStore("http://127.0.0.1:9", "db", max_retries=1, backoff=0.01, timeout=0.5,
                        spool_dir=tmp_path / "spool")  # fmt: skip
    result = store.write(rate_batch([float("nan"), 0.75], [0, 4]))
    assert (result.points, result.spooled) == (0, 2)
    assert store.spool is not None and store.spool.lines() == 2


@pytest.mark.influx
@pytest.mark.slow
def test_influx_stopped_mid_ingest_every_point_once(tmp_path: Path) -> None:
    """A real influxd is stopped while a writer is busy, then restarted on the same data."""
    server = InfluxServer().start()
    try:
        store = InfluxStore(server.url, "outage", batch_size=500, max_retries=2, backoff=0.05,
                            timeout=2.0, spool_dir=tmp_path / "spool")  # fmt: skip
        store.ensure_database()
        total, per_write = 60_000, 1_000
        spooled = 0
        written = 0

        def writer() -> None:
            nonlocal spooled, written
            for start in range(0, total, per_write):
                result = store.write(batch(start, per_write))
                spooled += result.spooled
                written += result.points
                time.sleep(0.01)

        thread = threading.Thread(target=writer)
        thread.start()
        time.sleep(0.3)
        server.stop()  # InfluxDB goes away mid-ingest
        time.sleep(1.5)
        server.start()  # ... and comes back with the same data folder
        thread.join()
        store.flush_spool()
        assert spooled > 0, "the outage should have made the store spool"
        assert store.spool is not None and len(store.spool) == 0
        n, distinct, ids = count_ids(server, "outage")
        assert (n, distinct) == (total, total)
        assert ids == set(range(total))
    finally:
        server.cleanup()


def test_a_full_spool_holds_new_points_back_instead_of_dropping_old_ones(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    server = InfluxServer()  # not running yet: InfluxDB is away
    try:
        store = InfluxStore(server.url, "gw_full", spool_dir=tmp_path / "spool", max_retries=0,
                            spool_max_bytes=600, compress=False)  # fmt: skip
        first = store.write(batch(0, 10))
        assert first.spooled == 10 and store.spool is not None and store.spool.size() <= 600
        store.spool.max_bytes = store.spool.size() + 10  # the next batch does not fit
        waits = []

        def wait(seconds: float) -> None:  # InfluxDB comes back during the wait
            waits.append(seconds)
            if server.process is None:
                server.start()
                InfluxStore(server.url, "gw_full").ensure_database()

        store.backpressure_sleep = wait  # type: ignore[method-assign]
        second = store.write(batch(10, 10))  # would pass the limit: waits, then goes out
        assert waits and "holding new points" in caplog.text
        assert second.points == 20 and store.spool.lines() == 0  # both batches, in order
        (row,) = server.query('SELECT count("id") FROM "ingest"', "gw_full")
        assert row["count"] == 20
    finally:
        server.stop()
        server.cleanup()


def test_an_unwritable_spool_folder_is_an_error_at_start(tmp_path: Path) -> None:
    from growthwatch.stores.spool import SpoolError

    blocker = tmp_path / "not-a-folder"
    blocker.write_text("")
    with pytest.raises(SpoolError, match="cannot be written"):
        InfluxStore("http://127.0.0.1:9", "gw", spool_dir=blocker / "spool")
