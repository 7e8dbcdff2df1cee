"""Bulk ingest: event frames -> ledger -> raw points in InfluxDB, as an overlapped pipeline.

Run one after the other, the stages add up: producing the frames (the demo generator, a
backfill), validating them and computing their rows (``Ledger.prepare``: ``check_table``,
the key hash), inserting into the ledger (DuckDB, the new rows chosen against the ledger's
key set), encoding line protocol and posting it. Here each stage runs in its own thread
and hands its output to the next through a bounded queue (``depth`` pieces of
``piece_rows`` events), so while DuckDB inserts piece *n* (in C++, without the GIL), the
validator checks piece *n + 1*, the encoder turns piece *n - 1* into request bodies (Arrow
compute, mostly without the GIL) and the writer posts piece *n - 2* (the socket releases
the GIL too, and InfluxDB works in its own process). Memory stays bounded by the queues,
whatever the volume.

Guarantees, the same as running the stages in sequence:

* every row is validated with every rule of ``check_frame``; bad rows are kept in the
  ledger's ``rejected_events`` and counted, the good ones stored;
* the ledger gets every event once (``Ledger.append``), in the order given;
* every event the ledger holds for these frames (new, or already there on a re-run)
  becomes exactly one raw point, whose time offset comes from the event's ledger ``seq``
  (read back under the ledger's lock by ``append(..., read_back=POINT_COLUMNS)``; the
  encoder, not the ledger's thread, turns those Arrow rows into a frame);
* one writer thread posts the pieces in ledger order, so the InfluxDB spool keeps its
  order: when InfluxDB is down the store spools each body and nothing is lost;
* a failure to write (InfluxDB refusing the data, or down without a spool) does not stop
  the ledger: every event is stored, and the error is raised once the ledger is done; a
  failure of the validator or the ledger stops the pipeline and is raised at once.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from growthwatch.stores.event_points import POINT_COLUMNS, event_points
from growthwatch.stores.influx import InfluxStore
from growthwatch.stores.interfaces import WriteResult
from growthwatch.stores.ledger import Ledger

Progress = Callable[[str, int], None]  # (stage "ledger" | "influx", events just processed)
# Events per piece handed between the stages: one DuckDB row group (122,880 rows), small
# enough that filling and draining the pipeline is a small part of a big ingest.
PIECE_ROWS = 122_880
DEPTH = 2  # pieces waiting between two stages


@dataclass
class IngestResult:
    received: int = 0
    inserted: int = 0
    duplicates: int = 0
    rejected: int = 0
    influx: WriteResult = field(default_factory=WriteResult)
    # Seconds each stage spent working (not waiting): "source", "validate", "ledger",
    # "encode", "influx" (posting); ``cpu``: the CPU seconds of the stage's own thread in that time (DuckDB's
    # worker threads are not in it).
    busy: dict[str, float] = field(default_factory=dict)
    cpu: dict[str, float] = field(default_factory=dict)


class _Stop(Exception):
    """Another stage failed: stop this one quietly (the failure is raised elsewhere)."""


_END = object()


def pieces(frames: Iterable[pd.DataFrame], rows: int = PIECE_ROWS) -> Iterator[pd.DataFrame]:
    """Frames cut into pieces of at most ``rows`` rows, in order."""
    for frame in frames:
        for start in range(0, len(frame), rows):
            yield frame.iloc[start : start + rows]


def ingest(
    frames: Iterable[pd.DataFrame],
    ledger: Ledger,
    influx: InfluxStore | None = None,
    *,
    piece_rows: int = PIECE_ROWS,
    depth: int = DEPTH,
    progress: Progress | None = None,
) -> IngestResult:
    """Append ``frames`` to the ledger and, when ``influx`` is given, write every stored
    event of them as a raw point (``growth_events``), the stages overlapped."""
    stages = ("source", "validate", "ledger", "encode", "influx")
    result = IngestResult(busy=dict.fromkeys(stages, 0.0), cpu=dict.fromkeys(stages, 0.0))
    failed = threading.Event()
    errors: dict[str, BaseException] = {}
    to_validate: queue.Queue[Any] = queue.Queue(maxsize=depth)
    to_ledger: queue.Queue[Any] = queue.Queue(maxsize=depth)
    to_encode: queue.Queue[Any] = queue.Queue(maxsize=depth)
    to_post: queue.Queue[Any] = queue.Queue(maxsize=depth)

    def put(q: queue.Queue[Any], item: Any) -> None:
        while True:
            try:
                q.put(item, timeout=0.1)
                return
            except queue.Full:
                if failed.is_set():
                    raise _Stop from None

    class _Timed:
        """Adds the wall and thread-CPU seconds of a ``with`` block to a stage's figures."""

        def __init__(self, stage: str) -> None:
            self.stage = stage

        def __enter__(self) -> None:
            self.wall, self.cpu = time.perf_counter(), time.thread_time()

        def __exit__(self, *exc: object) -> None:
            result.busy[self.stage] += time.perf_counter() - self.wall
            result.cpu[self.stage] += time.thread_time() - self.cpu

    def validate_stage() -> None:
        timed = _Timed("validate")
        try:
            while (piece := to_validate.get()) is not _END:
                with timed:
                    checked = ledger.prepare(piece)
                put(to_ledger, checked)
        except _Stop:
            return
        except BaseException as exc:
            errors["ledger"] = exc  # a frame the ledger cannot take: stop at once
            failed.set()
            return
        put(to_ledger, _END)

    def ledger_stage() -> None:
        timed = _Timed("ledger")
        wanted = POINT_COLUMNS if influx is not None else False
        try:
            while (piece := to_ledger.get()) is not _END:
                with timed:
                    appended = ledger.append(piece, read_back=wanted)
                result.received += appended.received
                result.inserted += appended.inserted
                result.duplicates += appended.duplicates
                result.rejected += len(appended.rejected)
                if progress:
                    progress("ledger", appended.received)
                if influx is not None:
                    put(to_encode, appended)  # made a frame by the encoder (``stored``)
        except _Stop:
            return
        except BaseException as exc:
            errors["ledger"] = exc
            failed.set()
            return
        if influx is not None:
            put(to_encode, _END)

    def encode_stage() -> None:
        assert influx is not None
        timed = _Timed("encode")
        try:
            while (appended := to_encode.get()) is not _END:
                if "influx" in errors:
                    continue  # keep draining so the ledger never blocks
                with timed:
                    try:
                        stored = appended.stored
                        if stored is None or stored.empty:
                            continue
                        bodies = influx.encode(event_points(stored))
                    except Exception as exc:  # raised after the ledger has every event
                        errors["influx"] = exc
                        continue
                put(to_post, (bodies, len(stored)))
        except _Stop:
            return
        put(to_post, _END)

    def post_stage() -> None:
        assert influx is not None
        timed = _Timed("influx")
        while (item := to_post.get()) is not _END:
            bodies, events = item
            if "influx" in errors:
                continue  # keep draining so the encoder never blocks
            with timed:
                try:
                    result.influx += influx.send(bodies)
                except Exception as exc:  # raised after the ledger has every event
                    errors["influx"] = exc
            if progress:
                progress("influx", events)

    consumers = [(to_validate, validate_stage, "ingest-validate"),
                 (to_ledger, ledger_stage, "ingest-ledger")]  # fmt: skip
    if influx is not None:
        consumers.append((to_encode, encode_stage, "ingest-encode"))
        consumers.append((to_post, post_stage, "ingest-influx"))
    threads = [threading.Thread(target=fn, name=name, daemon=True) for _, fn, name in consumers]
    for thread in threads:
        thread.start()
    timed = _Timed("source")
    source_error: Exception | None = None
    try:
        source = iter(pieces(frames, piece_rows))
        while True:
            try:
                with timed:
                    piece = next(source, None)
            except Exception as exc:  # what came before is stored, then this is raised
                source_error = exc
                piece = None
            if piece is None:
                break
            put(to_validate, piece)
        put(to_validate, _END)
    except _Stop:
        pass
    except BaseException:
        failed.set()
        raise
    finally:
        if failed.is_set():
            for (q, _, _), thread in zip(consumers, threads, strict=True):
                _unblock(q, thread)
        for thread in threads:
            thread.join()
    if "ledger" in errors:
        raise errors["ledger"]
    if source_error is not None:
        raise source_error
    if "influx" in errors:
        raise errors["influx"]
    return result


def _unblock(q: queue.Queue[Any], consumer: threading.Thread) -> None:
    """Tell a consumer to finish once it has drained what is queued (if it still runs)."""
    while consumer.is_alive():
        try:
            q.put(_END, timeout=0.1)
            return
        except queue.Full:
            continue
