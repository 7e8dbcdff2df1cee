"""InfluxDB over its v1 HTTP API: line-protocol writes and InfluxQL queries.

Why not ``influxdb-client``: it speaks only the v2 API (``/api/v2/write``), which InfluxDB
1.x lacks; the v1 API (``/write``, ``/query``) is served by 1.x, by 2.x (v1 compatibility
with a DBRP mapping) and by 3.x, so one small client over ``requests`` runs everywhere and
is tested against a real server.

Failure policy:
- 5xx, timeouts and refused connections are retried with exponential backoff;
- when retries run out (InfluxDB down), the batch goes to the on-disk spool and the call
  returns; later writes queue behind it (order is kept, so an older value never lands after
  a newer one) until a write or ``flush_spool()`` finds InfluxDB back and replays it all;
- a 4xx (bad line protocol, bad auth, missing database) is our bug or the user's config,
  not an outage: it raises ``InfluxWriteError`` with InfluxDB's own message.
"""

from __future__ import annotations

import gzip
import ipaddress
import logging
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import numpy as np
import pandas as pd
import requests

from growthwatch.config.loader import InfluxConfig, resolve_env
from growthwatch.points import Point, PointBatch
from growthwatch.retry import RetriesExhausted, Retryable, RetryPolicy
from growthwatch.stores.interfaces import WriteResult
from growthwatch.stores.lineprotocol import encode_lines, encode_point, line_bodies
from growthwatch.stores.spool import Spool, SpoolFull

log = logging.getLogger(__name__)
_ENCODE_ROWS = 200_000  # rows of a batch encoded at once


class InfluxError(RuntimeError):
    pass


def _ident(name: str) -> str:
    """An InfluxQL identifier (measurement, field, tag key), always double-quoted."""
    return '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _literal(value: str) -> str:
    """An InfluxQL string literal (a tag value in a WHERE clause)."""
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


class InfluxWriteError(InfluxError):
    """InfluxDB refused the data or the request (4xx): retrying will not help."""


class InfluxUnavailable(InfluxError):
    """InfluxDB could not be reached after all retries (and no spool was configured)."""


class InfluxStore:
    backpressure_sleep = staticmethod(time.sleep)  # tests make the wait instant
    def __init__(
        self,
        url: str,
        database: str,
        *,
        retention_policy: str | None = None,
        username: str | None = None,
        password: str | None = None,
        token: str | None = None,
        batch_size: int = 10_000,
        timeout: float = 10.0,
        max_retries: int = 4,
        backoff: float = 0.25,
        spool_dir: Path | None = None,
        compress: bool | None = None,
        retry: RetryPolicy | None = None,
        spool_max_bytes: int | None = None,
    ) -> None:
        self.url = url.rstrip("/")
        self.database = database
        self.retention_policy = retention_policy
        self.batch_size = batch_size
        self.timeout = timeout
        self.max_retries = max_retries
        self.backoff = backoff
        self.retry = retry or RetryPolicy(max_retries=max_retries, backoff=backoff,
                                          max_delay=30.0, jitter=False)  # fmt: skip
        # gzip pays off over a network; on loopback it only costs CPU on both ends (the
        # 2M-event ingest benchmark: about 1 s of the client's and InfluxDB's CPU).
        self.compress = (not _loopback(self.url)) if compress is None else compress
        self.spool = Spool(spool_dir, max_bytes=spool_max_bytes) if spool_dir is not None else None
        self.session = requests.Session()
        if token:
            self.session.headers["Authorization"] = f"Token {token}"
        elif username:
            self.session.auth = (username, password or "")

    @classmethod
    def from_config(
        cls, section: InfluxConfig, *, spool_dir: Path | None, database: str | None = None
    ) -> InfluxStore:
        """The store a config's ``influxdb`` section describes, its secrets read from the
        environment only now (a missing variable is a ``ConfigError`` naming it)."""
        c = section
        return cls(
            c.url, database or c.database, retention_policy=c.retention_policy,
            username=c.username,
            password=resolve_env(c.password, "influxdb.password") if c.password else None,
            token=resolve_env(c.token, "influxdb.token") if c.token else None,
            batch_size=c.batch_size, timeout=c.timeout, spool_dir=spool_dir,
            spool_max_bytes=int(c.spool_max_mb * 2**20) if c.spool_max_mb else None,
        )  # fmt: skip

    # -- schema -------------------------------------------------------------------------

    def ensure_database(self) -> None:
        """CREATE DATABASE is idempotent in InfluxQL; safe on every start."""
        self.query(f'CREATE DATABASE "{self.database}"', method="POST", database=None)

    def ping(self) -> bool:
        try:
            return self.session.get(f"{self.url}/ping", timeout=self.timeout).status_code == 204
        except requests.RequestException:
            return False

    # -- writes -------------------------------------------------------------------------

    def write(self, data: PointBatch | Iterable[PointBatch] | Iterable[Point]) -> WriteResult:
        """Write batches or points in chunks of ``batch_size`` lines.

        A NaN field of a batch row is undefined (a rate over zero customers): line protocol
        cannot carry it, and InfluxDB merges a rewritten point's fields into the stored
        ones, so without ``_clear_undefined`` a rate that became undefined would keep its
        old value.
        """
        return self.send(self._bodies(self._cleared(data)))  # encoded as it is sent

    def encode(
        self, data: PointBatch | Iterable[PointBatch] | Iterable[Point]
    ) -> list[tuple[bytes, int]]:
        """The request bodies ``write`` sends for ``data`` (with their line counts), after
        clearing the fields the data leaves undefined; ``send`` posts them. Apart, a
        pipeline encodes piece *n + 1* while piece *n* is posted (``growthwatch.ingest``)."""
        return list(self._bodies(self._cleared(data)))

    def _cleared(self, data: PointBatch | Iterable[PointBatch] | Iterable[Point]) -> list[Any]:
        items: list[Any] = [data] if isinstance(data, PointBatch) else list(data)
        for item in items:
            if isinstance(item, PointBatch):
                self._clear_undefined(item)
        return items

    def send(self, bodies: Iterable[tuple[bytes, int]]) -> WriteResult:
        """POST bodies from ``encode`` in order (spooled when InfluxDB is down)."""
        result = WriteResult()
        for body, lines in bodies:
            result += self._send_body(body, lines)
        return result

    def _clear_undefined(self, batch: PointBatch) -> None:
        """Delete the stored points whose field the batch now leaves undefined.

        One query reads the stored values of the batch's NaN fields over its time range;
        only points that really hold such a value are deleted (InfluxQL ``DELETE`` is slow,
        and most undefined values were never defined) before the batch rewrites them with
        their defined fields. If the check fails (InfluxDB down or erroring) it is skipped
        and the write goes on as usual (spooled if InfluxDB is down): a stale rate can then
        survive until the next rewrite.
        """
        frame = batch.frame
        numeric = [f for f in batch.fields if pd.api.types.is_float_dtype(frame[f])]
        if frame.empty or not numeric:
            return
        undefined = frame[numeric].isna()
        rows = undefined.any(axis=1).to_numpy()
        if not rows.any():
            return
        sub, undefined = frame[rows], undefined[rows]
        times = pd.DatetimeIndex(sub["time"]).as_unit("ns").asi8
        tags = [sub[t].astype(object).where(sub[t].notna(), "").astype(str).to_numpy()
                for t in batch.tags]  # fmt: skip
        source = _ident(batch.measurement)
        if self.retention_policy:
            source = f"{_ident(self.retention_policy)}.{source}"
        fields = [f for f in numeric if undefined[f].any()]
        q = (
            f"SELECT {', '.join(_ident(f) for f in fields)} FROM {source} "
            f"WHERE time >= {times.min()} AND time <= {times.max()} GROUP BY *"
        )
        try:
            stored: dict[tuple[tuple[str, ...], int], set[str]] = {}
            for series in self.query(q, epoch="ns"):
                key_tags = tuple(str(series.get("tags", {}).get(t, "")) for t in batch.tags)
                columns = series["columns"]
                for row in series["values"]:
                    held = {c for c, v in zip(columns[1:], row[1:], strict=True) if v is not None}
                    stored.setdefault((key_tags, int(row[0])), set()).update(held)
            deletes = []
            flags = undefined[fields].to_numpy()
            for i, when in enumerate(times):
                key_tags = tuple(str(col[i]) for col in tags)
                have = stored.get((key_tags, int(when)), set())
                if any(flags[i, j] and f in have for j, f in enumerate(fields)):
                    where = " AND ".join(
                        [*(f"{_ident(t)} = {_literal(v)}" for t, v in zip(batch.tags, key_tags,
                                                                          strict=True)),
                         f"time = {int(when)}"]
                    )  # fmt: skip
                    deletes.append(f"DELETE FROM {_ident(batch.measurement)} WHERE {where}")
            for k in range(0, len(deletes), 100):  # several statements per request
                self._results(";".join(deletes[k : k + 100]), method="POST")
            if deletes:
                log.info("%s: cleared %d point(s) whose field became undefined",
                         batch.measurement, len(deletes))  # fmt: skip
        except InfluxError as exc:  # down, 5xx or refused: the write reports its own way
            log.warning("%s: could not clear undefined fields (%s)", batch.measurement, exc)

    def delete(
        self,
        measurement: str,
        *,
        tags: Mapping[str, str | Sequence[str]] | None = None,
        start: datetime | None = None,
        end: datetime | None = None,
    ) -> None:
        """InfluxQL ``DELETE`` of the points of a measurement in [start, end) whose tags
        match (one statement per combination of tag values, sent in one request); the
        ``SeriesDeleter`` seam. Raises ``InfluxError`` when InfluxDB refuses or is down."""
        conditions: list[list[str]] = [[]]
        for key, wanted in (tags or {}).items():
            values = [wanted] if isinstance(wanted, str) else list(wanted)
            if not values:
                return
            conditions = [[*c, f"{_ident(key)} = {_literal(v)}"] for c in conditions
                          for v in values]  # fmt: skip
        when = []
        if start is not None:
            when.append(f"time >= {_epoch_ns(start)}")
        if end is not None:
            when.append(f"time < {_epoch_ns(end)}")
        statements = []
        for c in conditions:
            where = " AND ".join([*c, *when])
            statements.append(f"DELETE FROM {_ident(measurement)}"
                              + (f" WHERE {where}" if where else ""))  # fmt: skip
        for k in range(0, len(statements), 100):
            self._results(";".join(statements[k : k + 100]), method="POST")

    def write_lines(self, lines: Iterable[str]) -> WriteResult:
        result = WriteResult()
        chunk: list[str] = []
        for line in lines:
            chunk.append(line)
            if len(chunk) >= self.batch_size:
                result += self._send_body(("\n".join(chunk) + "\n").encode(), len(chunk))
                chunk = []
        if chunk:
            result += self._send_body(("\n".join(chunk) + "\n").encode(), len(chunk))
        return result

    def flush_spool(self) -> WriteResult:
        """Replay spooled batches if InfluxDB is reachable; returns what was replayed."""
        result = WriteResult()
        if self.spool is None or not len(self.spool):
            return result
        try:
            result.points = self.spool.drain(lambda b: self._post_with_retries(b, gzipped=True))
        except InfluxUnavailable:
            log.warning("InfluxDB still unreachable; %d point(s) stay spooled", self.spool.lines())
        return result

    def _bodies(self, items: Sequence[Any]) -> Iterator[tuple[bytes, int]]:
        """Request bodies of ``batch_size`` lines (the last one shorter) and their line
        counts, across items. A batch's lines are encoded at once (``encode_lines``) and
        cut into bodies as byte slices of one buffer; single points are encoded one by one.
        """
        parts: list[bytes] = []
        count = 0
        for block in self._blocks(items):
            data, offsets = block
            n, start = len(offsets) - 1, 0
            while start < n:
                take = min(self.batch_size - count, n - start)
                parts.append(bytes(data[offsets[start] : offsets[start + take]]))
                count += take
                start += take
                if count >= self.batch_size:
                    yield b"".join(parts), count
                    parts, count = [], 0
        if count:
            yield b"".join(parts), count

    @staticmethod
    def _blocks(items: Sequence[Any]) -> Iterator[tuple[memoryview, np.ndarray]]:
        """Encoded lines as (buffer, line offsets), a batch in slices of ``_ENCODE_ROWS``
        rows (bounded memory, and Arrow's 32-bit string offsets never overflow)."""
        for item in items:
            if isinstance(item, PointBatch):
                frame = item.frame
                for start in range(0, len(frame), _ENCODE_ROWS):
                    part = frame.iloc[start : start + _ENCODE_ROWS]
                    piece = PointBatch(item.measurement, part, item.tags, item.fields)
                    yield line_bodies(encode_lines(piece))
            else:
                line = encode_point(item)
                if line is not None:
                    data = (line + "\n").encode()
                    yield memoryview(data), np.array([0, len(data)], dtype=np.int64)

    def _send_body(self, body: bytes, lines: int) -> WriteResult:
        """POST one body of ``lines`` lines (gzip'd when ``compress``), or spool it (the
        spool always holds gzip'd bodies, whatever ``compress`` is when they are replayed).
        """
        packed = gzip.compress(body, compresslevel=1) if self.compress else None
        result = WriteResult()
        if self.spool is not None and len(self.spool):
            # Keep order: replay older batches first; if that fails, queue behind them.
            result += self.flush_spool()
            if len(self.spool):
                self._park(packed or gzip.compress(body, compresslevel=1), lines, result,
                           body=packed or body, gzipped=packed is not None)
                return result
        try:
            result.requests += self._post_with_retries(packed or body, gzipped=packed is not None)
            result.points += lines
        except InfluxUnavailable:
            if self.spool is None:
                raise
            self._park(packed or gzip.compress(body, compresslevel=1), lines, result,
                       body=packed or body, gzipped=packed is not None)
            log.warning(
                "InfluxDB unreachable; spooled %d point(s) to %s", lines, self.spool.directory
            )
        return result

    def _park(self, spooled: bytes, lines: int, result: WriteResult, *, body: bytes,
              gzipped: bool) -> None:  # fmt: skip
        """Spool one batch; when the spool is full, wait (back-pressure: the caller, a
        background writer, stops taking work) until InfluxDB drains it. Evicting the
        oldest batch would be silent data loss, so it is never done; the wait is logged
        as an error every minute, and the spool gauges show it."""
        assert self.spool is not None
        waited = 0.0
        while True:
            try:
                self.spool.put(spooled, lines)
                result.spooled += lines
                return
            except SpoolFull as exc:
                if waited % 60 < 5:
                    log.error("%s: holding new points until InfluxDB at %s answers "
                              "(waited %.0f s)", exc, self.url, waited)  # fmt: skip
            self.backpressure_sleep(5.0)
            waited += 5.0
            result += self.flush_spool()
            if not len(self.spool):  # drained: this batch goes straight out if it can
                try:
                    result.requests += self._post_with_retries(body, gzipped=gzipped)
                    result.points += lines
                    return
                except InfluxUnavailable:
                    continue

    def _post_with_retries(self, body: bytes, *, gzipped: bool) -> int:
        """POST one body under the store's retry policy; returns the attempts it took."""
        params = {"db": self.database, "precision": "ns"}
        if self.retention_policy:
            params["rp"] = self.retention_policy
        headers = {"Content-Type": "text/plain; charset=utf-8"}
        if gzipped:
            headers["Content-Encoding"] = "gzip"
        attempts = 0

        def attempt() -> int:
            nonlocal attempts
            attempts += 1
            try:
                resp = self.session.post(
                    f"{self.url}/write", params=params, data=body, headers=headers,
                    timeout=self.timeout,
                )  # fmt: skip
            except (requests.ConnectionError, requests.Timeout) as exc:
                raise Retryable(f"{type(exc).__name__}: {exc}") from exc
            if resp.status_code == 204:
                return attempts
            if resp.status_code >= 500:
                raise Retryable(f"HTTP {resp.status_code}: {resp.text[:300]}")
            if resp.status_code == 404 and "database not found" in resp.text:
                # InfluxDB restarted empty (or the database was dropped): create it again
                # and retry, rather than refusing every point from now on.
                log.warning("InfluxDB at %s lost database %r; creating it again",
                            self.url, self.database)  # fmt: skip
                try:
                    self.ensure_database()
                except InfluxError as exc:
                    raise Retryable(f"database {self.database!r} missing: {exc}") from exc
                raise Retryable(f"database {self.database!r} was missing (created again)")
            raise InfluxWriteError(
                f"InfluxDB at {self.url} refused the write to {self.database!r}: "
                f"HTTP {resp.status_code}: {resp.text[:500]}"
            )

        try:
            return self.retry.call(attempt, what=f"InfluxDB write to {self.url}")
        except RetriesExhausted as exc:
            raise InfluxUnavailable(
                f"InfluxDB at {self.url} unreachable after retries: {exc.last}"
            ) from exc

    # -- queries ------------------------------------------------------------------------

    def query(
        self, q: str, *, method: str = "GET", database: str | None = "", epoch: str = "ms"
    ) -> list[dict[str, Any]]:
        """Run InfluxQL; returns the raw ``series`` list of the first statement."""
        results = self._results(q, method=method, database=database, epoch=epoch)
        return list(results[0].get("series", [])) if results else []

    def _results(
        self, q: str, *, method: str = "GET", database: str | None = "", epoch: str = "ms"
    ) -> list[dict[str, Any]]:
        """Every statement's result of ``q`` (``;``-separated); any statement's error raises.

        POST sends the statements in the body, so a long batch never meets a URL limit.
        """
        params = {"epoch": epoch}
        db = self.database if database == "" else database
        if db:
            params["db"] = db
        body = None
        if method == "POST":
            body = {"q": q}
        else:
            params["q"] = q
        try:
            resp = self.session.request(
                method, f"{self.url}/query", params=params, data=body, timeout=max(self.timeout, 60)
            )
        except requests.RequestException as exc:
            raise InfluxUnavailable(f"InfluxDB at {self.url} unreachable: {exc}") from exc
        if resp.status_code >= 400:
            raise InfluxError(f"InfluxQL failed (HTTP {resp.status_code}): {resp.text[:500]}")
        results: list[dict[str, Any]] = resp.json().get("results", [])
        for result in results:
            if "error" in result:
                raise InfluxError(f"InfluxQL error for {q[:200]!r}: {result['error']}")
        return results

    def query_frame(self, q: str) -> pd.DataFrame:
        """InfluxQL result as one frame: ``time`` (UTC), tag columns, value columns."""
        frames = []
        for series in self.query(q):
            frame = pd.DataFrame(series["values"], columns=series["columns"])
            for tag, value in series.get("tags", {}).items():
                frame[tag] = value
            frames.append(frame)
        if not frames:
            return pd.DataFrame()
        out = pd.concat(frames, ignore_index=True)
        out["time"] = pd.to_datetime(out["time"], unit="ms", utc=True)
        return out

    def read(
        self,
        measurement: str,
        *,
        fields: Sequence[str] | None = None,
        tags: Mapping[str, str] | None = None,
        start: datetime | None = None,
        end: datetime | None = None,
    ) -> pd.DataFrame:
        """The ``SeriesReader`` contract over InfluxQL (same frame as ``SeriesStore.read``).

        ``GROUP BY *`` returns tags apart from fields, so a tag and a field never share a
        column; rows of different tag sets come back as separate series and are stacked.
        """
        if fields is not None and not fields:
            raise ValueError("fields: name at least one field, or pass None for all")
        select = "*" if fields is None else ", ".join(_ident(f) for f in fields)
        source = _ident(measurement)
        if self.retention_policy:
            source = f"{_ident(self.retention_policy)}.{source}"
        where = [f"{_ident(k)} = {_literal(v)}" for k, v in (tags or {}).items()]
        if start is not None:
            where.append(f"time >= {_epoch_ns(start)}")
        if end is not None:
            where.append(f"time < {_epoch_ns(end)}")
        q = f"SELECT {select} FROM {source}"
        if where:
            q += " WHERE " + " AND ".join(where)
        q += " GROUP BY *"
        frames = []
        tag_keys: dict[str, None] = {}
        for series in self.query(q, epoch="ns"):
            frame = pd.DataFrame(series["values"], columns=series["columns"])
            for tag, value in series.get("tags", {}).items():
                tag_keys[tag] = None
                frame[tag] = value if value != "" else None
            frames.append(frame)
        if not frames:
            return pd.DataFrame(columns=["time"])
        out = pd.concat(frames, ignore_index=True)
        out["time"] = pd.to_datetime(out["time"], unit="ns", utc=True)
        # Drop tags no row of the answer holds (InfluxDB reports every key of the shard).
        present = [t for t in tag_keys if out[t].notna().any()]
        out = out.drop(columns=[t for t in tag_keys if t not in present])
        value_cols = [c for c in out.columns if c != "time" and c not in tag_keys]
        if fields is None:
            out = out.dropna(how="all", subset=value_cols) if value_cols else out
        out = out[["time", *present, *value_cols]]
        return out.sort_values(["time", *present], ignore_index=True)


def _loopback(url: str) -> bool:
    """Whether ``url`` points at this machine (127.0.0.0/8, ::1, localhost)."""
    host = (urlsplit(url).hostname or "").lower()
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _epoch_ns(when: datetime) -> int:
    """Nanoseconds since the epoch of an aware datetime (naive is taken as UTC)."""
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return int(pd.Timestamp(when).as_unit("ns").value)
