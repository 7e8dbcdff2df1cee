"""The one interface of a metric family: what it reads, what it writes, how far back an
event reaches.

A family is one object that the engine loops over (``growthwatch.metrics.engine``): its
event types and ledger columns, the measurements it writes, its pure ``compute`` and the
few facts an incremental update needs (which buckets a new event can change, how far
before them the input must start, whether its day grids grow with the horizon, which of
its measurements can lose rows). The defaults fit a family whose rows are per-day
aggregates of that day's events; a family overrides only what differs.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import ClassVar

import pandas as pd

from growthwatch.metrics._frame import local_floor_at
from growthwatch.metrics.family_state import Kept
from growthwatch.metrics.reads import LedgerView
from growthwatch.metrics.settings import MetricsSettings

Frames = dict[str, pd.DataFrame]

__all__ = ["Computed", "Family", "Frames", "LedgerView", "Scope"]


@dataclass(frozen=True)
class Scope:
    """What a family's ``compute`` knows besides its events."""

    settings: MetricsSettings
    until: pd.Timestamp | None  # the instant the day grids run to
    since: pd.Timestamp | None = None  # the events start here (None: all history)
    first_days: pd.Series | None = None  # where the whole history's grids start


@dataclass
class Computed:
    """One family's output of a run: its frames, the bucket its rewrite starts from (a
    family may move it back) and counters the run reports."""

    frames: Frames
    start: pd.Timestamp | None
    counters: dict[str, int] = field(default_factory=dict)
    # the rewrite covers every product, not only those whose events arrived (a family whose
    # rows depend on the whole portfolio, e.g. the segment values it keeps)
    all_products: bool = False
    # nothing of this run differs from what the stores hold (the family's state did not
    # move, and the last run wrote what it holds): the engine writes and deletes nothing
    unchanged: bool = False


class Family:
    """A metric family. Subclass it in a module of ``growthwatch.metrics.families``: the
    registry finds it there (``families.load``)."""

    name: ClassVar[str]
    columns: ClassVar[tuple[str, ...]]  # the ledger columns ``compute`` uses (others NULL)
    measurements: ClassVar[tuple[str, ...]]  # what it writes (each in metrics.schema)
    ordered: ClassVar[bool] = True  # compute needs the ledger's (ts, key) order
    grid: ClassVar[bool] = False  # its day grids run to the horizon: a new day rewrites all
    # measurements whose rows can stop existing when events arrive (a late signup moves a
    # user to an earlier cohort): an update deletes the range it rewrites first
    shrinking: ClassVar[frozenset[str]] = frozenset()
    # tags that tell this family's rows apart in a measurement another family writes too
    owns: ClassVar[Mapping[str, Mapping[str, str]]] = {}
    # False: too costly to run on every webhook; a live update defers it to the next
    # update that is not live (``MetricsEngine.update(live=...)``)
    live: ClassVar[bool] = True
    # totals kept between runs (``family_state.Kept``), if any: an update leaves their
    # copy in the ledger file to ``MetricsEngine.release`` (idle time)
    kept: Kept | None = None

    def types(self, settings: MetricsSettings) -> tuple[str, ...]:
        """The event types it reads."""
        raise NotImplementedError

    def held(self, settings: MetricsSettings) -> tuple[str, ...]:
        """The event types a run holds in memory (what ``metrics.memory_limit_mb``
        bounds): all it reads, unless it aggregates some in SQL."""
        return self.types(settings)

    def compute(self, events: pd.DataFrame, scope: Scope) -> Frames:
        """Its metric frames (keyed by measurement) from an event frame of its types
        (pure; what else it needs to know is in ``scope``)."""
        raise NotImplementedError

    # -- what an incremental update needs ------------------------------------------------

    def touch_start(self, earliest: pd.Timestamp, view: LedgerView) -> pd.Timestamp | None:
        """The earliest bucket start that new events from ``earliest`` on can change."""
        return local_floor_at(earliest, "D", view.settings.timezone)

    def grid_start(self, previous: pd.Timestamp, settings: MetricsSettings) -> pd.Timestamp:
        """Where a ``grid`` family rewrites from when the horizon passes into a new day
        (``previous``: the horizon before)."""
        return local_floor_at(previous, "D", settings.timezone)

    def read_start(
        self, start: pd.Timestamp | None, settings: MetricsSettings
    ) -> pd.Timestamp | None:
        """Where its input must begin for the buckets from ``start`` on to come out right
        (None: all history)."""
        return start

    def read(
        self, view: LedgerView, start: pd.Timestamp | None, read_from: pd.Timestamp | None
    ) -> pd.DataFrame:
        """Its input for a rewrite from ``start``: by default its events from ``read_from``."""
        return view.events(self.types(view.settings), start=read_from, columns=self.columns,
                           ordered=self.ordered)  # fmt: skip

    def first_days(self, view: LedgerView, read_from: pd.Timestamp | None) -> pd.Series | None:
        """What ``compute`` needs of the history before ``read_from`` to start its grids
        where a full recompute would (None: nothing)."""
        return None

    def run(
        self,
        view: LedgerView,
        start: pd.Timestamp | None,
        products: set[str] | None,
        horizon: pd.Timestamp,
    ) -> Computed:
        """Read and compute for a rewrite from ``start`` (None: everything) of ``products``
        (None: all). A family with state between runs overrides this."""
        read_from = self.read_start(start, view.settings)
        events = self.read(view, start, read_from)
        scope = Scope(view.settings, horizon, read_from, self.first_days(view, read_from))
        return Computed(self.compute(events, scope), start)
