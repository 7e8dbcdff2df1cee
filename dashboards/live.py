"""Grafana Live: push fresh series points to Grafana as they are written.

``growthwatch serve`` calls ``attach(service)``; with a ``grafana`` section (``url``,
``token``; ``live`` not false) a ``LivePusher`` listens on the series hook and POSTs every
update's batches as line protocol (growthwatch's own encoder, so Live sees exactly the
points InfluxDB gets) to ``/api/live/push/<stream>``. Grafana publishes each measurement on
channel ``stream/<stream>/<measurement>``, so a panel subscribed to it moves within a second
of a webhook, without waiting for the dashboard's refresh.

A failed push never stops the series: 5xx answers and network errors are retried a few
times within a short deadline (``RetryPolicy``), then the batch is dropped with a warning
(the dashboards' 30 s refresh from InfluxDB still shows it); 4xx (bad token) is logged.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping, Sequence
from typing import Any

import requests

from growthwatch import (
    PointBatch,
    RetriesExhausted,
    Retryable,
    RetryPolicy,
    encode_batch,
    resolve_env,
)

log = logging.getLogger(__name__)
STREAM = "growthwatch"
LIVE_CHANNEL = f"stream/{STREAM}"


class LivePushError(RuntimeError):
    """Grafana refused a push (4xx): token or permissions, not worth retrying."""


class LivePusher:
    def __init__(self, url: str, token: str, *, stream: str = STREAM,
                 retry: RetryPolicy | None = None, timeout: float = 2.0,
                 session: requests.Session | None = None) -> None:  # fmt: skip
        self.endpoint = f"{url.rstrip('/')}/api/live/push/{stream}"
        self.timeout = timeout
        self.retry = retry or RetryPolicy(max_retries=2, backoff=0.1, max_delay=0.5, deadline=2.0)
        self.session = session or requests.Session()
        self.session.headers["Authorization"] = f"Bearer {token}"
        self.session.headers["Content-Type"] = "text/plain"
        self._lock = threading.Lock()
        self.pushed = 0

    @classmethod
    def from_section(cls, section: Mapping[str, Any]) -> LivePusher:
        return cls(str(section["url"]), resolve_env(section["token"], "grafana.token"))

    def body(self, batches: Sequence[PointBatch]) -> str:
        return "\n".join(line for batch in batches for line in encode_batch(batch))

    def push(self, batches: Sequence[PointBatch]) -> int:
        """POST the batches; returns the number of points sent (0 for nothing to send)."""
        body = self.body(batches)
        if not body:
            return 0

        def attempt() -> int:
            try:
                resp = self.session.post(self.endpoint, data=body.encode(), timeout=self.timeout)
            except requests.RequestException as exc:
                raise Retryable(f"Grafana Live unreachable: {exc}") from exc
            if resp.status_code >= 500 or resp.status_code == 429:
                raise Retryable(f"Grafana Live answered {resp.status_code}",
                                retry_after=resp.headers.get("Retry-After"))  # fmt: skip
            if resp.status_code >= 400:
                raise LivePushError(f"Grafana Live refused the push ({resp.status_code}): "
                                    f"{resp.text[:200]}")  # fmt: skip
            return body.count("\n") + 1

        with self._lock:
            sent = self.retry.call(attempt, what="Grafana Live push")
            self.pushed += sent
            return sent

    def __call__(self, batches: list[PointBatch]) -> None:
        """The series-hook listener: never raises (a listener must not stop the series)."""
        try:
            self.push(batches)
        except (RetriesExhausted, LivePushError) as exc:
            log.warning("Grafana Live: %s; points stay visible through InfluxDB", exc)

    def close(self) -> None:
        self.session.close()


def attach(service: Any) -> LivePusher | None:
    """Listen on ``service.hook`` when the config has ``grafana`` with a token and live on."""
    section = service.config.section("grafana")
    if not section or not section.get("live", True) or not section.get("token"):
        return None
    if not resolve_env(section["token"], "grafana.token"):
        log.warning("Grafana Live: grafana.token is empty; not pushing (create a service "
                    "account token in Grafana and set it)")  # fmt: skip
        return None
    pusher = LivePusher.from_section(section)
    service.hook.add_listener(pusher)
    log.info("Grafana Live: pushing series to %s", pusher.endpoint)
    return pusher
