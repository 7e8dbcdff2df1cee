"""One retry policy for every remote call: source APIs, InfluxDB, Grafana, BigQuery, apprise.

A call site says only *what* is worth retrying, by raising ``Retryable`` from the attempt
(429, 5xx, a refused connection, a timeout); everything else propagates at once (a 4xx is
a bug or a config problem, not an outage). The policy says *how*: exponential backoff
with full jitter (so many clients recovering together do not hammer a server in step), a
server's ``Retry-After`` honoured up to ``max_delay``, at most ``max_retries`` retries
and, optionally, an overall ``deadline`` in seconds. When it gives up it raises
``RetriesExhausted`` with the last reason, which call sites turn into their own error
(``SourceUnavailable``, ``InfluxUnavailable``, ...).

``sleep``, ``clock`` and ``random`` are injectable so that tests never wait or depend on
chance.
"""

from __future__ import annotations

import email.utils
import logging
import random as _random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TypeVar

T = TypeVar("T")
log = logging.getLogger(__name__)


class Retryable(Exception):
    """Raised by an attempt whose failure may pass: the policy waits and tries again."""

    def __init__(self, reason: str, *, retry_after: str | float | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retry_after = retry_after


class RetriesExhausted(Exception):
    """Every attempt failed with a retryable error; ``last`` is the final reason."""

    def __init__(self, what: str, attempts: int, last: str) -> None:
        super().__init__(f"{what}: gave up after {attempts} attempt(s): {last}")
        self.what = what
        self.attempts = attempts
        self.last = last


@dataclass
class RetryPolicy:
    max_retries: int = 5
    backoff: float = 1.0  # base delay in seconds: attempt n waits up to backoff * 2**n
    max_delay: float = 60.0
    jitter: bool = True  # full jitter: a uniform wait in [0, the exponential delay]
    deadline: float | None = None  # seconds for all attempts together; None: no limit
    sleep: Callable[[float], None] = time.sleep
    clock: Callable[[], float] = time.monotonic
    random: Callable[[], float] = field(default=_random.random)

    def delay(self, attempt: int, retry_after: str | float | None = None) -> float:
        """Seconds to wait before retry number ``attempt + 1`` (``attempt`` counts from 0)."""
        if retry_after is not None and retry_after != "":
            server = _retry_after_seconds(retry_after)
            if server is not None:
                return min(server, self.max_delay)
        base = min(self.backoff * 2**attempt, self.max_delay)
        return base * self.random() if self.jitter else base

    def call(
        self,
        attempt_fn: Callable[[], T],
        *,
        what: str,
        on_retry: Callable[[int, Retryable], None] | None = None,
    ) -> T:
        """Run ``attempt_fn`` until it returns, raises a non-``Retryable`` error, or the
        policy runs out (``RetriesExhausted``)."""
        started = self.clock()
        last = ""
        attempts = 0
        for attempt in range(self.max_retries + 1):
            attempts = attempt + 1
            try:
                return attempt_fn()
            except Retryable as exc:
                last = exc.reason
                if on_retry is not None:
                    on_retry(attempt, exc)
                else:
                    log.warning("%s: %s (attempt %d)", what, exc.reason, attempt + 1)
                if attempt == self.max_retries:
                    break
                wait = self.delay(attempt, exc.retry_after)
                if self.deadline is not None and self.clock() - started + wait > self.deadline:
                    last += f" (deadline of {self.deadline:g} s reached)"
                    break
                self.sleep(wait)
        raise RetriesExhausted(what, attempts, last)


def _retry_after_seconds(value: str | float) -> float | None:
    """A ``Retry-After`` header: delta-seconds or an HTTP date; None if unreadable."""
    if isinstance(value, int | float):
        return max(float(value), 0.0)
    try:
        return max(float(value), 0.0)
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max((when - datetime.now(UTC)).total_seconds(), 0.0)
