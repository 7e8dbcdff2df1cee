"""Events older than the ledger holds: the seam between the drill-down and the archive.

Retention (the archive component) deletes old events from the ledger once they are safely
archived; only the *history types* stay. ``growthwatch customers`` and ``growthwatch
customer`` read the ledger, and for a trimmed ledger they also need what lies before the
trim boundary. The core must not import the archive (it is a component built on the core),
so the archive registers an ``OlderEventsSource`` here when its commands are loaded
(``bigquery_archive/cli.py``), and the drill-down asks ``open_older_events`` for one.

Split by time, as ``archive events`` does: before ``boundary()`` every event comes from the
older source (the history types the ledger kept there too are taken from the archive only,
so none is counted twice), from the boundary on from the ledger.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import pandas as pd

if TYPE_CHECKING:
    from growthwatch.stores.ledger import Ledger


class OlderEvents(Protocol):
    """Where the events before the ledger's trim boundary are (the archive)."""

    name: str  # for messages, e.g. "bigquery project.dataset"

    def boundary(self) -> datetime | None:
        """The ledger holds every event from this instant on; before it only the history
        types (None: the ledger was never trimmed, it holds everything)."""
        ...

    def read_before(
        self,
        end: datetime,
        *,
        types: Sequence[str] | None = None,
        products: Sequence[str] | None = None,
        subjects: Sequence[str] | None = None,
    ) -> pd.DataFrame:
        """Every event before ``end`` (``growthwatch.frames`` layout, ledger order)."""
        ...

    def close(self) -> None: ...


# (config, data directory, ledger) -> a source, or None when this component has nothing older
OlderEventsSource = Callable[[Any, Path, "Ledger"], OlderEvents | None]
_SOURCES: list[OlderEventsSource] = []


def register_older_events(source: OlderEventsSource) -> None:
    """Add a source (idempotent: registering the same function twice keeps one)."""
    if source not in _SOURCES:
        _SOURCES.append(source)


def open_older_events(config: Any, data_dir: Path, ledger: Ledger) -> OlderEvents | None:
    """The first registered source that has events older than the ledger, or None."""
    for source in _SOURCES:
        found = source(config, data_dir, ledger)
        if found is not None:
            return found
    return None


def read_through(
    ledger_read: Callable[[datetime | None], pd.DataFrame],
    older: OlderEvents | None,
    *,
    types: Sequence[str] | None = None,
    products: Sequence[str] | None = None,
    subjects: Sequence[str] | None = None,
) -> tuple[pd.DataFrame, datetime | None]:
    """The whole history: ``older`` before its boundary, then ``ledger_read(boundary)``
    (the ledger's events from that instant on; from the beginning when the boundary is
    None). Returns the events in (ts, key) order and the boundary actually used."""
    cut = older.boundary() if older is not None else None
    recent = ledger_read(cut)
    if older is None or cut is None:
        return recent, None
    old = older.read_before(cut, types=types, products=products, subjects=subjects)
    if old.empty:
        return recent, cut
    both = pd.concat([old.astype(recent.dtypes.to_dict()), recent], ignore_index=True)
    both = both.sort_values(["ts", "idempotency_key"], kind="stable", ignore_index=True)
    return both, cut
