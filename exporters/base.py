"""The stream contract every source follows, and the one loop that stores what they read.

Shaped like a Singer/Meltano stream: each source declares the ``schema`` of the records it
reads and its ``replication_key``, reads a time range in ``run(since, until)`` and yields
``Batch``es of growth events; ``Ingestor.sync`` appends each batch to the ledger and only
*then* moves the stream's persisted cursor, so an interrupted run re-reads what was not
yet stored (the ledger's idempotency keys turn the re-read into duplicates, never into
double counts). Every scheduled run starts ``lookback`` before the cursor, for late data.

Bad records never stop a batch: a source turns what it cannot map into a ``Rejection``
(a low-cardinality reason code plus the detail and the raw record), frames are split by
``check_frame`` inside the ledger, and both kinds are logged, counted in Prometheus and
kept in the state file's ``rejected`` table.
"""

from __future__ import annotations

import logging
import re
import threading
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any, ClassVar

import pandas as pd
import requests

from exporters import telemetry
from exporters.state import StateStore
from growthwatch import clock
from growthwatch.config import SourceConfig
from growthwatch.events import GrowthEvent
from growthwatch.retry import RetriesExhausted, Retryable, RetryPolicy
from growthwatch.stores.ledger import AppendResult, Ledger

log = logging.getLogger(__name__)

SeriesHook = Callable[[pd.DataFrame], None]
"""Called with the events (``growthwatch.frames`` layout) a batch stored, so the metric
series of the touched product/days can be recomputed; must be idempotent."""

_DURATION = re.compile(r"^([0-9]+)(s|m|h|d)$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}


def parse_duration(text: str) -> timedelta:
    """``30s``/``15m``/``6h``/``3d`` (the config schema's duration pattern)."""
    match = _DURATION.match(text.strip())
    if not match:
        raise ValueError(f"not a duration: {text!r} (expected e.g. 30s, 15m, 6h, 3d)")
    return timedelta(**{_UNITS[match.group(2)]: int(match.group(1))})


def utc(value: datetime | date | str | int | float) -> datetime:
    """Aware UTC datetime from a datetime, a date (midnight), ISO text or unix seconds."""
    if isinstance(value, datetime):
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    if isinstance(value, date):
        return datetime(value.year, value.month, value.day, tzinfo=UTC)
    if isinstance(value, int | float):
        return datetime.fromtimestamp(value, UTC)
    return utc(datetime.fromisoformat(value))


class SourceError(RuntimeError):
    """A source answered in a way retrying will not fix (bad request, bad config)."""


class SourceAuthError(SourceError):
    """The source refused our credentials; the message says which and what to check."""


class SourceUnavailable(SourceError):
    """The source kept failing (429/5xx/network) after all retries."""


def invalid_reason(field_name: str) -> str:
    """Reason code for a record that broke an event rule: ``invalid_<top-level field>``."""
    return f"invalid_{field_name.split('.')[0]}"


@dataclass(frozen=True)
class Rejection:
    """A source record that could not become a growth event."""

    reason: str  # low-cardinality code: unknown_currency, missing_id, malformed_json, ...
    detail: str
    record: str | None = None


@dataclass
class Batch:
    """Events read from a source, and what storing them durably allows.

    ``cursor`` is the replication-key value the stream has reached once these events are
    in the ledger (None: no change). ``on_commit`` runs after the ledger accepted the
    events (e.g. per-object state of out-of-order-safe sources).
    """

    events: Sequence[GrowthEvent] | pd.DataFrame
    cursor: datetime | None = None
    rejected: list[Rejection] = field(default_factory=list)
    on_commit: Callable[[], None] | None = None
    progress: float | None = None  # fraction of the requested range read so far
    # How messages name a row of ``events`` by its index label (a CSV: "file.csv:17");
    # None: "row <label>".
    locate: Callable[[Any], str] | None = None


@dataclass(frozen=True)
class DayWindow:
    """Whole UTC days [first, last] of a range, and the checkpoint reached after them."""

    first: date
    last: date
    checkpoint: Batch  # no events; cursor = end of ``last`` (capped), progress so far


def day_windows(since: datetime, until: datetime, days: int) -> Iterator[DayWindow]:
    """Split [since, until) into windows of whole UTC days (APIs that take dates)."""
    first = since.astimezone(UTC).date()
    last = (until - timedelta(microseconds=1)).astimezone(UTC).date()
    total = max((last - first).days + 1, 1)
    day = first
    while day <= last:
        to = min(day + timedelta(days=days - 1), last)
        end = datetime(to.year, to.month, to.day, tzinfo=UTC) + timedelta(days=1)
        done = min(((to - first).days + 1) / total, 1.0)
        yield DayWindow(day, to, Batch(events=[], cursor=min(end, until), progress=done))
        day = to + timedelta(days=1)


class Stream(ABC):
    """One configured source of one product.

    A source type is one subclass in one module of ``exporters/``, found by
    ``exporters.registry``: its ``source_type``, the JSON-schema ``options`` its config
    entry accepts (with ``required`` ones; the common keys ``name``, ``enabled``,
    ``schedule``, ``lookback`` and ``start_date`` are added for every source), whether the
    scheduler pulls it (``scheduled``), and ``run``. The config schema, ``serve`` and
    ``backfill`` all read the registry, so nothing else needs an edit.
    """

    source_type: ClassVar[str]
    schema: ClassVar[Mapping[str, str]]  # source record field -> type (documentation + checks)
    replication_key: ClassVar[str]
    options: ClassVar[Mapping[str, Any]] = {}  # config key -> JSON schema of its value
    required: ClassVar[tuple[str, ...]] = ()
    scheduled: ClassVar[bool] = True  # False: a one-off import (``backfill`` only)
    default_window: ClassVar[timedelta] = timedelta(days=30)  # first run without start_date

    @classmethod
    def build(cls, config: SourceConfig, state: StateStore, base: Path | None = None) -> Stream:
        """The stream of one config entry (``base``: the config file's folder, for paths)."""
        return cls(config, state)

    def __init__(self, config: SourceConfig, state: StateStore) -> None:
        self.config = config
        self.state = state
        self.product = config.product
        self.stream_id = f"{config.product}/{config.name}"
        self.lookback = parse_duration(config.lookback)
        self.schedule = parse_duration(config.schedule)
        raw_start = config.options.get("start_date")
        self.start_date = utc(date.fromisoformat(str(raw_start))) if raw_start else None
        # One run at a time per stream: the scheduler and a webhook or backfill share it.
        self.lock = threading.RLock()

    @abstractmethod
    def run(self, since: datetime, until: datetime) -> Iterator[Batch]:
        """Read records with replication key in [since, until) and yield them as batches."""

    def default_start(self, now: datetime) -> datetime:
        return self.start_date or (now - self.default_window)

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release clients and sessions."""


class HttpStream(Stream):
    """A source read over an HTTP API (Mixpanel, GA4): one session opened on first use,
    one retry policy, one request path (``request``), ``api_base`` overridable in config
    (tests point it at a local server)."""

    default_base: ClassVar[str] = ""
    auth_hint: ClassVar[str] = "check the source's credentials"

    def __init__(
        self,
        config: SourceConfig,
        state: StateStore,
        *,
        policy: RetryPolicy | None = None,
        session: requests.Session | None = None,
    ) -> None:
        super().__init__(config, state)
        self.base = str(config.options.get("api_base") or self.api_base()).rstrip("/")
        self.policy = policy or RetryPolicy()
        self._session = session
        self.setup(config.options)

    def setup(self, options: Mapping[str, Any]) -> None:
        """Read the source's own options (called once, at the end of ``__init__``)."""

    def api_base(self) -> str:
        """The API's address when the config names none."""
        return self.default_base

    def open_session(self) -> requests.Session:
        """A session with the source's authentication (subclasses add it)."""
        return requests.Session()

    @property
    def session(self) -> requests.Session:
        if self._session is None:
            self._session = self.open_session()
        return self._session

    def request(self, method: str, url: str, *, auth_hint: str | None = None,
                **kwargs: Any) -> requests.Response:  # fmt: skip
        return request(self.session, method, url, source=self.source_type, policy=self.policy,
                       auth_hint=auth_hint or self.auth_hint, **kwargs)  # fmt: skip

    def close(self) -> None:
        if self._session is not None:
            self._session.close()


@dataclass
class SyncResult:
    stream: str
    since: datetime
    until: datetime
    received: int = 0
    inserted: int = 0
    duplicates: int = 0
    rejected: int = 0
    cursor: datetime | None = None

    def add(self, appended: AppendResult | None, rejected: int) -> None:
        if appended is not None:
            self.received += appended.received
            self.inserted += appended.inserted
            self.duplicates += appended.duplicates
        self.rejected += rejected

    def __str__(self) -> str:
        return (
            f"{self.stream} {self.since:%Y-%m-%d %H:%M} .. {self.until:%Y-%m-%d %H:%M}: "
            f"{self.inserted} new, {self.duplicates} duplicate(s), {self.rejected} rejected"
        )


BACKFILL_CURSOR = "backfill"
LAST_SUCCESS = "last_success"  # cursor names in the state file, read by `growthwatch status`
LAST_ERROR = "last_error"


class Ingestor:
    """Stores batches in the ledger, records rejections, advances cursors, fires the hook."""

    def __init__(self, ledger: Ledger, state: StateStore, hook: SeriesHook | None = None) -> None:
        self.ledger = ledger
        self.state = state
        self.hook = hook

    def store(self, stream: Stream, batch: Batch) -> tuple[AppendResult | None, int]:
        """Append one batch; returns the ledger's answer and the number of rejections."""
        source, product = stream.source_type, stream.product
        rejections = list(batch.rejected)
        appended: AppendResult | None = None
        if len(batch.events):
            # What this append stored, read back for the hook (one small query; cheaper
            # than building the frame a second time, and duplicates are left out).
            before = self.ledger.max_seq() if self.hook is not None else 0
            appended = self.ledger.append(batch.events)
            for problem in appended.rejected:
                where = batch.locate(problem.row) if batch.locate else f"row {problem.row}"
                detail = f"{where}: column {problem.field}={problem.value!r}: {problem.reason}"
                rejections.append(Rejection(invalid_reason(problem.field), detail, None))
            telemetry.EVENTS_INGESTED.labels(source, product).inc(appended.inserted)
            telemetry.EVENTS_DUPLICATE.labels(source, product).inc(appended.duplicates)
            if self.hook is not None and appended.inserted:
                try:
                    self.hook(self.ledger.read(after_seq=before, with_seq=True))
                except Exception:  # the ledger has the events; series catch up on next run
                    log.exception("%s: series hook failed", stream.stream_id)
        for rejection in rejections:
            self.reject(stream, rejection)
        if batch.on_commit is not None:
            batch.on_commit()
        return appended, len(rejections)

    def reject(self, stream: Stream, rejection: Rejection) -> None:
        log.warning("%s: rejected (%s): %s", stream.stream_id, rejection.reason, rejection.detail)
        telemetry.EVENTS_REJECTED.labels(stream.source_type, stream.product, rejection.reason).inc()
        self.state.reject(stream.stream_id, rejection.reason, rejection.detail, rejection.record)

    def sync(
        self,
        stream: Stream,
        *,
        since: datetime | None = None,
        until: datetime | None = None,
        backfill: bool = False,
        progress: Callable[[float], None] | None = None,
    ) -> SyncResult:
        """Read [since, until) and store it; without ``since``, resume at cursor - lookback.

        A backfill keeps its own resume point (with the ``since`` it was started with), so
        running the same backfill again after an interrupt continues where it stopped.
        """
        now = clock.now()
        until = until or now
        cursor = _as_dt(self.state.get_cursor(stream.stream_id))
        if backfill:
            if since is None:
                raise ValueError("a backfill needs --since")
            resume = self.state.get_cursor(stream.stream_id, BACKFILL_CURSOR)
            if resume and _as_dt(resume.get("since")) == since and resume.get("reached"):
                reached = _as_dt(resume["reached"])
                assert reached is not None
                log.info("%s: resuming backfill at %s", stream.stream_id, reached)
                start = max(since, reached)
            else:
                start = since
        elif since is not None:
            start = since
        elif cursor is not None:
            start = cursor - stream.lookback
        else:
            start = stream.default_start(now)
        result = SyncResult(stream.stream_id, start, until)
        try:
            self._sync(stream, start, until, since, cursor, backfill, progress, result)
        except Exception as exc:
            # What `growthwatch status` shows: the last failure and when, per source.
            self.state.set_cursor(stream.stream_id, {"at": clock.now().isoformat(),
                                                     "error": str(exc)[:500]}, LAST_ERROR)  # fmt: skip
            raise
        self.state.set_cursor(stream.stream_id, clock.now().isoformat(), LAST_SUCCESS)
        self.state.delete_cursor(stream.stream_id, LAST_ERROR)
        log.info("%s", result)
        return result

    def _sync(
        self, stream: Stream, start: datetime, until: datetime, since: datetime | None,
        cursor: datetime | None, backfill: bool, progress: Callable[[float], None] | None,
        result: SyncResult,
    ) -> None:  # fmt: skip
        with stream.lock, telemetry.pull_timer(stream.source_type, stream.product):
            for batch in stream.run(start, until):
                appended, rejected = self.store(stream, batch)
                result.add(appended, rejected)
                if batch.cursor is not None:
                    result.cursor = batch.cursor
                    if backfill:
                        self.state.set_cursor(
                            stream.stream_id,
                            {"since": since.isoformat() if since else None,
                             "reached": batch.cursor.isoformat()},
                            BACKFILL_CURSOR,
                        )  # fmt: skip
                    if cursor is None or batch.cursor > cursor:
                        cursor = batch.cursor
                        self.state.set_cursor(stream.stream_id, cursor.isoformat())
                if progress is not None and batch.progress is not None:
                    progress(batch.progress)
        if backfill:
            self.state.delete_cursor(stream.stream_id, BACKFILL_CURSOR)
        if cursor is not None:
            lag = (clock.now() - cursor).total_seconds()
            telemetry.CURSOR_LAG.labels(stream.source_type, stream.product).set(max(lag, 0.0))


def _as_dt(value: Any) -> datetime | None:
    return None if value is None else utc(value)


# -- HTTP with retries (Mixpanel, GA4) --------------------------------------------------------


def request(
    session: requests.Session,
    method: str,
    url: str,
    *,
    source: str,
    policy: RetryPolicy,
    auth_hint: str,
    **kwargs: Any,
) -> requests.Response:
    """One API call with the retry policy; returns a 2xx response or raises SourceError."""

    def attempt() -> requests.Response:
        try:
            resp = session.request(method, url, **kwargs)
        except (requests.ConnectionError, requests.Timeout) as exc:
            telemetry.api_error(source, None)
            raise Retryable(f"{type(exc).__name__}: {exc}") from exc
        if resp.status_code < 400:
            return resp
        telemetry.api_error(source, resp.status_code)
        body = resp.text[:300].strip()
        if resp.status_code in (401, 403):
            raise SourceAuthError(
                f"{source}: the API refused our credentials (HTTP {resp.status_code}: {body}); "
                f"{auth_hint}"
            )
        if resp.status_code == 429 or resp.status_code >= 500:
            raise Retryable(f"HTTP {resp.status_code}: {body}",
                            retry_after=resp.headers.get("Retry-After"))  # fmt: skip
        raise SourceError(f"{source}: HTTP {resp.status_code} for {url}: {body}")

    try:
        return policy.call(attempt, what=source)
    except RetriesExhausted as exc:
        raise SourceUnavailable(str(exc)) from exc
