"""From stores and ledger to findings: what ``serve``, ``detect backtest`` and the demo run.

Two paths per watched metric:

- **intraday** (count fields backed by one ledger event type: cancellations, payments,
  failed payments, signups): the running day and hour from the events
  (``detectors.intraday``), explained by the segments that drive the excess;
- **intraday amounts** (daily revenue fields: ``settings.AMOUNT_EVENT_TYPES``): the
  running day's sum of payments (``detectors.intraday_amounts``), next to the daily
  series judged at each close;
- **series** (everything else): the metric series from a ``SeriesReader``, each complete
  bucket judged causally (``detectors.causal``) at the moment it closes.

Days are days of ``reporting.timezone`` (``DetectorSettings.timezone``): daily series are
complete local days (23 or 25 hours at DST), each judged at its own local midnight.

Missing buckets of a daily/hourly measurement count as 0 (no payment that day is a zero,
and a tracking outage shows up as one). Tags other than product and currency split a
series into segments (``channel=social``); currencies are summed.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd

from detectors import explain, intraday, intraday_amounts
from detectors.alerts import AlertBook, Finding, Transition
from detectors.causal import replay
from detectors.days import Days
from detectors.settings import DetectorSettings, WatchedMetric, make_detector
from growthwatch import Ledger, MetricRef, SeriesReader

BUCKETS = {"day": pd.Timedelta(days=1), "hour": pd.Timedelta(hours=1)}
LABELS = {"subscription_cancelled": "cancellations", "payment": "payments",
          "payment_failed": "failed payments", "signup": "signups", "activation": "activations"}  # fmt: skip


def _ns(moment: datetime | pd.Timestamp) -> int:
    return int(pd.Timestamp(moment).value)


def intraday_findings(
    ledger: Ledger, metric: WatchedMetric, settings: DetectorSettings, product: str,
    nows: Iterable[datetime], *, events: pd.DataFrame | None = None,
) -> list[Finding]:
    """Judge ``metric`` of ``product`` at each moment of ``nows`` from the ledger's events."""
    moments = sorted(_ns(n) for n in nows)
    if not moments or metric.event_type is None:
        return []
    cfg = settings.intraday_settings(metric)
    days_of = cfg.days
    if events is None:
        start = pd.Timestamp(moments[0] - (cfg.baseline_days + 2) * intraday.DAY, tz="UTC")
        events = ledger.read(products=product, types=metric.event_type,
                             start=start.to_pydatetime(),
                             end=pd.Timestamp(moments[-1], tz="UTC").to_pydatetime())  # fmt: skip
    ts = events["ts"].to_numpy(dtype="datetime64[ns]").astype("int64")
    order = np.argsort(ts, kind="stable")
    ts = ts[order]
    out: list[Finding] = []
    models: dict[int, intraday.DayModel | None] = {}

    def model_of(day: int) -> intraday.DayModel | None:
        if day not in models:
            models[day] = intraday.day_model(ts, day, cfg)
        return models[day]

    segments: dict[int, pd.DataFrame] = {}  # baseline events split by dimension, per day

    def baseline_of(model: intraday.DayModel) -> pd.DataFrame:
        if model.day_start not in segments:
            keep = np.zeros(len(ts), dtype=bool)
            for day in model.kept_days:
                keep[np.searchsorted(ts, day) : np.searchsorted(ts, days_of.next(day))] = True
            chosen = events.iloc[order[np.flatnonzero(keep)]]
            segments[model.day_start] = explain.segment_frame(chosen, settings.segments)
        return segments[model.day_start]

    days = days_of.judged(np.array(moments, dtype="int64"))
    for day in np.unique(days):
        model = model_of(int(day))
        if model is None:
            continue
        nows_day = np.array(moments)[days == day]
        prev = model_of(int(days_of.previous(int(day), 1)[0]))
        earlier = intraday.earlier_models(model_of, int(day), cfg)
        for r in intraday.intraday_many(ts, nows_day, model, cfg, prev, earlier):
            severity = metric.policy.severity(r.score)
            text = _explain_intraday(events, ts, order, r, metric, settings, severity,
                                     baseline_of if severity else None, model)  # fmt: skip
            out.append(Finding(product, metric.name, "all", _dt(r.time), r.observed, r.expected,
                               r.lower, r.upper, r.score, severity, "counts_intraday", text))  # fmt: skip
    return out


def _explain_intraday(
    events: pd.DataFrame, ts: np.ndarray, order: np.ndarray, r: intraday.IntradayResult,
    metric: WatchedMetric, settings: DetectorSettings, severity: str,
    baseline_of: Any, model: intraday.DayModel,
) -> str:
    label = LABELS.get(metric.event_type or "", metric.ref.field)
    when = _dt(r.time)
    minutes = int(settings.intraday_window.total_seconds() // 60)
    when = when.astimezone(_zone(settings.timezone))
    if r.window == "day":
        by = f"by {when:%H:%M}"
    elif r.window == "days":
        by = f"since {_dt(r.since).astimezone(when.tzinfo):%Y-%m-%d}, by {when:%H:%M}"
    else:
        by = f"in the {minutes} min to {when:%H:%M}"
    top = None
    if severity and baseline_of is not None and r.observed > r.expected:
        lo, hi = np.searchsorted(ts, r.since), np.searchsorted(ts, r.time)
        window = explain.segment_frame(events.iloc[order[lo:hi]], settings.segments)
        found = explain.segment_drivers(window, baseline_of(model), r.expected, settings.segments)
        top = found[0] if found else None
    return explain.sentence(label, r.observed, r.expected, r.lower, r.upper, by, top)


def amount_findings(
    ledger: Ledger, metric: WatchedMetric, settings: DetectorSettings, product: str,
    nows: Iterable[datetime], *, events: pd.DataFrame | None = None,
) -> list[Finding]:
    """Judge the running day's sum of ``metric``'s event amounts (payments) at each of
    ``nows`` (``detectors.intraday_amounts``). Amounts are summed in their own currency,
    so a product paid in several currencies is left to the daily series (said in the
    README)."""
    moments = sorted(_ns(n) for n in nows)
    if not moments or metric.amount_event_type is None:
        return []
    cfg = settings.intraday_settings(metric)
    if events is None:
        start = pd.Timestamp(moments[0] - (cfg.baseline_days + 2) * intraday.DAY, tz="UTC")
        events = ledger.read(products=product, types=metric.amount_event_type,
                             start=start.to_pydatetime(),
                             end=pd.Timestamp(moments[-1], tz="UTC").to_pydatetime())  # fmt: skip
    if events.empty or events["currency"].nunique() > 1:
        return []
    ts = events["ts"].to_numpy(dtype="datetime64[ns]").astype("int64")
    amounts = np.array([float(v) for v in events["value"]], dtype=float)
    order = np.argsort(ts, kind="stable")
    ts, amounts = ts[order], amounts[order]
    cum = np.concatenate([[0.0], np.cumsum(amounts)])
    days = cfg.days.judged(np.array(moments, dtype="int64"))
    label = metric.ref.field.replace("_", " ")
    zone = _zone(settings.timezone)
    out: list[Finding] = []
    for day in np.unique(days):
        model = intraday_amounts.amount_day_model(ts, amounts, int(day), cfg)
        if model is None:
            continue
        nows_day = np.array(moments)[days == day]
        for r in intraday_amounts.amounts_many(ts, cum, nows_day, model, cfg):
            severity = metric.policy.severity(r.score)
            text = explain.sentence(f"{label} (payments so far)", r.observed, r.expected,
                                    r.lower, r.upper, f"by {_dt(r.time).astimezone(zone):%H:%M}")  # fmt: skip
            out.append(Finding(product, metric.name, "all", _dt(r.time), r.observed, r.expected,
                               r.lower, r.upper, r.score, severity, "amounts_intraday", text))  # fmt: skip
    return out


def _zone(name: str) -> Any:
    from zoneinfo import ZoneInfo

    return UTC if name in ("UTC", "Etc/UTC") else ZoneInfo(name)


def series_frame(
    reader: SeriesReader, metric: WatchedMetric, product: str, start: datetime | None,
    end: datetime, timezone: str = "UTC",
) -> dict[str, pd.Series]:
    """Per segment, the metric series of ``product`` up to ``end`` (complete buckets only)."""
    ref = metric.ref
    tags = {"product": product, **ref.tags}
    frame = reader.read(ref.measurement, fields=[ref.field], tags=tags, start=start, end=end)
    if frame.empty or ref.field not in frame:
        return {}
    bucket = BUCKETS.get(ref.spec.bucket)
    split = [t for t in ref.spec.tags if t not in ("product", "currency") and t not in ref.tags]
    out: dict[str, pd.Series] = {}
    groups = frame.groupby(split) if split else [((), frame)]
    for key, group in groups:
        values = key if isinstance(key, tuple) else (key,)
        segment = ",".join(f"{k}={v}" for k, v in zip(split, values, strict=True)) or "all"
        series = group.groupby("time")[ref.field].sum(min_count=1).sort_index()
        series.index = pd.DatetimeIndex(series.index).tz_convert("UTC")
        if bucket is not None and ref.spec.bucket == "day" and timezone != "UTC":
            # days of the reporting zone: calendar days (23 or 25 hours at DST)
            local = series.index.tz_convert(timezone)
            last_day = (pd.Timestamp(end).tz_convert(timezone) - pd.Timedelta(1, "ns")).normalize()
            full = pd.date_range(local[0], last_day - pd.DateOffset(days=1), freq="D").tz_convert("UTC")
            series = series[series.index <= full[-1]].reindex(full, fill_value=0.0) if len(full) else series.iloc[:0]
        elif bucket is not None:
            last = (pd.Timestamp(end) - bucket).floor(bucket)
            full = pd.date_range(series.index[0], last, freq=bucket)
            series = series[series.index <= last].reindex(full, fill_value=0.0)
        out[segment] = series.astype(float)
    return out


def daily_twin(metric: WatchedMetric) -> WatchedMetric:
    """The daily series of an event-backed count, judged at each day's close alongside the
    intraday judgement (a slow drift no single hour shows); same alert key."""
    if metric.ref.spec.bucket == "day":
        return metric
    if metric.ref.measurement == "revenue_hourly":
        return replace(metric, ref=MetricRef("revenue_daily", metric.ref.field, metric.ref.tags))
    return metric


def series_findings(
    reader: SeriesReader, metric: WatchedMetric, settings: DetectorSettings, product: str,
    *, since: datetime, until: datetime, as_metric: str | None = None,
) -> list[Finding]:
    """Every complete bucket in ``[since, until)`` judged causally, at the moment it closed."""
    bucket = BUCKETS.get(metric.ref.spec.bucket, pd.Timedelta(0))
    history = timedelta(days=settings.baseline_days * 3 + 30)
    out: list[Finding] = []
    make = make_detector(metric, settings)
    method = make().name
    days = Days(settings.timezone)
    frames = series_frame(reader, metric, product, since - history, until, settings.timezone)
    for segment, series in frames.items():
        if series.empty:
            continue
        rows = replay(series, make, metric.policy, since=pd.Timestamp(since) - bucket)
        for time, row in rows.iterrows():
            if not np.isfinite(row["score"]):
                continue
            if metric.ref.spec.bucket == "day":
                closed = _dt(days.next(int(time.value)))
            else:
                closed = (time + bucket).to_pydatetime()
            label = metric.ref.field.replace("_", " ")
            text = explain.sentence(label, row["value"], row["expected"], row["lower"],
                                    row["upper"], f"on {time:%Y-%m-%d}" if bucket >= BUCKETS["day"]
                                    else f"at {time:%Y-%m-%d %H:%M}")  # fmt: skip
            out.append(Finding(product, as_metric or metric.name, segment, closed, float(row["value"]),
                               float(row["expected"]), float(row["lower"]), float(row["upper"]),
                               float(row["score"]), str(row["severity"]), method, text))  # fmt: skip
    return out


def _dt(ns: int) -> datetime:
    return datetime.fromtimestamp(ns / 1e9, UTC)


def backtest(
    ledger: Ledger | None, reader: SeriesReader, settings: DetectorSettings, products: list[str],
    *, since: datetime, until: datetime, book: AlertBook | None = None, step_minutes: int = 60,
) -> list[Transition]:
    """What would have fired in ``[since, until)``: the transitions of a fresh alert book."""
    book = book or AlertBook(resolve_after=settings.resolve_after, cooldown=settings.cooldown)
    findings: list[Finding] = []
    step = timedelta(minutes=step_minutes)
    nows = []
    moment = since + step
    while moment <= until:
        nows.append(moment)
        moment += step
    for product in products:
        for metric in settings.metrics:
            if settings.intraday and metric.event_type is not None and ledger is not None:
                findings += intraday_findings(ledger, metric, settings, product, nows)
                findings += series_findings(reader, daily_twin(metric), settings, product,
                                            since=since, until=until, as_metric=metric.name)  # fmt: skip
            elif settings.intraday and metric.amount_event_type is not None and ledger is not None:
                findings += amount_findings(ledger, metric, settings, product, nows)
                findings += series_findings(reader, metric, settings, product,
                                            since=since, until=until)  # fmt: skip
            else:
                findings += series_findings(reader, metric, settings, product,
                                            since=since, until=until)  # fmt: skip
    findings.sort(key=lambda f: (f.time, f.key))
    return [t for f in findings if (t := book.observe(f)) is not None]
