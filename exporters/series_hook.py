"""What happens right after events reach the ledger: the live series.

The architecture wants a cancellation visible in the series within seconds of the webhook.
The hook does two things:

1. it hands each new event to a background writer that sends it as a raw point
   (measurement ``growth_events``, see ``growthwatch.stores.event_points``) to InfluxDB:
   the webhook worker and the ledger never wait on InfluxDB (stopped, slow, down: the
   writer retries and spools, the ledger keeps pace);
2. it wakes a background thread that runs ``MetricsEngine.update`` (which recomputes
   only the buckets the new events touch) into the configured stores. Wake-ups coalesce:
   a burst of 1,000 webhooks costs a handful of updates, not 1,000, and the webhook
   worker never waits for a metric computation. Once the events pause, the same thread
   runs what the last updates left for idle time (``MetricsEngine.release``: the kept
   totals' copy in the ledger file, the ledger checkpoint), off the update's and the
   webhooks' path, and ``close`` writes what is still unsaved.

Both steps overwrite by point identity, so running them twice changes nothing. The
receiver and the scheduler take the hook as a plain callable (``SeriesHook``).

Listeners (``add_listener``) are how the components downstream of the series (the detector,
Grafana Live) hear of fresh points without polling: after each update every listener is
called with the batches that update wrote. A failing listener is logged and never stops the
series or the other listeners.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable, Sequence

import pandas as pd

from exporters import telemetry
from growthwatch.metrics.engine import MetricsEngine, Store
from growthwatch.points import PointBatch
from growthwatch.stores.event_points import event_points
from growthwatch.stores.influx import InfluxStore

log = logging.getLogger(__name__)
SeriesListener = Callable[[list[PointBatch]], None]


class _Recorder:
    """A store that keeps what the engine wrote in one update, for the listeners."""

    def __init__(self) -> None:
        self.batches: list[PointBatch] = []

    def write(self, data: PointBatch | list[PointBatch]) -> int:
        items = [data] if isinstance(data, PointBatch) else list(data)
        self.batches.extend(items)
        return sum(len(b) for b in items)


class LiveSeriesHook:
    def __init__(
        self,
        *,
        influx: InfluxStore | None = None,
        engine: MetricsEngine | None = None,
        stores: Sequence[Store] = (),
        raw_events: bool = True,
        on_update: Callable[[int], None] | None = None,
        min_interval: float = 0.05,
    ) -> None:
        self.influx = influx
        self.engine = engine
        self.stores = list(stores)
        self.raw_events = raw_events
        self.on_update = on_update  # called with the ledger seq an update has covered
        self.listeners: list[SeriesListener] = []
        # Pause between updates under a steady flow, so the engine (pandas, holding the
        # GIL) leaves the webhook worker room; a lone event still updates at once. 50 ms
        # keeps a paced 25 webhooks/s under a second to the series at p95 (250 ms did not:
        # the pause adds to the wait of every event that arrives during an update).
        self.min_interval = min_interval
        # How long the events must pause before the deferred families catch up.
        self.catch_up_after = 0.2
        self.catch_up_retry = 10.0  # after a failed catch-up (new events still go at once)
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._idle = threading.Event()
        self._idle.set()
        self._thread: threading.Thread | None = None
        self._raw: queue.Queue[pd.DataFrame | None] = queue.Queue()
        self._raw_thread: threading.Thread | None = None
        if influx is not None and raw_events:
            self._raw_thread = threading.Thread(target=self._write_raw, name="raw-events",
                                                daemon=True)  # fmt: skip
            self._raw_thread.start()
        if engine is not None:
            self._thread = threading.Thread(target=self._loop, name="series-update", daemon=True)
            self._thread.start()

    def __call__(self, events: pd.DataFrame) -> None:
        if events.empty:
            return
        if self.influx is not None and self.raw_events:
            self._raw.put(events)
        if self.engine is not None:
            self._idle.clear()
            self._wake.set()

    def _loop(self) -> None:
        assert self.engine is not None
        while not self._stop.is_set():
            # Events: a live update (the costly families deferred). No event for a
            # moment while deferred work waits: the catch-up update.
            live = self._wake.wait(timeout=self.catch_up_after if self.engine.state.deferred
                                   else 0.5)  # fmt: skip
            if not live and not self.engine.state.deferred:
                self._release_idle()
                continue
            self._wake.clear()
            recorder = _Recorder() if self.listeners else None
            try:
                stores = [*self.stores, *([recorder] if recorder else [])]
                result = self.engine.update(stores, live=live)
                log.debug("series update: %s, %d points", result.mode, result.points)
                if result.errors and not live:  # deferred again: retried, not spun on
                    self._wake.wait(self.catch_up_retry)
                telemetry.METRICS_FAILING.clear()
                for product in result.failing:
                    telemetry.METRICS_FAILING.labels(product).set(1)
                if self.on_update is not None:
                    self.on_update(self.engine.state.last_seq)
            except Exception:  # the next wake-up (or the scheduled run) catches up
                log.exception("series update failed")
                if not live:  # a failing catch-up is retried, not spun on every 0.2 s
                    self._wake.wait(self.catch_up_retry)
            if recorder is not None and recorder.batches:
                self._notify(recorder.batches)
            if self._wake.is_set():
                self._stop.wait(self.min_interval)
            elif not self.engine.state.deferred:
                self._idle.set()  # idle: nothing left to compute, deferred work included

    def _release_idle(self) -> None:
        """What the last updates left for idle time (``MetricsEngine.release``: the kept
        totals' copy, the ledger checkpoint): run once the events have paused, so neither
        the update nor the next webhook pays for it, and the next update finds DuckDB's
        share released."""
        assert self.engine is not None
        try:
            if self.engine.release():
                log.debug("series update: idle release (state copies, memory share)")
        except Exception:  # the next update that is not live releases first anyway
            log.exception("idle release failed")

    def _write_raw(self) -> None:
        """Raw event points, in arrival order, whatever has queued up as one write."""
        assert self.influx is not None
        while True:
            frames = [self._raw.get()]
            while True:
                try:
                    frames.append(self._raw.get_nowait())
                except queue.Empty:
                    break
            todo = [f for f in frames if f is not None]
            try:
                if todo:
                    self.influx.write(event_points(pd.concat(todo, ignore_index=True)))
            except Exception:  # a 4xx (our bug) is logged; the series path goes on
                log.exception("raw event points: write of %d event(s) failed",
                              sum(len(f) for f in todo))  # fmt: skip
            finally:
                for _ in frames:
                    self._raw.task_done()
            if any(f is None for f in frames):
                return

    def add_listener(self, listener: SeriesListener) -> None:
        """Call ``listener(batches)`` after every update that wrote points."""
        self.listeners.append(listener)

    def _notify(self, batches: list[PointBatch]) -> None:
        for listener in list(self.listeners):
            try:
                listener(batches)
            except Exception:
                log.exception("series listener %r failed", listener)

    def wait_idle(self, timeout: float = 30.0) -> bool:
        """Block until no update and no raw write is pending (tests, benchmark, shutdown)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if (self._idle.wait(timeout=0.05) and not self._wake.is_set()
                    and not self._raw.unfinished_tasks):  # fmt: skip
                return True
        return False

    def close(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
        if self._raw_thread is not None:
            self._raw.put(None)
            self._raw_thread.join(timeout=30)
        if self.engine is not None and (self._thread is None or not self._thread.is_alive()):
            try:  # what the updates left unsaved, so the next start folds from here
                self.engine.release(force=True)
            except Exception:
                log.exception("could not persist the metrics state on close")
