"""Mixpanel: the raw event export API, streamed as JSONL, into signup/activation/active-use.

``GET {api_base}/api/2.0/export?project_id=&from_date=&to_date=&event=[...]`` with a
service account over HTTP Basic. The answer is one JSON event a line and can be large, so
it is streamed (``iter_lines``) and stored in frames of ``chunk_rows`` rows: memory stays
flat and one malformed line costs only itself (``check_frame`` and the line parser reject
it with a reason).

Exactly once: the export is not de-duplicated, and Mixpanel's own rule says two events are
the same when (event, distinct_id, time, ``$insert_id``) agree, so exactly those four make
the source id; an event without ``$insert_id`` is keyed by its whole content. Late events
(mobile clients send hours or days later) are picked up because every run re-reads
``lookback`` days before the cursor; the keys turn the overlap into duplicates.

Whole days only (the API's unit), in UTC; the cursor is the end of the last day read.
Limits are 60 queries an hour and 3 a second: a run makes one request per ``window_days``
and 429 answers are retried with backoff (``Retry-After`` honoured).
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Iterator, Mapping
from datetime import date, datetime
from typing import Any, ClassVar

import pandas as pd
import requests

from exporters.base import Batch, HttpStream, Rejection, day_windows
from growthwatch.config.schema import SECRET
from growthwatch.events import EventType

log = logging.getLogger(__name__)

SOURCE = "mixpanel"
API_BASES: Mapping[str, str] = {
    "us": "https://data.mixpanel.com",
    "eu": "https://data-eu.mixpanel.com",
    "in": "https://data-in.mixpanel.com",
}
TYPES: Mapping[str, EventType] = {
    "signup": EventType.SIGNUP,
    "activation": EventType.ACTIVATION,
    "active_use": EventType.ACTIVE_USE,
}


def event_source_id(name: str, props: Mapping[str, Any], line: str) -> str:
    """Mixpanel's de-duplication identity (event, distinct_id, time, $insert_id)."""
    insert_id = props.get("$insert_id")
    if insert_id is None:
        raw = "raw:" + line
    else:
        raw = json.dumps([name, props.get("distinct_id"), props.get("time"), insert_id])
    if len(raw) <= 200 and insert_id is not None:
        return raw
    return "sha256:" + hashlib.sha256(raw.encode()).hexdigest()


class MixpanelStream(HttpStream):
    source_type: ClassVar[str] = SOURCE
    options: ClassVar[Mapping[str, Any]] = {
        "project_id": {"type": ["integer", "string"]},
        "username": SECRET,
        "secret": SECRET,
        "region": {"enum": sorted(API_BASES)},
        "api_base": {"type": "string", "format": "uri"},
        "events": {
            "type": "object",
            "additionalProperties": False,
            "properties": {
                t: {"type": "array", "items": {"type": "string"}, "minItems": 1}
                for t in ("signup", "activation", "active_use")
            },
        },
    }
    required: ClassVar[tuple[str, ...]] = ("project_id", "username", "secret", "events")
    replication_key: ClassVar[str] = "properties.time"
    schema: ClassVar[dict[str, str]] = {
        "event": "string (event name; mapped by the `events` option)",
        "properties.time": "integer (unix seconds; the replication key)",
        "properties.distinct_id": "string (the user; becomes the subject)",
        "properties.$insert_id": "string (de-duplication id)",
    }
    window_days: ClassVar[int] = 30
    chunk_rows: ClassVar[int] = 20_000

    def setup(self, options: Mapping[str, Any]) -> None:
        self.project_id = str(options["project_id"])
        self.types: dict[str, EventType] = {}
        for key, etype in TYPES.items():
            for name in (options.get("events") or {}).get(key) or ():
                self.types.setdefault(str(name), etype)

    def api_base(self) -> str:
        return API_BASES[str(self.config.options.get("region", "us"))]

    def open_session(self) -> requests.Session:
        session = requests.Session()
        session.auth = (self.config.secret("username"), self.config.secret("secret"))
        return session

    def run(self, since: datetime, until: datetime) -> Iterator[Batch]:
        for window in day_windows(since, until, self.window_days):
            yield from self._export(window.first, window.last)
            yield window.checkpoint

    def _export(self, first: date, last: date) -> Iterator[Batch]:
        params = {
            "project_id": self.project_id,
            "from_date": first.isoformat(),
            "to_date": last.isoformat(),
            "event": json.dumps(sorted(self.types)),
        }
        resp = self.request(
            "GET", f"{self.base}/api/2.0/export", params=params, stream=True, timeout=(10, 300),
            auth_hint="check the service account's username/secret and that it has access "
            f"to project {self.project_id}",
        )  # fmt: skip
        rows: list[dict[str, Any]] = []
        rejected: list[Rejection] = []
        with resp:
            for raw in resp.iter_lines(decode_unicode=False):
                if not raw.strip():
                    continue
                self._map_line(raw.decode("utf-8", errors="replace"), rows, rejected)
                if len(rows) >= self.chunk_rows:
                    yield Batch(events=_frame(rows), rejected=rejected)
                    rows, rejected = [], []
        if rows or rejected:
            yield Batch(events=_frame(rows), rejected=rejected)

    def _map_line(self, line: str, rows: list[dict[str, Any]], rejected: list[Rejection]) -> None:
        try:
            obj = json.loads(line)
        except ValueError as exc:
            rejected.append(Rejection("malformed_json", f"line not JSON: {exc}", line[:2000]))
            return
        if not isinstance(obj, dict) or not isinstance(obj.get("properties"), dict):
            rejected.append(Rejection("malformed_record", "no properties object", line[:2000]))
            return
        name = obj.get("event")
        etype = self.types.get(name) if isinstance(name, str) else None
        if etype is None or not isinstance(name, str):
            return  # not a configured event (the export filter should have left it out)
        props = obj["properties"]
        when = props.get("time")
        if not isinstance(when, int | float) or isinstance(when, bool):
            rejected.append(Rejection("missing_timestamp", f"{name}: time={when!r}", line[:2000]))
            return
        user = props.get("distinct_id")
        if user is None or str(user).strip() == "":
            rejected.append(Rejection("missing_id", f"{name}: no distinct_id", line[:2000]))
            return
        seconds = when / 1000 if when > 1e11 else when  # some pipelines send milliseconds
        rows.append(
            {
                "product": self.product,
                "type": etype.value,
                "ts": seconds,
                "value": 1.0,
                "subject": str(user),
                "metadata": json.dumps({"event": name}),
                "source": SOURCE,
                "source_id": event_source_id(name, props, line),
                "kind": etype.value,
            }
        )


def _frame(rows: list[dict[str, Any]]) -> pd.DataFrame:
    frame = pd.DataFrame.from_records(rows)
    if not frame.empty:
        frame["ts"] = pd.to_datetime(frame["ts"], unit="s", utc=True)
    return frame
