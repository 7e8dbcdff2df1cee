"""The knobs of the metric definitions, read from the ``metrics`` config section.

Kept in one frozen object so every metric function receives the same policy explicitly
(pure functions, no global config) and a test can state the policy it checks.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from growthwatch.metrics.fx import FxTable

# Event types that can be "the next thing a user did instead" in a funnel's branches:
# per-user, low-volume types. active_use, session and kpi are excluded (volume / no user).
DEFAULT_BRANCH_TYPES: tuple[str, ...] = (
    "signup",
    "activation",
    "trial_started",
    "subscription_started",
    "payment",
    "payment_failed",
    "subscription_cancelled",
    "refund",
)


@dataclass(frozen=True)
class Funnel:
    name: str
    steps: tuple[str, ...]  # event types (or event kinds) in order
    window_days: int = 14


BUILTIN_SEGMENTS: tuple[str, ...] = ("plan", "interval", "country", "channel")


@dataclass(frozen=True)
class SegmentSettings:
    """Which dimensions get segment series and how many values each keeps
    (``metrics.segments``; see ``growthwatch.metrics.segments``)."""

    dimensions: tuple[str, ...] = BUILTIN_SEGMENTS
    max_values: int = 50


# Peak memory per event held by a family run (input frame plus the intermediates of its
# maths), measured on the demo: the product family, the heaviest, peaks near this (at 600
# its chunks of the 100M-event ledger took the recompute to 2,098 MiB at a 2048 limit).
BYTES_PER_EVENT = 700
MIN_CHUNK_EVENTS = 10_000  # below this a chunk's fixed cost dominates; tests go lower by hand
DEFAULT_MEMORY_LIMIT_MB = 2048  # fits a 2-core, 8 GB machine beside InfluxDB and Grafana
# What the process holds before any family runs (the interpreter, numpy, pandas, DuckDB,
# the engine's caches): 170 MB measured at the start of a 10M-event recompute.
BASELINE_MB = 256
MIN_SHARE_MB = 64


def series_share_mb(limit_mb: int) -> int:
    """The embedded series store's DuckDB part of a metrics memory limit: a sixteenth
    (it takes a chunk's points at a time), at least ``MIN_SHARE_MB``."""
    return max(MIN_SHARE_MB, limit_mb // 16)


def duckdb_share_mb(limit_mb: int) -> int:
    """The ledger DuckDB's part of a metrics memory limit: half of what the baseline and
    the series store leave (the volume is counted in SQL), at least ``MIN_SHARE_MB``.

    The three parts and the baseline add up to the limit because they are held at the
    same time: DuckDB keeps its buffers between queries, so a pandas family running after
    an SQL one finds them still taken (a 10M-event recompute peaked at 2.5 GB with half of
    2048 to each DuckDB and half to pandas)."""
    return max(MIN_SHARE_MB, (limit_mb - BASELINE_MB - series_share_mb(limit_mb)) // 2)


def chunk_events_for(limit_mb: int) -> int:
    """Events a family run may hold at once within ``limit_mb``: what the baseline and both
    DuckDB shares leave, at ``BYTES_PER_EVENT`` each."""
    rest = limit_mb - BASELINE_MB - series_share_mb(limit_mb) - duckdb_share_mb(limit_mb)
    return max(MIN_CHUNK_EVENTS, int(max(MIN_SHARE_MB, rest) * 2**20 / BYTES_PER_EVENT))


@dataclass(frozen=True)
class MetricsSettings:
    fx: FxTable = field(default_factory=FxTable)
    activation_window_days: int = 7
    funnel_window_days: int = 14
    movement_netting_minutes: int = 60
    ltv_months: int = 6
    funnels: tuple[Funnel, ...] = ()
    branch_types: tuple[str, ...] = DEFAULT_BRANCH_TYPES
    # IANA zone of the day, month and year buckets (``reporting.timezone``); hours stay UTC.
    timezone: str = "UTC"
    # a trial converts when its customer reaches a paid period within this many days
    trial_conversion_days: int = 30
    segments: SegmentSettings = field(default_factory=SegmentSettings)
    # The memory a metrics run may use (``metrics.memory_limit_mb``): the ledger DuckDB's
    # own limit (``duckdb_memory_mb``; it spills beyond it), the series store's
    # (``series_memory_limit``) and how many events one family run holds in pandas at once
    # (``chunk_events``), with ``BASELINE_MB`` for the rest. None: DuckDB unlimited.
    memory_limit_mb: int | None = None
    chunk_events: int = field(default_factory=lambda: chunk_events_for(DEFAULT_MEMORY_LIMIT_MB))

    @property
    def duckdb_memory_mb(self) -> int | None:
        return None if self.memory_limit_mb is None else duckdb_share_mb(self.memory_limit_mb)

    @property
    def series_memory_limit(self) -> str | None:
        """The embedded series store's DuckDB limit (``SeriesStore(memory_limit=...)``):
        its own share of ``memory_limit_mb`` (``series_share_mb``)."""
        limit = self.memory_limit_mb
        return None if limit is None else f"{series_share_mb(limit)}MB"

    @property
    def reporting_currency(self) -> str:
        return self.fx.reporting

    @classmethod
    def from_config(cls, config: Any) -> MetricsSettings:
        """Build from a ``growthwatch.config.Config``."""
        section = config.section("metrics")
        window = int(section.get("funnel_window_days", 14))
        funnels = tuple(
            Funnel(
                name=str(f["name"]),
                steps=tuple(str(s) for s in f["steps"]),
                window_days=int(f.get("window_days", window)),
            )
            for f in section.get("funnels") or ()
        )
        limit = int(section.get("memory_limit_mb", DEFAULT_MEMORY_LIMIT_MB))
        return cls(
            fx=FxTable(config.reporting_currency, dict(config.fx_rates)),
            activation_window_days=int(section.get("activation_window_days", 7)),
            funnel_window_days=window,
            movement_netting_minutes=int(section.get("movement_netting_minutes", 60)),
            ltv_months=int(section.get("ltv_months", 6)),
            funnels=funnels,
            branch_types=tuple(section.get("branch_types") or DEFAULT_BRANCH_TYPES),
            timezone=str(getattr(config, "timezone", None) or "UTC"),
            trial_conversion_days=int(section.get("trial_conversion_days", 30)),
            segments=_segments(section.get("segments")),
            memory_limit_mb=limit,
            chunk_events=chunk_events_for(limit),
        )


def _segments(raw: Any) -> SegmentSettings:
    """``metrics.segments``: ``{dimensions: [...], max_values: N}`` (both optional; the
    schema validates them); ``dimensions: []`` for no segment series."""
    if raw is None:
        return SegmentSettings()
    dims = raw.get("dimensions")
    return SegmentSettings(
        dimensions=BUILTIN_SEGMENTS if dims is None else tuple(str(d) for d in dims),
        max_values=int(raw.get("max_values", 50)),
    )
