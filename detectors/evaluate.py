"""From stores and ledger to findings: what ``serve``, ``detect backtest`` and the demo run.

Two paths per watched metric:

- **intraday** (count fields backed by one ledger event type: cancellations, payments,
  failed payments, signups): the running day and hour from the events
  (``detectors.intraday``), explained by the segments that drive the excess;
- **series** (everything else): the metric series from a ``SeriesReader``, each complete
  bucket judged causally (``detectors.causal``) at the moment it closes.

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

from detectors import explain, intraday
from detectors.alerts import AlertBook, Finding, Transition
from detectors.causal import replay
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
                keep[np.searchsorted(ts, day) : np.searchsorted(ts, day + intraday.DAY)] = True
            chosen = events.iloc[order[np.flatnonzero(keep)]]
            segments[model.day_start] = explain.segment_frame(chosen, settings.segments)
        return segments[model.day_start]

    days = np.array([intraday.judged_day(m) for m in moments])
    for day in np.unique(days):
        model = model_of(int(day))
        if model is None:
            continue
        nows_day = np.array(moments)[days == day]
        for r in intraday.intraday_many(ts, nows_day, model, cfg, model_of(int(day) - intraday.DAY)):
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
    by = f"by {when:%H:%M}" if r.window == "day" else f"in the {minutes} min to {when:%H:%M}"
    top = None
    if severity and baseline_of is not None and r.observed > r.expected:
        lo, hi = np.searchsorted(ts, r.since), np.searchsorted(ts, r.time)
        window = explain.segment_frame(events.iloc[order[lo:hi]], settings.segments)
        found = explain.segment_drivers(window, baseline_of(model), r.expected, settings.segments)
        top = found[0] if found else None
    return explain.sentence(label, r.observed, r.expected, r.lower, r.upper, by, top)


def series_frame(
    reader: SeriesReader, metric: WatchedMetric, product: str, start: datetime | None,
    end: datetime,
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
        if bucket is not None:
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
    for segment, series in series_frame(reader, metric, product, since - history, until).items():
        if series.empty:
            continue
        rows = replay(series, make, metric.policy, since=pd.Timestamp(since) - bucket)
        for time, row in rows.iterrows():
            if not np.isfinite(row["score"]):
                continue
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
            else:
                findings += series_findings(reader, metric, settings, product,
                                            since=since, until=until)  # fmt: skip
    findings.sort(key=lambda f: (f.time, f.key))
    return [t for f in findings if (t := book.observe(f)) is not None]
