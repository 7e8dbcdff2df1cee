"""The metrics engine: metric families over the ledger, full or incremental, into stores.

``compute`` is the pure entry point (an event frame in, metric frames out) that the demo,
the archive replay and the tests use. ``MetricsEngine`` runs the same functions over a
``Ledger``:

* ``recompute(since, until)`` reads each family's event types and rewrites every bucket in
  the range;
* ``update()`` reads what arrived after the last processed ``seq`` (one small SQL
  aggregate), works out per family the earliest bucket those events can change (a payment
  touches its day; an active_use event the next 30 days of MAU; an activation the signup
  cohorts of the N days before it; a subscription event every later day of MRR), reads only
  the input that those buckets depend on, and writes only those buckets (plus every
  product's new days when the ledger's horizon moved). Because the functions are the same
  and stores overwrite by (measurement, tags, time), the result equals a full recompute,
  which the property tests check on random streams.

Families read only their own event types: the 10M-event full recompute never holds the
whole ledger in memory at once, and a family whose types did not change is skipped.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import pandas as pd
import pyarrow as pa

from growthwatch.events import EventType
from growthwatch.frames import EVENT_COLUMNS
from growthwatch.metrics import cohorts, engagement, funnels, kpis, revenue, traffic
from growthwatch.metrics._frame import (
    LEDGER_ORDER,
    LEDGER_UNIQUE,
    PORTFOLIO,
    local_floor_at,
)
from growthwatch.metrics.customers import churn_periods
from growthwatch.metrics.mrr import MRR_TYPES, MrrResult, compute_mrr
from growthwatch.metrics.schema import MEASUREMENTS, to_batch
from growthwatch.metrics.settings import MetricsSettings
from growthwatch.points import PointBatch
from growthwatch.stores.files import write_private
from growthwatch.stores.interfaces import SeriesDeleter
from growthwatch.stores.ledger import SELECT_EXPR, Ledger

log = logging.getLogger(__name__)
Frames = dict[str, pd.DataFrame]
# The engine's state file in a data directory: ``serve`` and ``growthwatch metrics`` share
# it, so either one continues incrementally from where the other stopped.
STATE_FILE = "metrics-state.json"


class Store(Protocol):
    def write(self, data: Any) -> Any: ...


def _union(*groups: Iterable[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(t for g in groups for t in g))


def family_types(settings: MetricsSettings) -> dict[str, tuple[str, ...]]:
    """Event types each family reads."""
    funnel_types = _union(*(funnels.funnel_types(f, settings) for f in settings.funnels))
    known = {t.value for t in EventType}
    return {
        "revenue": revenue.MONEY_TYPES,
        "subscriptions": MRR_TYPES,
        "product": engagement.TYPES,
        "cohorts": (EventType.SIGNUP.value, EventType.ACTIVE_USE.value),
        # kinds as funnel steps need every type; else just the named types
        "funnels": funnel_types if set(funnel_types) <= known else tuple(sorted(known)),
        "traffic": traffic.TYPES,
        "kpis": (EventType.KPI.value,),
    }


# -- the pure part -------------------------------------------------------------------------


def compute_family(
    family: str,
    events: pd.DataFrame,
    settings: MetricsSettings,
    until: pd.Timestamp | None = None,
    first_days: pd.Series | None = None,
    since: pd.Timestamp | None = None,
) -> Frames:
    """Metric frames (keyed by measurement name) of one family from an event frame.

    ``first_days`` and ``since`` are for callers that pass only recent events (from
    ``since`` on): the first event per product (product family) or per (product, currency)
    (revenue) in the whole history, so grids start where a full recompute's would.
    """
    tz = settings.timezone
    if family == "revenue":
        return {
            "revenue_daily": revenue.revenue(events, settings.fx, "D", tz),
            "revenue_hourly": revenue.revenue(events, settings.fx, "h", tz, first_days, since),
        }
    if family == "subscriptions":
        return subscription_frames(compute_mrr(events, settings, until), settings, until)
    if family == "product":
        return {"product_daily": engagement.product_daily(events, settings, until, first_days)}
    if family == "cohorts":
        return {"cohort_retention": cohorts.logo_retention(events, until, tz)}
    if family == "funnels":
        steps, branches = funnels.funnels(events, settings)
        return {"funnel_steps": steps, "funnel_branches": branches}
    if family == "traffic":
        return {"traffic_daily": traffic.traffic_daily(events, tz)}
    if family == "kpis":
        return {"kpi": kpis.kpi_series(events)}
    raise ValueError(f"unknown metric family {family!r}")


def subscription_frames(
    state: MrrResult, settings: MetricsSettings, until: pd.Timestamp | None
) -> Frames:
    """The subscription family's frames from its MRR state (cheap: per-day aggregates)."""
    tz = settings.timezone
    daily = churn_periods(state, "D", tz=tz, until=until)
    if not daily.empty:
        daily["net_change"] = np.round(daily["mrr_end"] - daily["mrr_start"], 6)
    return {
        "mrr_daily": daily,
        "customers_daily": daily,
        "churn_monthly": churn_periods(state, "MS", settings.ltv_months, tz=tz, until=until),
        "churn_yearly": churn_periods(state, "YS", tz=tz, until=until),
        "cohort_retention": cohorts.revenue_retention(state, until, tz),
    }


def compute(
    events: pd.DataFrame, settings: MetricsSettings, until: pd.Timestamp | None = None
) -> Frames:
    """Every metric of every family from one event frame (pure; the demo's entry point).

    ``until`` extends the day grids (MRR, DAU...) to that instant; by default they end with
    the last event of the frame.
    """
    if until is None and not events.empty:
        until = events["ts"].max()
    out: Frames = {}
    for family, types in family_types(settings).items():
        chosen = events[events["type"].isin(list(types))]
        for name, frame in compute_family(family, chosen, settings, until).items():
            out[name] = pd.concat([out[name], frame]) if name in out else frame
    return out


def to_batches(frames: Mapping[str, pd.DataFrame]) -> list[PointBatch]:
    """Metric frames to point batches in the documented schema (empty frames skipped)."""
    return [to_batch(m.name, frames[m.name]) for m in MEASUREMENTS
            if m.name in frames and not frames[m.name].empty]  # fmt: skip


def metric_batches(
    events: pd.DataFrame, settings: MetricsSettings | None = None
) -> list[PointBatch]:
    """``compute`` then ``to_batches``: the one call the demo pipeline needs."""
    return to_batches(compute(events, settings or MetricsSettings()))


# -- the ledger-driven part ----------------------------------------------------------------

_ARROW_TYPES = {
    pa.string(): pd.StringDtype("pyarrow", na_value=np.nan),
    pa.large_string(): pd.StringDtype("pyarrow", na_value=np.nan),
}
# Columns each family's functions use; the rest are read as NULL (memory on 10M events).
_COLUMNS: dict[str, tuple[str, ...]] = {
    "revenue": ("idempotency_key", "product", "type", "ts", "value", "currency"),
    "subscriptions": ("idempotency_key", "product", "type", "ts", "currency", "subject",
                      "mrr_before", "mrr_after", "metadata"),
    "product": ("product", "type", "ts", "subject"),
    "cohorts": ("product", "type", "ts", "subject"),
    "funnels": ("idempotency_key", "product", "type", "ts", "subject", "kind"),
    "traffic": ("idempotency_key", "product", "type", "ts", "value", "subject", "channel"),
    "kpis": ("idempotency_key", "product", "type", "ts", "value", "metadata"),
}  # fmt: skip


def read_events(
    ledger: Ledger,
    types: Sequence[str],
    *,
    start: pd.Timestamp | None = None,
    end: pd.Timestamp | None = None,
    columns: Sequence[str] | None = None,
    ordered: bool = True,
    products: Sequence[str] | None = None,
    seen_from: pd.Timestamp | None = None,
    exclude: Sequence[str] = (),
    subjects: Sequence[str] | None = None,
) -> pd.DataFrame:
    """Events of ``types`` (of ``products``, default all; of ``subjects``, default all) in
    [start, end), in
    ``EVENT_COLUMNS`` layout (unused columns NULL), ordered by time then key (the ledger's
    order) unless ``ordered`` is False. ``seen_from`` keeps only the subjects that also
    have an event of ``types`` at or after that time (in the same product)."""
    wanted = set(columns or EVENT_COLUMNS)
    select = ", ".join(
        f"{SELECT_EXPR[c]} AS {c}" if c in wanted else f"NULL AS {c}" for c in EVENT_COLUMNS
    )
    sql = f"SELECT {select} FROM events WHERE type IN (SELECT unnest(?))"
    params: list[Any] = [list(types)]
    if start is not None:
        sql += " AND ts >= ?"
        params.append(start.to_pydatetime())
    if end is not None:
        sql += " AND ts < ?"
        params.append(end.to_pydatetime())
    if products is not None:
        sql += " AND product IN (SELECT unnest(?))"
        params.append(list(products))
    if exclude:
        sql += " AND product NOT IN (SELECT unnest(?))"
        params.append(list(exclude))
    if subjects is not None:
        sql += " AND subject IN (SELECT unnest(?))"
        params.append(list(subjects))
    if seen_from is not None:
        sql += (
            " AND EXISTS (SELECT 1 FROM events AS later WHERE later.product = events.product"
            " AND later.subject = events.subject AND later.type IN (SELECT unnest(?))"
            " AND later.ts >= ?)"
        )
        params += [list(types), seen_from.to_pydatetime()]
    if ordered:  # counting families skip the sort (and the keys): millions of rows
        sql += " ORDER BY ts, idempotency_key"
    cursor = ledger.connection
    try:
        # Arrow, not .df(): strings stay Arrow strings (pandas' own ``str`` storage), which
        # is several times faster on millions of rows than building Python objects.
        result = cursor.execute(sql, params).arrow()
        table = result if isinstance(result, pa.Table) else result.read_all()
    finally:
        cursor.close()
    frame = table.to_pandas(types_mapper=_ARROW_TYPES.get)
    for col, dtype in EVENT_COLUMNS.items():
        if col in wanted or dtype != "str":
            frame[col] = frame[col].astype(dtype)
        else:
            frame[col] = pd.Series(pd.NA, index=frame.index, dtype="str")
    frame.attrs[LEDGER_ORDER if ordered else LEDGER_UNIQUE] = True
    return frame


@dataclass
class EngineState:
    """What an incremental consumer remembers: the last ledger ``seq`` processed and the
    horizon (latest event time) the day grids were extended to."""

    last_seq: int = 0
    horizon: pd.Timestamp | None = None
    failing: dict[str, str] = field(default_factory=dict)  # product -> why it is left out

    def to_json(self) -> str:
        return json.dumps(
            {"last_seq": self.last_seq,
             "horizon": None if self.horizon is None else self.horizon.isoformat(),
             "failing": self.failing}
        )  # fmt: skip

    @classmethod
    def from_json(cls, text: str) -> EngineState:
        raw = json.loads(text)
        horizon = raw.get("horizon")
        return cls(int(raw.get("last_seq", 0)), None if horizon is None else pd.Timestamp(horizon),
                   dict(raw.get("failing") or {}))  # fmt: skip


@dataclass
class RunResult:
    mode: str  # "full", "incremental" or "noop"
    events: int = 0  # new events seen (incremental) or ledger events (full)
    points: int = 0
    families: dict[str, str] = field(default_factory=dict)  # family -> buckets from
    timings: dict[str, float] = field(default_factory=dict)  # family -> seconds
    seconds: float = 0.0
    # subscription events whose mrr_before is not their subscription's last state (the
    # latest observation won); counted over the history the run recomputed
    chain_breaks: int = 0
    # products left out because their events cannot be valued (a currency without an
    # exchange rate): product -> reason. Every other product's metrics go on.
    failing: dict[str, str] = field(default_factory=dict)


class MetricsEngine:
    """Runs the metric families over a ledger and writes their batches to stores."""

    def __init__(
        self,
        ledger: Ledger,
        settings: MetricsSettings | None = None,
        *,
        state_path: str | Path | None = None,
    ) -> None:
        self.ledger = ledger
        self.settings = settings or MetricsSettings()
        self.state_path = Path(state_path) if state_path is not None else None
        self.failing: dict[str, str] = {}
        self.state = self._load_state()
        # The subscription family's MRR state as of the last run (keyed by the day its
        # grids end), so a long-running engine (``growthwatch serve``) recomputes only the
        # products whose subscriptions changed: a webhook's cancellation costs one product's
        # history, not the portfolio's. It holds a row per customer movement and MRR change
        # (tens of MB for the 10M-event demo), far less than the events it came from.
        self._mrr: tuple[pd.Timestamp, MrrResult] | None = None

    def _events(self, types: Sequence[str], **kwargs: Any) -> pd.DataFrame:
        """``read_events`` of this engine's ledger, without the failing products."""
        return read_events(self.ledger, types, exclude=sorted(self.failing), **kwargs)

    def _check_valuable(self) -> dict[str, str]:
        """Products with money in a currency the exchange-rate table cannot convert.

        One event in such a currency used to raise ``FxError`` for the whole portfolio on
        every run, so one product's missing rate froze every product's metrics. Now that
        product is left out (and said so: logs, ``RunResult.failing``, the state file that
        ``growthwatch status`` reads) and the others are computed. Once the rate is in the
        config, ``growthwatch metrics recompute`` brings the product back.
        """
        known = sorted(self.settings.fx.currencies())
        cursor = self.ledger.connection
        try:
            rows = cursor.execute(
                "SELECT product, string_agg(DISTINCT currency, ', ' ORDER BY currency) FROM events "
                "WHERE currency IS NOT NULL AND currency NOT IN (SELECT unnest(?)) "
                "GROUP BY product ORDER BY product", [known],
            ).fetchall()  # fmt: skip
        finally:
            cursor.close()
        failing = {
            product: f"no exchange rate from {codes} to {self.settings.fx.reporting}: add "
            f"reporting.fx_rates.{codes.split(', ')[0]} to the configuration, then run "
            "`growthwatch metrics recompute`"
            for product, codes in rows
        }
        for product, reason in failing.items():
            if product not in self.failing:
                log.error("metrics of %s are not computed: %s", product, reason)
        return failing

    def _load_state(self) -> EngineState:
        if self.state_path is not None and self.state_path.exists():
            return EngineState.from_json(self.state_path.read_text())
        return EngineState()

    def _save_state(self) -> None:
        self.state.failing = dict(self.failing)
        if self.state_path is not None:
            self.state_path.parent.mkdir(parents=True, exist_ok=True)
            tmp = self.state_path.with_suffix(".tmp")
            write_private(tmp, self.state.to_json().encode())
            tmp.replace(self.state_path)

    def mark_computed(self) -> None:
        """Record that the stores hold a full computation of the ledger as it is now.

        For callers that computed every metric in one pure pass (``compute``) instead of
        through ``recompute`` (the demo): the next ``update`` then continues from here
        instead of recomputing everything.
        """
        summary = self._ledger_summary(None)
        if summary.empty:
            return
        self.state = EngineState(int(summary["seq"].max()), summary["last"].max())
        self._save_state()

    def _ledger_summary(self, after_seq: int | None) -> pd.DataFrame:
        sql = (
            "SELECT product, type, min(ts) AS first, max(ts) AS last, max(seq) AS seq, "
            "count(*) AS n FROM events"
        )
        params: list[Any] = []
        if after_seq is not None:
            sql += " WHERE seq > ?"
            params.append(after_seq)
        cursor = self.ledger.connection
        try:
            frame = cursor.execute(sql + " GROUP BY ALL", params).df()
        finally:
            cursor.close()
        for col in ("first", "last"):
            frame[col] = pd.to_datetime(frame[col], utc=True)
        return frame

    def _first_days(self, types: Sequence[str]) -> pd.Series:
        cursor = self.ledger.connection
        try:
            frame = cursor.execute(
                "SELECT product, min(ts) AS first FROM events WHERE type IN (SELECT unnest(?)) "
                "AND subject IS NOT NULL GROUP BY product",
                [list(types)],
            ).df()
        finally:
            cursor.close()
        # The instant, not its UTC day: the product family takes the day in its timezone.
        return pd.to_datetime(frame.set_index("product")["first"], utc=True)

    def _first_money(self) -> pd.Series:
        """(product, currency) -> first money event: where its hourly revenue grid starts."""
        cursor = self.ledger.connection
        try:
            frame = cursor.execute(
                "SELECT product, currency, min(ts) AS first FROM events WHERE type IN "
                "(SELECT unnest(?)) GROUP BY ALL",
                [list(revenue.MONEY_TYPES)],
            ).df()
        finally:
            cursor.close()
        first = pd.to_datetime(frame["first"], utc=True)
        return pd.Series(first.to_numpy(), index=pd.MultiIndex.from_frame(
            frame[["product", "currency"]]))  # fmt: skip

    def _money_restart(self, after_seq: int) -> pd.Timestamp | None:
        """The earliest previous last money event of a (product, currency) that has new
        ones: the hours between it and the new events become zero rows."""
        cursor = self.ledger.connection
        try:
            row = cursor.execute(
                "SELECT epoch_us(min(prev)) FROM (SELECT max(ts) FILTER (WHERE seq <= ?) AS prev, "
                "max(seq) AS s FROM events WHERE type IN (SELECT unnest(?)) "
                "GROUP BY product, currency HAVING max(seq) > ?)",
                [after_seq, list(revenue.MONEY_TYPES), after_seq],
            ).fetchone()
        finally:
            cursor.close()
        if row is None or row[0] is None:
            return None
        return pd.Timestamp(int(row[0]), unit="us", tz="UTC")

    def _read(
        self,
        family: str,
        types: Sequence[str],
        start: pd.Timestamp | None,
        read_from: pd.Timestamp | None,
    ) -> pd.DataFrame:
        columns = _COLUMNS[family]
        if family == "cohorts" and start is not None:
            # every signup (cohort membership), active use only of the months updated
            month = _bucket_floor("cohort_retention", start, self.settings.timezone)
            both = pd.concat(
                [
                    self._events([EventType.SIGNUP.value], columns=columns,
                                ordered=False),
                    self._events([EventType.ACTIVE_USE.value], start=month,
                                columns=columns, ordered=False),
                ],
                ignore_index=True,
            )  # fmt: skip
            both.attrs.pop(LEDGER_ORDER, None)  # two reads of distinct types: unique, but
            both.attrs[LEDGER_UNIQUE] = True  # not in one (ts, key) order
            return both
        if family == "funnels" and start is not None:
            entry = {f.steps[0] for f in self.settings.funnels}
            if entry <= {t.value for t in EventType}:
                # Rows are per entry month, and an event can only move users who entered
                # before it. So the months from ``start`` on need every event from their
                # first day, and before it only the entry steps of users who have one
                # since (is their entry really in those months?).
                month = _bucket_floor("funnel_steps", start, self.settings.timezone)
                both = pd.concat(
                    [self._events(sorted(entry), end=month, columns=columns,
                                 seen_from=month),
                     self._events(types, start=month, columns=columns)],
                    ignore_index=True,
                )  # fmt: skip
                both.attrs[LEDGER_ORDER] = True  # [.., month) then [month, ..): still ordered
                return both
        ordered = family not in _ORDER_FREE
        return self._events(types, start=read_from, columns=columns, ordered=ordered)

    # -- runs ------------------------------------------------------------------------------

    def recompute(
        self,
        stores: Sequence[Store],
        *,
        since: pd.Timestamp | None = None,
        until: pd.Timestamp | None = None,
    ) -> RunResult:
        """Rewrite every bucket in [since, until) (all history by default)."""
        started = time.perf_counter()
        self.failing = self._check_valuable()
        summary = self._ledger_summary(None)
        result = RunResult("full", events=self.ledger.count(), failing=dict(self.failing))
        if summary.empty:
            return result
        horizon = summary["last"].max()
        touched = {f: since for f in family_types(self.settings)}
        result.points = self._run(stores, touched, None, horizon, since, until, result)
        self.state = EngineState(int(summary["seq"].max()), horizon)
        self._save_state()
        result.seconds = time.perf_counter() - started
        return result

    def update(self, stores: Sequence[Store]) -> RunResult:
        """Process the events appended since the last run; only the buckets they touch."""
        started = time.perf_counter()
        self.failing = self._check_valuable()
        if self.state.last_seq == 0 and self.state.horizon is None:
            return self.recompute(stores)
        new = self._ledger_summary(self.state.last_seq)
        result = RunResult("incremental", events=0, failing=dict(self.failing))
        if new.empty:
            result.mode = "noop"
            return result
        prev = self.state.horizon
        horizon = max(new["last"].max(), prev) if prev is not None else new["last"].max()
        tz = self.settings.timezone
        grew = prev is None or local_floor_at(horizon, "D", tz) > local_floor_at(prev, "D", tz)
        touched: dict[str, pd.Timestamp | None] = {}
        products: dict[str, set[str]] = {}
        for family, types in family_types(self.settings).items():
            rows = new[new["type"].isin(list(types))]
            earliest = rows["first"].min() if not rows.empty else None
            start = _touch_start(family, earliest, self.settings)
            if family == "revenue" and start is not None:
                restart = self._money_restart(self.state.last_seq)  # zero hours since then
                if restart is not None:
                    start = min(start, local_floor_at(restart, "D", tz))
            if family in _GRID_FAMILIES and grew and prev is not None:
                grid_from = local_floor_at(prev, "D", tz)
                if family == "product":  # cohorts whose maturing flag the new day clears
                    days = self.settings.activation_window_days + 1
                    grid_from = local_floor_at(grid_from - pd.Timedelta(days=days), "D", tz)
                start = grid_from if start is None else min(start, grid_from)
            if start is not None:
                touched[family] = start
                products[family] = (
                    {"*"} if grew and family in _GRID_FAMILIES else set(rows["product"])
                )
        result.points = self._run(stores, touched, products, horizon, None, None, result)
        result.events = int(new["n"].sum())
        self.state = EngineState(int(new["seq"].max()), horizon)
        self._save_state()
        result.seconds = time.perf_counter() - started
        return result

    def _run(
        self,
        stores: Sequence[Store],
        touched: Mapping[str, pd.Timestamp | None],
        products: Mapping[str, set[str]] | None,
        horizon: pd.Timestamp,
        since: pd.Timestamp | None,
        until: pd.Timestamp | None,
        result: RunResult,
    ) -> int:
        types = family_types(self.settings)
        points = 0
        for family, start in touched.items():
            began = time.perf_counter()
            keep = None if products is None or "*" in products[family] else products[family]
            if family == "subscriptions":
                frames = self._subscription_frames(types[family], keep, horizon)
                if self._mrr is not None:
                    result.chain_breaks = self._mrr[1].chain_breaks
                if start is not None and self._mrr is not None:
                    # A late event can join a netting group that began earlier (even the
                    # day before): that movement moves, so rewrite from the group's day.
                    start = _netted_start(self._mrr[1].netted, start, self.settings)
            else:
                read_from = _read_start(family, start, self.settings)
                events = self._read(family, types[family], start, read_from)
                first_days = None
                if family == "product":
                    first_days = self._first_days(types[family])
                elif family == "revenue" and read_from is not None:
                    first_days = self._first_money()
                frames = compute_family(family, events, self.settings, horizon, first_days,
                                        read_from)  # fmt: skip
                del events
            lower = start if since is None else since
            batches = []
            for name, frame in frames.items():
                chosen = _select(frame, name, lower, until, keep, self.settings.timezone)
                if not chosen.empty:
                    batches.append(to_batch(name, chosen))
            full = since is None and until is None and lower is None
            for store in stores:
                if isinstance(store, SeriesDeleter):
                    for name in frames:
                        if full or name in _SHRINKING:
                            self._delete(store, name, family, lower, until, keep)
                store.write(batches)
            points += sum(len(b) for b in batches)
            result.families[family] = "all" if lower is None else lower.isoformat()
            result.timings[family] = round(time.perf_counter() - began, 3)
            log.info("metrics %s: %d points from %s", family, points, lower)
        return points

    def _delete(
        self,
        store: SeriesDeleter,
        name: str,
        family: str,
        lower: pd.Timestamp | None,
        until: pd.Timestamp | None,
        keep: set[str] | None,
    ) -> None:
        """Remove what this run rewrites of ``name`` (its range, products and, for the
        shared cohort measurement, basis), so rows that stopped existing do not survive."""
        tags: dict[str, str | list[str]] = {}
        if keep is not None:
            tags["product"] = sorted({*keep, PORTFOLIO})
        if name == "cohort_retention":
            tags["basis"] = "revenue" if family == "subscriptions" else "logo"
        start = None if lower is None else _bucket_floor(name, lower, self.settings.timezone)
        try:
            store.delete(name, tags=tags, start=start, end=until)
        except Exception as exc:  # InfluxDB down or refusing: the write goes on (spooled)
            log.warning("%s: could not delete the range being rewritten (%s); rows that "
                        "stopped existing remain until the next recompute", name, exc)  # fmt: skip

    def _subscription_frames(
        self, types: Sequence[str], keep: set[str] | None, horizon: pd.Timestamp
    ) -> Frames:
        """MRR over each subscription's whole history: of every product on a full run or
        a cold start, else of the changed products only, merged into the kept state."""
        day = local_floor_at(horizon, "D", self.settings.timezone)
        columns = _COLUMNS["subscriptions"]
        cached = self._mrr[1] if self._mrr is not None and self._mrr[0] == day else None
        if keep is None or cached is None:
            state = compute_mrr(self._events(types, columns=columns),
                                self.settings, horizon)  # fmt: skip
        else:
            chosen = sorted(keep)
            events = self._events(types, columns=columns, products=chosen)
            state = cached.with_products_from(compute_mrr(events, self.settings, horizon), chosen)
        self._mrr = (day, state)
        return subscription_frames(state, self.settings, horizon)


_GRID_FAMILIES = frozenset({"subscriptions", "product", "cohorts"})
# Measurements whose rows can stop existing when events arrive (a late signup moves a user
# to an earlier cohort or funnel entry month; a late session re-attributes a signup's
# channel): an update deletes the range it rewrites. The others' rows only ever grow in
# number (day grids from a product's first event, per-event KPI points), so overwriting is
# enough; a full recompute deletes every measurement it writes.
_SHRINKING = frozenset({"cohort_retention", "funnel_steps", "funnel_branches", "traffic_daily"})
_ORDER_FREE = frozenset({"product", "cohorts"})  # counts of distinct users: order irrelevant


def _netted_start(
    netted: pd.DataFrame, start: pd.Timestamp, settings: MetricsSettings
) -> pd.Timestamp:
    """``start`` moved back to the day of any multi-event netting group still open at it."""
    if netted.empty:
        return start
    reaching = netted.loc[netted["end"] >= start, "start"]
    if reaching.empty:
        return start
    return min(start, local_floor_at(pd.Timestamp(reaching.min()), "D", settings.timezone))


def _touch_start(
    family: str, earliest: pd.Timestamp | None, settings: MetricsSettings
) -> pd.Timestamp | None:
    """The earliest bucket start an event at ``earliest`` can change, per family."""
    if earliest is None:
        return None
    tz = settings.timezone
    day = local_floor_at(earliest, "D", tz)
    if family == "product":
        return local_floor_at(day - pd.Timedelta(days=settings.activation_window_days), "D", tz)
    if family == "funnels":
        window = max([f.window_days for f in settings.funnels] or [0])
        return local_floor_at(day - pd.Timedelta(days=window), "D", tz)
    if family == "traffic":  # a signup's session may have begun before its day
        lookback = pd.Timedelta(minutes=traffic.SESSION_MINUTES)
        return local_floor_at(earliest - lookback, "D", tz)
    if family == "kpis":
        return earliest
    return day


def _read_start(
    family: str, start: pd.Timestamp | None, settings: MetricsSettings
) -> pd.Timestamp | None:
    """Where a family's input must begin for buckets from ``start`` on to come out right."""
    if start is None or family in ("subscriptions", "funnels"):
        return None  # state over all history: MRR per subscription, first funnel entry
    if family == "product":
        return start - pd.Timedelta(days=max(engagement.WINDOWS.values()))
    if family == "cohorts":
        return None  # signups of every cohort; the active-use events are filtered below
    if family == "traffic":  # the sessions of the first signups of ``start``'s day
        return start - pd.Timedelta(minutes=traffic.SESSION_MINUTES)
    return start


def _period_start(frame: pd.DataFrame, name: str) -> pd.Series:
    """The bucket start that decides whether a row is in the updated range."""
    if name == "cohort_retention":
        return frame["period"]
    return frame["time"]


def _select(
    frame: pd.DataFrame,
    name: str,
    lower: pd.Timestamp | None,
    until: pd.Timestamp | None,
    products: set[str] | None,
    tz: str = "UTC",
) -> pd.DataFrame:
    """The rows a run writes: cells from ``lower``'s bucket on (by the cell's own month
    for cohorts), before ``until`` by their time (every row a delete of [lower, until)
    removes is rewritten), of ``products`` and the portfolio."""
    if frame.empty:
        return frame
    keep = np.ones(len(frame), dtype=bool)
    when = _period_start(frame, name)
    if lower is not None:
        floor = _bucket_floor(name, lower, tz)
        keep &= (when >= floor).to_numpy()
    if until is not None:
        keep &= (frame["time"] < until).to_numpy()
    if products is not None:
        keep &= frame["product"].isin([*products, PORTFOLIO]).to_numpy()
    return frame[keep]


def _bucket_floor(name: str, at: pd.Timestamp, tz: str = "UTC") -> pd.Timestamp:
    """The start of the bucket of ``name`` that contains ``at`` (hours UTC, the rest in
    the reporting timezone)."""
    spec = {m.name: m for m in MEASUREMENTS}[name]
    if spec.bucket == "hour":
        return at.floor("h")
    if spec.bucket == "day":
        return local_floor_at(at, "D", tz)
    if spec.bucket in ("month", "cohort month"):
        return local_floor_at(at, "MS", tz)
    if spec.bucket == "year":
        return local_floor_at(at, "YS", tz)
    return at
