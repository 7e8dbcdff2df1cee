"""The metrics engine: metric families over the ledger, full or incremental, into stores.

``compute`` is the pure entry point (an event frame in, metric frames out) that the demo,
the archive replay and the tests use. ``MetricsEngine`` runs the same functions over a
``Ledger``:

* ``recompute(since, until)`` reads each family's event types and rewrites every bucket in
  the range;
* ``update()`` reads what arrived after the last processed ``seq`` (one small SQL
  aggregate), works out per family the earliest bucket those events can change (a payment
  touches its day; an active_use event the next 30 days of MAU; an activation the signup
  cohorts of the N days before it; a subscription event every later day of MRR), reads only
  the input that those buckets depend on, and writes only those buckets (plus every
  product's new days when the ledger's horizon moved). Because the functions are the same
  and stores overwrite by (measurement, tags, time), the result equals a full recompute,
  which the property tests check on random streams.

Each family is one object in ``growthwatch.metrics.families`` (its event types, columns,
measurements, compute function and how far back an event reaches); the engine is a loop
over them. Families read only their own event types: the 10M-event full recompute never
holds the whole ledger in memory at once, and a family whose types did not change is
skipped.
"""

from __future__ import annotations

import dataclasses
import gc
import json
import logging
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import pandas as pd

from growthwatch.metrics import families as registry
from growthwatch.metrics import family_state
from growthwatch.metrics._frame import PORTFOLIO, local_floor_at
from growthwatch.metrics.families.base import Family, Frames, Scope
from growthwatch.metrics.reads import LedgerView, read_events
from growthwatch.metrics.schema import MEASUREMENTS, bucket_floor, to_batch
from growthwatch.metrics.settings import MetricsSettings
from growthwatch.metrics.touched import event_count, max_seq
from growthwatch.points import PointBatch
from growthwatch.stores.files import write_private
from growthwatch.stores.interfaces import SeriesDeleter
from growthwatch.stores.ledger import Ledger

__all__ = ["STATE_FILE", "EngineState", "MetricsEngine", "RunResult", "Store", "compute",
           "metric_batches", "read_events", "to_batches"]  # fmt: skip

log = logging.getLogger(__name__)
# The engine's state file in a data directory: ``serve`` and ``growthwatch metrics`` share
# it, so either one continues incrementally from where the other stopped.
STATE_FILE = "metrics-state.json"


# an update checkpoints the ledger only when what DuckDB cannot evict is over 1/LIVE_FULL
# of its share, and leaves it to ``MetricsEngine.release`` over 1/TIGHT; a full run
# checkpoints over 1/TIGHT after each family (``MetricsEngine._release``)
LIVE_FULL = 2
TIGHT = 8


class Store(Protocol):
    def write(self, data: Any) -> Any: ...


# -- the pure part -------------------------------------------------------------------------


def compute(
    events: pd.DataFrame, settings: MetricsSettings, until: pd.Timestamp | None = None
) -> Frames:
    """Every metric of every family from one event frame (pure; the demo's entry point).

    ``until`` extends the day grids (MRR, DAU...) to that instant; by default they end with
    the last event of the frame.
    """
    if until is None and not events.empty:
        until = events["ts"].max()
    out: Frames = {}
    for family in registry.load():
        chosen = events[events["type"].isin(list(family.types(settings)))]
        for name, frame in family.compute(chosen, Scope(settings, until)).items():
            out[name] = pd.concat([out[name], frame]) if name in out else frame
    return out


def to_batches(frames: Mapping[str, pd.DataFrame]) -> list[PointBatch]:
    """Metric frames to point batches in the documented schema (empty frames skipped)."""
    return [to_batch(m.name, frames[m.name]) for m in MEASUREMENTS
            if m.name in frames and not frames[m.name].empty]  # fmt: skip


def metric_batches(
    events: pd.DataFrame, settings: MetricsSettings | None = None
) -> list[PointBatch]:
    """``compute`` then ``to_batches``: the one call the demo pipeline needs."""
    return to_batches(compute(events, settings or MetricsSettings()))


# -- the ledger-driven part ----------------------------------------------------------------


@dataclass
class Deferred:
    """A family's rewrite put off to the next update that is not live: by a live update
    (see ``Family.live``) or because the family failed (``RunResult.errors``). From
    ``start`` (None: all history), of ``products`` (``*``: all), over the events after
    ``seq``."""

    start: pd.Timestamp | None
    products: set[str]
    seq: int

    def merged(self, start: pd.Timestamp | None, products: set[str]) -> Deferred:
        return Deferred(_earliest(self.start, start), self.products | products, self.seq)


def _earliest(a: pd.Timestamp | None, b: pd.Timestamp | None) -> pd.Timestamp | None:
    """The earlier rewrite start (None, all history, is the earliest)."""
    return None if a is None or b is None else min(a, b)


@dataclass(frozen=True)
class Chunk:
    """One piece of a family's run (``MetricsEngine._chunks``): the ledger it sees (before
    ``view.end``), the bucket it rewrites from, the horizon its day grids run to, and
    whether it is the first piece (the one whose rewrite range is deleted up front)."""

    view: LedgerView
    start: pd.Timestamp | None
    horizon: pd.Timestamp
    first: bool


@dataclass
class EngineState:
    """What an incremental consumer remembers: the last ledger ``seq`` processed, the
    horizon (latest event time) the day grids were extended to, and the rewrites that live
    updates deferred."""

    last_seq: int = 0
    horizon: pd.Timestamp | None = None
    failing: dict[str, str] = field(default_factory=dict)  # product -> why it is left out
    deferred: dict[str, Deferred] = field(default_factory=dict)  # family -> its rewrite
    # the currencies the exchange-rate table knew when ``failing`` was checked over the
    # ledger up to ``last_seq`` (None: never): a cold engine with the same table checks
    # only the events after it
    checked: list[str] | None = None

    def to_json(self) -> str:
        return json.dumps(
            {"last_seq": self.last_seq,
             "horizon": None if self.horizon is None else self.horizon.isoformat(),
             "failing": self.failing,
             "checked": self.checked,
             "deferred": {name: {"start": None if d.start is None else d.start.isoformat(),
                                 "products": sorted(d.products), "seq": d.seq}
                          for name, d in self.deferred.items()}}
        )  # fmt: skip

    @classmethod
    def from_json(cls, text: str) -> EngineState:
        raw = json.loads(text)
        horizon = raw.get("horizon")
        deferred = {name: Deferred(None if d["start"] is None else pd.Timestamp(d["start"]),
                                   set(d["products"]), int(d["seq"]))
                    for name, d in (raw.get("deferred") or {}).items()}  # fmt: skip
        checked = raw.get("checked")
        return cls(int(raw.get("last_seq", 0)), None if horizon is None else pd.Timestamp(horizon),
                   dict(raw.get("failing") or {}), deferred,
                   None if checked is None else [str(c) for c in checked])  # fmt: skip


@dataclass
class RunResult:
    mode: str  # "full", "incremental" or "noop"
    events: int = 0  # new events seen (incremental) or ledger events (full)
    points: int = 0
    families: dict[str, str] = field(default_factory=dict)  # family -> buckets from
    timings: dict[str, float] = field(default_factory=dict)  # family -> seconds
    seconds: float = 0.0
    # subscription events whose mrr_before is not their subscription's last state (the
    # latest observation won); counted over the history the run recomputed
    chain_breaks: int = 0
    # products left out because their events cannot be valued (a currency without an
    # exchange rate): product -> reason. Every other product's metrics go on.
    failing: dict[str, str] = field(default_factory=dict)
    deferred: list[str] = field(default_factory=list)  # families put off to the next update
    # family -> what stopped it (an exception): its rewrite is deferred and retried by the
    # next update that is not live; every other family's series were written
    errors: dict[str, str] = field(default_factory=dict)
    # family -> the time chunks it streamed in (``metrics.memory_limit_mb``); 1: one piece
    chunks: dict[str, int] = field(default_factory=dict)


class MetricsEngine:
    """Runs the metric families over a ledger and writes their batches to stores."""

    chunk_days = 7  # the fewest new days of ledger one time chunk takes (``_chunks``)

    def __init__(
        self,
        ledger: Ledger,
        settings: MetricsSettings | None = None,
        *,
        state_path: str | Path | None = None,
    ) -> None:
        self.ledger = ledger
        self.settings = settings or MetricsSettings()
        self.state_path = Path(state_path) if state_path is not None else None
        self.failing: dict[str, str] = {}
        self._checked = False  # the whole ledger's currencies checked once by this engine
        self._firsts: dict[Any, tuple[int, pd.DataFrame]] = {}  # ``LedgerView.firsts``
        self._firsts_loaded = False  # the persisted copy read (``_view``)
        self._firsts_throttle = family_state.Throttle()
        self._firsts_unsaved = False  # ``_firsts`` newer than the ledger file's copy
        # an update left the share over 1/TIGHT resident and its checkpoint waits for
        # ``release`` (an idle caller, or the next update's start)
        self.release_due = False
        self.state = self._load_state()
        # One instance of each family per engine: a family may keep state between runs
        # (the subscription family's MRR state, so a webhook costs one product's history).
        self.families: tuple[Family, ...] = registry.load()
        if self.settings.duckdb_memory_mb is not None:
            # the ledger's DuckDB (one limit for the database: its aggregates spill to
            # ``<ledger>.tmp`` beyond it) gets its share of ``metrics.memory_limit_mb``.
            # Without insertion order a CREATE TABLE AS (the engagement state's rebuild)
            # streams and spills instead of running out of memory at 100M events; every
            # read that needs an order says ORDER BY.
            cursor = ledger.connection
            try:
                cursor.execute(f"SET memory_limit = '{int(self.settings.duckdb_memory_mb)}MB'")
                cursor.execute("SET preserve_insertion_order = false")
            finally:
                cursor.close()

    def _view(self) -> LedgerView:
        """The ledger as this run sees it: without the failing products."""
        view = LedgerView(self.ledger, self.settings, sorted(self.failing), self.state.last_seq,
                          firsts=self._firsts)  # fmt: skip
        if not self._firsts_loaded:
            self._firsts_loaded = True
            self._firsts.update(_load_firsts(view))
        return view

    def _prime_firsts(self, horizon: pd.Timestamp) -> None:
        """Aggregate the first days every family's updates ask for (a full run reads the
        whole history instead, so it never asked): the next update, warm or cold, then
        adds only its new events to them."""
        view = self._view()
        for family in self.families:
            try:
                family.first_days(view, horizon)
            except Exception as exc:  # only the next update's speed depends on it
                log.warning("metrics %s: first days not aggregated ahead (%s)", family.name, exc)

    def _keep_firsts(self, *, built: bool) -> bool:
        """Persist the ``first_events`` aggregates (throttled, as a family's totals are),
        so a cold engine (the next ``growthwatch metrics update``) aggregates only the
        events after them instead of scanning the history for each grid's first day."""
        if not self._firsts or not self._firsts_throttle.due(built):
            return False
        self._firsts_unsaved = False
        view = self._view()
        top = max(seq for seq, _frame in self._firsts.values())
        family_state.save(view, _FIRSTS, family_state.Saved(
            top, event_count(view, top), "", dict(self._firsts)))  # fmt: skip
        return True

    def _check_valuable(self, after_seq: int | None = None) -> dict[str, str]:
        """Products with money in a currency the exchange-rate table cannot convert.

        One event in such a currency used to raise ``FxError`` for the whole portfolio on
        every run, so one product's missing rate froze every product's metrics. Now that
        product is left out (and said so: logs, ``RunResult.failing``, the state file that
        ``growthwatch status`` reads) and the others are computed. Once the rate is in the
        config, ``growthwatch metrics recompute`` brings the product back.
        """
        known = sorted(self.settings.fx.currencies())
        # A warm engine checks only the events after ``after_seq`` (the failing products it
        # knew stay failing until a recompute): the whole ledger once per engine, not a
        # scan of all history on every webhook.
        newer = "" if after_seq is None else " AND seq > ?"
        cursor = self.ledger.connection
        try:
            rows = cursor.execute(
                "SELECT product, string_agg(DISTINCT currency, ', ' ORDER BY currency) FROM events "
                f"WHERE currency IS NOT NULL AND currency NOT IN (SELECT unnest(?)){newer} "
                "GROUP BY product ORDER BY product", [known, *([] if after_seq is None else [after_seq])],
            ).fetchall()  # fmt: skip
        finally:
            cursor.close()
        failing = {
            product: f"no exchange rate from {codes} to {self.settings.fx.reporting}: add "
            f"reporting.fx_rates.{codes.split(', ')[0]} to the configuration, then run "
            "`growthwatch metrics recompute`"
            for product, codes in rows
        }
        for product, reason in failing.items():
            if product not in self.failing:
                log.error("metrics of %s are not computed: %s", product, reason)
        if after_seq is not None:
            failing = {**self.failing, **failing}
        self._checked = True
        return failing

    def _load_state(self) -> EngineState:
        if self.state_path is not None and self.state_path.exists():
            return EngineState.from_json(self.state_path.read_text())
        return EngineState()

    def _save_state(self) -> None:
        self.state.failing = dict(self.failing)
        self.state.checked = sorted(self.settings.fx.currencies()) if self._checked else None
        if self.state_path is not None:
            self.state_path.parent.mkdir(parents=True, exist_ok=True)
            tmp = self.state_path.with_suffix(".tmp")
            write_private(tmp, self.state.to_json().encode())
            tmp.replace(self.state_path)

    def mark_computed(self) -> None:
        """Record that the stores hold a full computation of the ledger as it is now.

        For callers that computed every metric in one pure pass (``compute``) instead of
        through ``recompute`` (the demo): the next ``update`` then continues from here
        instead of recomputing everything.
        """
        summary = self._ledger_summary(None)
        if summary.empty:
            return
        self.state = EngineState(int(summary["seq"].max()), summary["last"].max())
        self._save_state()

    def _ledger_summary(self, after_seq: int | None) -> pd.DataFrame:
        sql = (
            "SELECT product, type, min(ts) AS first, max(ts) AS last, max(seq) AS seq, "
            "count(*) AS n FROM events"
        )
        params: list[Any] = []
        if after_seq is not None:
            sql += " WHERE seq > ?"
            params.append(after_seq)
        cursor = self.ledger.connection
        try:
            frame = cursor.execute(sql + " GROUP BY ALL", params).df()
        finally:
            cursor.close()
        for col in ("first", "last"):
            frame[col] = pd.to_datetime(frame[col], utc=True)
        return frame

    # -- runs ------------------------------------------------------------------------------

    def recompute(
        self,
        stores: Sequence[Store],
        *,
        since: pd.Timestamp | None = None,
        until: pd.Timestamp | None = None,
    ) -> RunResult:
        """Rewrite every bucket in [since, until) (all history by default)."""
        started = time.perf_counter()
        self._release_due()
        self.failing = self._check_valuable()
        self._firsts.clear()  # a full run reads everything afresh (not the persisted copy)
        self._firsts_loaded = True
        summary = self._ledger_summary(None)
        result = RunResult("full", events=self.ledger.count(), failing=dict(self.failing))
        if summary.empty:
            return result
        horizon = summary["last"].max()
        touched = {f.name: since for f in self.families}
        result.points = self._run(stores, touched, None, horizon, since, until, result)
        # a family that failed is rewritten again, over the same range, by the next update
        deferred = {name: Deferred(since, {"*"}, 0) for name in result.errors}
        self.state = EngineState(int(summary["seq"].max()), horizon, deferred=deferred)
        self._save_state()
        self._prime_firsts(horizon)
        self._keep_firsts(built=True)
        result.deferred = sorted(deferred)
        result.seconds = time.perf_counter() - started
        return result

    def update(self, stores: Sequence[Store], *, live: bool = False) -> RunResult:
        """Process the events appended since the last run; only the buckets they touch.

        ``live`` (the path a webhook takes in ``serve``) puts off the families that are
        not ``live`` (too costly per event: segments), remembering what they must rewrite;
        the next update that is not live (``serve`` runs one as soon as the events pause,
        ``growthwatch metrics update`` always) catches them up. A family that fails (an
        exception: ``RunResult.errors``) is put off the same way, and the others go on.
        """
        started = time.perf_counter()
        if not live:  # a webhook's few folds fit beside it (``_release``)
            self._release_due()
        if not self._checked and self.state.checked == sorted(self.settings.fx.currencies()):
            # a cold engine whose last run checked the ledger up to ``last_seq`` with the
            # same exchange-rate table: only the newer events' currencies are new
            self.failing, self._checked = dict(self.state.failing), True
        self.failing = self._check_valuable(self.state.last_seq if self._checked else None)
        if self.state.last_seq == 0 and self.state.horizon is None:
            return self.recompute(stores)
        new = self._ledger_summary(self.state.last_seq)
        result = RunResult("incremental", events=0, failing=dict(self.failing))
        pending = dict(self.state.deferred)
        if new.empty and (live or not pending):
            result.mode = "noop"
            return result
        prev = self.state.horizon
        horizon = prev if new.empty else (
            max(new["last"].max(), prev) if prev is not None else new["last"].max())
        assert horizon is not None
        tz = self.settings.timezone
        grew = prev is None or local_floor_at(horizon, "D", tz) > local_floor_at(prev, "D", tz)
        touched: dict[str, pd.Timestamp | None] = {}
        products: dict[str, set[str]] = {}
        seqs: dict[str, int] = {}
        view = self._view()
        for family in self.families:
            rows = new[new["type"].isin(list(family.types(self.settings)))]
            start = None if rows.empty else family.touch_start(rows["first"].min(), view)
            if family.grid and grew and prev is not None:
                grid_from = family.grid_start(prev, self.settings)
                start = grid_from if start is None else min(start, grid_from)
            if start is None:
                continue
            chosen = {"*"} if grew and family.grid else set(rows["product"])
            if live and not family.live:
                earlier = pending.get(family.name)
                pending[family.name] = (Deferred(start, chosen, self.state.last_seq)
                                        if earlier is None else earlier.merged(start, chosen))  # fmt: skip
                continue
            touched[family.name] = start
            products[family.name] = chosen
        if not live:  # catch up what live updates put off, and what failed before
            for name, later in pending.items():
                touched[name] = (_earliest(touched[name], later.start) if name in touched
                                 else later.start)  # fmt: skip
                products[name] = products.get(name, set()) | later.products
                seqs[name] = later.seq
            pending = {}
        result.points = self._run(stores, touched, products, horizon, None, None, result, seqs,
                                  update=True)  # fmt: skip
        for name in result.errors:  # retried by the next update that is not live
            earlier = pending.get(name)
            pending[name] = (
                Deferred(touched[name], products[name], seqs.get(name, self.state.last_seq))
                if earlier is None else earlier.merged(touched[name], products[name]))  # fmt: skip
        result.events = int(new["n"].sum())
        last_seq = self.state.last_seq if new.empty else int(new["seq"].max())
        self.state = EngineState(last_seq, horizon, deferred=pending)
        self._save_state()
        self._firsts_unsaved = True  # written by ``release`` (idle time)
        result.deferred = sorted(pending)
        result.seconds = time.perf_counter() - started
        return result

    def _run(
        self,
        stores: Sequence[Store],
        touched: Mapping[str, pd.Timestamp | None],
        products: Mapping[str, set[str]] | None,
        horizon: pd.Timestamp,
        since: pd.Timestamp | None,
        until: pd.Timestamp | None,
        result: RunResult,
        seqs: Mapping[str, int] | None = None,
        *,
        update: bool = False,
    ) -> int:
        """Run the ``touched`` families in turn, releasing the share between them
        (``_release``: a full run at an eighth resident, an ``update`` only when it is
        over half full or a family failed, else leaving it to ``release``)."""
        view = self._view()
        by_name = {f.name: f for f in self.families}
        points = 0
        for name, start in touched.items():
            family = by_name[name]
            began = time.perf_counter()
            keep = None if products is None or "*" in products[name] else products[name]
            # a family caught up after live updates compares with the ledger it last saw
            seen = view if seqs is None or name not in seqs else dataclasses.replace(
                view, last_seq=seqs[name])
            written, first = 0, None
            try:
                written, first = self._run_family(stores, family, seen, start, keep, horizon,
                                                  since, until, result)  # fmt: skip
            except Exception as exc:  # one family's failure stops no other
                # (DuckDB out of memory, a bug): the caller defers its rewrite to the next
                # update, which runs it again; what it wrote so far is rewritten then
                log.exception("metrics %s failed; retried by the next update", name)
                result.errors[name] = f"{type(exc).__name__}: {exc}"
                result.timings[name] = round(time.perf_counter() - began, 3)
            # (outside the handler: its traceback, and the cursors its frames hold, are gone)
            self._release(failed=name in result.errors, defer=update)
            if name in result.errors:
                continue
            points += written
            result.families[name] = "all" if first is None else first.isoformat()
            result.timings[name] = round(time.perf_counter() - began, 3)
            log.info("metrics %s: %d points from %s", name, written, first)
        return points

    def release(self, *, force: bool = False) -> bool:
        """What updates leave to idle time: write the kept totals and first-day aggregates
        they changed to the ledger file (``family_state.Kept.flush``: at most every
        ``EVERY_SECONDS``, or now with ``force``), then the checkpoint the last update put
        off (``_release_due``); True when anything was done. ``serve`` calls it once the
        events pause, ``growthwatch metrics update`` before it exits.

        Why the writes wait: they are for a restart (its first update then folds only
        the events after the copies), and they cost up to a third of an update.
        """
        view = self._view()
        wrote = False
        for family in self.families:
            if family.kept is not None:
                try:
                    wrote = family.kept.flush(view, force=force) or wrote
                except Exception as exc:  # only a restart's speed depends on it
                    log.warning("metrics %s: totals not persisted (%s)", family.name, exc)
        if self._firsts_unsaved:
            wrote = self._keep_firsts(built=force) or wrote
        return self._release_due() or wrote

    def _release_due(self) -> bool:
        """Run the checkpoint the last update put off (``release_due``), if the share is
        still over 1/TIGHT resident; True when one was due.

        Why: an update leaves a part-full share to its caller's idle time (``serve``
        between bursts of webhooks: ``_release``), and the next update that is not live,
        and every recompute, run it first if no one has, so their families still find the
        share released. ``growthwatch metrics update`` runs it before it exits."""
        due, self.release_due = self.release_due, False
        if due:
            self._release(failed=False)
        return due

    def _release(self, *, failed: bool, defer: bool = False) -> None:
        """Give the next family the ledger DuckDB's whole share back: after a failure, or
        when what a family left resident (``ART_INDEX``, ``IN_MEMORY_TABLE``: a state
        table's fresh or modified index, committed rows not yet in the file) is over an
        eighth of the share (``TIGHT``), checkpoint the ledger (``Ledger.checkpoint``),
        which makes it evictable. The check is one ``duckdb_memory()`` read (0.4 ms). A
        failure first collects the cursors its traceback's frames still held (their
        temporary tables and open transactions go with them).

        Why: DuckDB keeps a fresh ART index in memory until a checkpoint, and a state
        build's own checkpoint from a cursor is refused while another transaction is open;
        at 10M events and ``memory_limit_mb`` 450 the cohort and funnel indexes held 34 of
        the 62 MiB share, and every family after them ran out of memory. So a full run
        (whose builds each need the share) releases at an eighth after every family.

        An update (``defer``: live or not) checkpoints only when the resident part is over
        half the share (``LIVE_FULL``) or a family failed; over an eighth it leaves the
        checkpoint to ``release`` (``release_due``: ``serve``'s idle time, or the next
        update that is not live, which runs it first). Why: a checkpoint writes every ART
        index a fold changed in whole, so its cost grows with the history, not with the
        events: on the 101.5M-event ledger the ones after the cohort and rollup folds (134
        and 174 MiB resident) took 1.7 and 1.2 s of a 1,000-event update, and at 10M
        events one took 0.93 s of a 1.55 s live cancellation; an update's own statements
        (folds of its few events) need little of the share.
        """
        limit = self.settings.duckdb_memory_mb
        if failed:
            gc.collect()
        elif limit is None:
            return
        else:
            resident = _resident_mib(self.ledger)
            if resident * TIGHT < limit:
                return
            if defer and resident * LIVE_FULL < limit:
                self.release_due = True
                return
        if self.ledger.checkpoint():
            self.release_due = False
        else:
            log.info("metrics: ledger checkpoint refused (a transaction is open); DuckDB's own "
                     "checkpoint will free the memory")

    def _run_family(
        self,
        stores: Sequence[Store],
        family: Family,
        view: LedgerView,
        start: pd.Timestamp | None,
        keep: set[str] | None,
        horizon: pd.Timestamp,
        since: pd.Timestamp | None,
        until: pd.Timestamp | None,
        result: RunResult,
    ) -> tuple[int, pd.Timestamp | None]:
        """One family's rewrite from ``start`` (chunk by chunk): the points it wrote and
        the bucket its rewrite started from."""
        name = family.name
        written = 0
        first = None
        for chunk in self._chunks(family, view, start, horizon):
            computed = family.run(chunk.view, chunk.start, keep, chunk.horizon)
            frames = computed.frames
            rewrite = computed.start if chunk.first else chunk.start
            if computed.unchanged:  # what the stores hold already
                first = rewrite if chunk.first else first
                continue
            keep_chunk = None if computed.all_products else keep
            result.chain_breaks = computed.counters.get("chain_breaks", result.chain_breaks)
            del computed
            lower = rewrite if since is None else (
                since if rewrite is None else max(since, rewrite))
            ends = [e for e in (until, chunk.view.end) if e is not None]
            upper = min(ends) if ends else None
            batches = []
            for measurement, frame in frames.items():
                chosen = _select(frame, measurement, lower, upper, keep_chunk,
                                 self.settings.timezone)  # fmt: skip
                if not chosen.empty:
                    batches.append(to_batch(measurement, chosen))
            if chunk.first:  # the whole range this run rewrites, removed once up front
                first = lower
                full = since is None and until is None and lower is None
                for store in stores:
                    if isinstance(store, SeriesDeleter):
                        for measurement in family.measurements:
                            if full or measurement in family.shrinking:
                                self._delete(store, measurement, family, lower, until,
                                             keep_chunk)  # fmt: skip
            for store in stores:
                store.write(batches)
            del frames
            written += sum(len(b) for b in batches)
            result.chunks[name] = result.chunks.get(name, 0) + 1
        return written, first

    def _chunks(
        self, family: Family, view: LedgerView, start: pd.Timestamp | None, horizon: pd.Timestamp
    ) -> Iterator[Chunk]:
        """The run of ``family`` from ``start`` as time chunks of at most about
        ``settings.chunk_events`` events each, so memory stays flat whatever the history.

        Only a family whose input can start late (``read_start`` of a time is a time)
        streams; the others run in one piece (they bound their own memory). The chunks
        replay the history as incremental updates would see it arrive: chunk *i + 1* sees
        the ledger before its end, and rewrites from the first bucket its events can change
        (``touch_start``, and ``grid_start`` of the previous chunk's horizon for a grid
        family), reading from that bucket's ``read_start``. Every bucket is last written by
        a chunk that had all the input it depends on, which is what the property tests
        check of incremental updates; the writes of earlier chunks are overwritten.
        """
        settings = self.settings
        probe = family.read_start(horizon, settings)
        if probe is None or not family.types(settings):
            yield Chunk(view, start, horizon, first=True)
            return
        held = family.held(settings)
        if not held:
            yield Chunk(view, start, horizon, first=True)
            return
        read_from = family.read_start(start, settings)
        counts = view.day_counts(held, read_from)
        limit = settings.chunk_events
        if int(counts.sum()) <= limit:
            yield Chunk(view, start, horizon, first=True)
            return
        days = counts.index
        total = counts.cumsum().to_numpy()
        # a chunk reads days [lo, hi): the days it re-reads before the previous chunk's end
        # (its input's look-back) and the new ones; at least one new day per chunk
        lo, done, chunk_start, first = 0, 0, start, True
        while True:
            base = total[lo - 1] if lo else 0
            # a chunk takes at least ``chunk_days`` new days, so that a look-back longer
            # than the limit (lifecycle re-reads weeks) is re-read once a week, not daily
            hi = max(min(done + self.chunk_days, len(days)),
                     int(np.searchsorted(total, base + limit, side="right")))  # fmt: skip
            if hi >= len(days):
                yield Chunk(view, chunk_start, horizon, first=first)
                return
            end = days[hi]
            seen = dataclasses.replace(view, end=end)
            yield Chunk(seen, chunk_start, end, first=first)
            first, done = False, hi
            chunk_start = family.touch_start(end, seen)  # the events from ``end`` are new
            if family.grid:
                grid_from = family.grid_start(end, settings)
                chunk_start = grid_from if chunk_start is None else min(chunk_start, grid_from)
            if start is not None and chunk_start is not None:
                chunk_start = max(chunk_start, start)
            read_next = family.read_start(chunk_start, settings)
            lo = 0 if read_next is None else min(done, int(np.searchsorted(days, read_next)))

    def _delete(
        self,
        store: SeriesDeleter,
        name: str,
        family: Family,
        lower: pd.Timestamp | None,
        until: pd.Timestamp | None,
        keep: set[str] | None,
    ) -> None:
        """Remove what this run rewrites of ``name`` (its range, products and, for the
        shared cohort measurement, basis), so rows that stopped existing do not survive."""
        tags: dict[str, str | list[str]] = dict(family.owns.get(name, {}))
        if keep is not None:
            tags["product"] = sorted({*keep, PORTFOLIO})
        start = None if lower is None else bucket_floor(name, lower, self.settings.timezone)
        try:
            store.delete(name, tags=tags, start=start, end=until)
        except Exception as exc:  # InfluxDB down or refusing: the write goes on (spooled)
            log.warning("%s: could not delete the range being rewritten (%s); rows that "
                        "stopped existing remain until the next recompute", name, exc)  # fmt: skip

def _period_start(frame: pd.DataFrame, name: str) -> pd.Series:
    """The bucket start that decides whether a row is in the updated range."""
    if name == "cohort_retention":
        return frame["period"]
    return frame["time"]


def _select(
    frame: pd.DataFrame,
    name: str,
    lower: pd.Timestamp | None,
    until: pd.Timestamp | None,
    products: set[str] | None,
    tz: str = "UTC",
) -> pd.DataFrame:
    """The rows a run writes: cells from ``lower``'s bucket on (by the cell's own month
    for cohorts), before ``until`` by their time (every row a delete of [lower, until)
    removes is rewritten), of ``products`` and the portfolio."""
    if frame.empty:
        return frame
    keep = np.ones(len(frame), dtype=bool)
    when = _period_start(frame, name)
    if lower is not None:
        floor = bucket_floor(name, lower, tz)
        keep &= (when >= floor).to_numpy()
    if until is not None:
        keep &= (frame["time"] < until).to_numpy()
    if products is not None:
        keep &= frame["product"].isin([*products, PORTFOLIO]).to_numpy()
    return frame if keep.all() else frame[keep]  # (no copy when every row is written)


_FIRSTS = "first_events"  # ``family_state``'s name for the engine's ``first_events`` copy


def _load_firsts(view: LedgerView) -> dict[Any, tuple[int, pd.DataFrame]]:
    """The persisted ``first_events`` aggregates, when no event at or below the ``seq``
    they cover was removed since (a trim: the count differs); else nothing (they are
    aggregated afresh)."""
    saved = family_state.load(view, _FIRSTS)
    if saved is None or not isinstance(saved.totals, dict):
        return {}
    if saved.seq > max_seq(view) or event_count(view, saved.seq) != saved.count:
        return {}
    return saved.totals


def _resident_mib(ledger: Ledger) -> float:
    """What the ledger's DuckDB holds that it cannot evict before a checkpoint (MiB)."""
    cursor = ledger.connection
    try:
        row = cursor.execute("SELECT coalesce(sum(memory_usage_bytes), 0) FROM duckdb_memory() "
                             "WHERE tag IN ('ART_INDEX', 'IN_MEMORY_TABLE')").fetchone()  # fmt: skip
    finally:
        cursor.close()
    return 0.0 if row is None else int(row[0]) / 2**20
