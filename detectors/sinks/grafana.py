"""Grafana annotations through ``grafana-client``: a region from open to resolve.

On open the sink POSTs ``/api/annotations`` (``time`` = start, tags growthwatch, product,
metric, severity) and keeps the returned id in the alert book; on resolve it PATCHes that
annotation's ``timeEnd``; an escalation PATCHes its text. 5xx and connection errors are
retried with growthwatch's ``RetryPolicy``; a 4xx (bad token) is logged and not retried.
"""

from __future__ import annotations

import logging
from typing import Any

from grafana_client import GrafanaApi
from grafana_client.client import GrafanaClientError, GrafanaServerError

from detectors.alerts import AlertBook, Transition
from growthwatch import Retryable, RetryPolicy

log = logging.getLogger(__name__)


class GrafanaAnnotations:
    def __init__(self, url: str, token: str | None, book: AlertBook,
                 policy: RetryPolicy | None = None, timeout: float = 5.0) -> None:  # fmt: skip
        self.api = GrafanaApi.from_url(url, credential=token or None, timeout=timeout)
        self.book = book
        self.policy = policy or RetryPolicy(max_retries=3, backoff=0.5, max_delay=5)

    def _call(self, fn: Any, what: str) -> Any:
        def attempt() -> Any:
            try:
                return fn()
            except GrafanaServerError as exc:
                raise Retryable(f"Grafana {exc}") from exc
            except GrafanaClientError:
                raise
            except Exception as exc:  # connection refused, timeout (niquests)
                if type(exc).__module__.startswith(("niquests", "urllib3", "requests")):
                    raise Retryable(f"Grafana unreachable: {exc}") from exc
                raise

        return self.policy.call(attempt, what=what)

    def emit(self, transition: Transition) -> None:
        a, f = transition.alert, transition.finding
        tags = ["growthwatch", "anomaly", f"product:{a.product}", f"metric:{a.metric}",
                f"severity:{a.severity}"]  # fmt: skip
        if a.segment != "all":
            tags.append(f"segment:{a.segment}")
        started_ms = int(a.started.timestamp() * 1000)
        if transition.state == "open":
            answer = self._call(
                lambda: self.api.annotations.add_annotation(
                    time_from=started_ms, time_to=started_ms, tags=tags, text=f.explanation),
                "grafana annotation",
            )  # fmt: skip
            if isinstance(answer, dict) and answer.get("id") is not None:
                self.book.set_annotation(a.alert_id, int(answer["id"]))
            return
        ann = self.book.annotation_of(a.alert_id)
        if ann is None:
            return
        body: dict[str, Any] = {"tags": tags}
        if transition.state == "resolved":
            body["timeEnd"] = int(f.time.timestamp() * 1000)
            body["time"] = started_ms
        else:
            body["text"] = f.explanation
        self._call(lambda: self.api.annotations.client.PATCH(f"/annotations/{ann}", json=body),
                   "grafana annotation update")  # fmt: skip
