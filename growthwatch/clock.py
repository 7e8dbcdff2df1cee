"""The one source of "now" for growthwatch's own decisions (pull windows, lookbacks,
cursor lag, what counts as final).

Code that asks ``clock.now()`` instead of ``datetime.now()`` can be run at any instant:
tests freeze it at a month boundary or a DST change (``with clock.frozen(at): ...``), so
no test depends on the day it runs. Wall-clock uses that must stay real (HTTP signature
tolerances checked by client libraries, timestamps of log records) keep ``time.time()``.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime

_frozen: datetime | None = None


def now() -> datetime:
    """The current instant, timezone-aware UTC (or the frozen one)."""
    return _frozen if _frozen is not None else datetime.now(UTC)


@contextmanager
def frozen(at: datetime) -> Iterator[datetime]:
    """Make ``now()`` return ``at`` (aware) inside the block."""
    global _frozen
    if at.tzinfo is None:
        raise ValueError(f"a frozen instant must be timezone-aware: {at!r}")
    before, _frozen = _frozen, at.astimezone(UTC)
    try:
        yield _frozen
    finally:
        _frozen = before
