"""The metric series schema: measurement names, tags and fields (see docs/metrics.md).

One table in code, used both to build ``PointBatch`` objects and to document the InfluxDB
schema, so the two cannot drift. Tags are low-cardinality dimensions only (product,
currency, channel, funnel, step, cohort basis and age, KPI name); customer ids never are.
Portfolio rows use ``product = all``, in the reporting currency.

Field types are fixed per field (InfluxDB rejects a field whose type changes within a
shard): counts are integers, amounts and rates floats. Undefined rates (a zero
denominator) are NaN and are simply not written.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import pandas as pd

from growthwatch.metrics._frame import local_floor_at
from growthwatch.points import PointBatch


@dataclass(frozen=True)
class Measurement:
    name: str
    family: str  # which metric function produces it (for incremental updates)
    tags: tuple[str, ...]
    ints: tuple[str, ...]
    floats: tuple[str, ...]
    bucket: str  # "hour", "day", "week" (ISO), "month", "year", "cohort month" or "event"
    rename: Mapping[str, str] | None = None  # frame column -> field name

    @property
    def fields(self) -> tuple[str, ...]:
        return self.ints + self.floats


_REVENUE_DAILY = Measurement(
    "revenue_daily", "revenue", ("product", "currency"),
    ("payments", "refund_count", "failed_count"),
    ("gross", "refunds", "net", "failed", "gross_rc", "refunds_rc", "net_rc"), "day",
)
_MRR_DAILY = Measurement(
    "mrr_daily", "subscriptions", ("product",), (),
    ("mrr", "new", "expansion", "contraction", "churn", "reactivation", "fx_impact",
     "net_change", "paused", "resumed", "paused_mrr", "arr", "churn_voluntary",
     "churn_delinquent"), "day", {"mrr_end": "mrr"},
)
_CUSTOMERS_DAILY = Measurement(
    "customers_daily", "subscriptions", ("product",),
    ("active", "active_start", "new", "reactivated", "churned", "churned_from_start",
     "cancellations", "paused", "churned_delinquent"),
    ("churn_rate", "arpa"), "day",
    {"customers_end": "active", "customers_start": "active_start",
     "customers_paused": "paused",
     "new_customers": "new", "reactivated_customers": "reactivated",
     "churned_customers": "churned", "churned": "churned_from_start",
     "customer_churn_rate": "churn_rate"},
)
_CHURN = {
    period: Measurement(
        f"churn_{period}", "subscriptions", ("product",),
        ("customers_start", "customers_end", "churned", "new_customers",
         "reactivated_customers", "churned_customers", "customers_paused", "partial",
         "churned_delinquent"),
        ("mrr_start", "mrr_end", "new", "expansion", "contraction", "churn",
         "reactivation", "fx_impact", "customer_churn_rate", "gross_mrr_churn_rate",
         "net_mrr_churn_rate", "grr", "nrr", "arpa", *(("ltv",) if period == "monthly"
                                                       else ()),
         "paused", "resumed", "paused_mrr", "nrr_t12m", "grr_t12m",
         *(("arr", "asp", "quick_ratio") if period == "monthly" else ()),
         "churn_voluntary", "churn_delinquent"),
        bucket,
    )
    for period, bucket in (("monthly", "month"), ("yearly", "year"))
}
# a plan change's MRR moved between two segments (net zero in the product)
_MOVED = ("moved_in", "moved_out")


def _segments_of(
    base: Measurement, name: str, *, more: tuple[str, ...] = (), without: tuple[str, ...] = ()
) -> Measurement:
    """A product measurement's segment twin: the same fields (plus ``more``, less
    ``without``), tagged ``dimension`` and ``segment`` as well."""
    return replace(
        base, name=name, family="segments", tags=(*base.tags, "dimension", "segment"),
        floats=tuple(f for f in base.floats if f not in without) + more,
    )  # fmt: skip


MEASUREMENTS: tuple[Measurement, ...] = (
    _REVENUE_DAILY,
    replace(_REVENUE_DAILY, name="revenue_hourly", bucket="hour"),
    _MRR_DAILY,
    _CUSTOMERS_DAILY,
    *_CHURN.values(),
    # Segment series (issue #14): the product figures split by plan, billing interval,
    # country, channel or a custom attribute; new measurements, so queries that sum a
    # product measurement's series never double count (see growthwatch/metrics/segments.py)
    _segments_of(_MRR_DAILY, "mrr_segments_daily", more=_MOVED),
    _segments_of(_CUSTOMERS_DAILY, "customers_segments_daily"),
    _segments_of(_CHURN["monthly"], "churn_segments_monthly", more=_MOVED),
    # failed-payment amounts are not split per segment, only their count
    _segments_of(_REVENUE_DAILY, "revenue_segments_daily", without=("failed",)),
    Measurement(
        "product_daily", "product", ("product",),
        ("signups", "activations", "activated", "dau", "wau", "mau", "maturing"),
        ("activation_rate", "stickiness"), "day",
    ),
    Measurement(
        "trials_daily", "trials", ("product",),
        ("trials_started", "trials_converted", "active_trials", "maturing"),
        ("trial_conversion",), "day",
    ),
    Measurement(
        "trials_monthly", "trials", ("product",),
        ("trials_started", "trials_converted", "maturing"), ("trial_conversion",), "month",
    ),
    *(
        Measurement(
            f"lifecycle_{name}", "lifecycle", ("product",),
            ("active", "new", "returning", "resurrected", "dormant"), (), bucket,
        )
        for name, bucket in (("daily", "day"), ("weekly", "week"))
    ),
    Measurement(
        "cohort_retention", "cohorts", ("product", "basis", "age"),
        ("cohort_size", "retained"), ("mrr", "rate"), "cohort month",
    ),
    Measurement(
        "funnel_steps", "funnels", ("product", "funnel", "step"),
        ("users", "dropoff"), ("conversion", "step_conversion"), "cohort month",
    ),
    Measurement(
        "funnel_branches", "funnels", ("product", "funnel", "step", "next"),
        ("users",), (), "cohort month",
    ),
    Measurement(
        "traffic_daily", "traffic", ("product", "channel"),
        ("users", "signups", "converting_sessions"), ("sessions", "conversion"), "day",
    ),
    Measurement("kpi", "kpis", ("product", "kpi"), (), ("value",), "event"),
    # written by the detector, one point per alert transition (see detectors/sinks/anomalies.py)
    Measurement(
        "anomalies", "detector", ("product", "metric", "segment", "severity", "method"),
        ("open", "started_ms"), ("observed", "expected", "lower", "upper", "score"), "event",
    ),
)  # fmt: skip
BY_NAME: Mapping[str, Measurement] = {m.name: m for m in MEASUREMENTS}


def to_batch(name: str, frame: pd.DataFrame) -> PointBatch:
    """A metric frame as a ``PointBatch`` of measurement ``name`` with the schema's types."""
    spec = BY_NAME[name]
    source = {v: k for k, v in (spec.rename or {}).items()}
    # the columns first, the frame once: a column set on a frame at a time was most of
    # the cost of the small batches an update writes (dozens per update)
    columns: dict[str, Any] = {
        "time": pd.to_datetime(frame["time"], utc=True).reset_index(drop=True)}
    for tag in spec.tags:
        columns[tag] = frame[source.get(tag, tag)].astype(str).to_numpy()
    for col in spec.ints:
        columns[col] = np.asarray(frame[source.get(col, col)], dtype="int64")
    for col in spec.floats:
        columns[col] = np.round(np.asarray(frame[source.get(col, col)], dtype="float64"), 9)
    return PointBatch(name, pd.DataFrame(columns), spec.tags, spec.fields)


_RATE_PARTS = ("rate", "grr", "nrr", "stickiness", "conversion")
_NUMBERS = frozenset({("traffic_daily", "sessions"), ("kpi", "value"),
                      ("churn_monthly", "quick_ratio"),
                      ("churn_segments_monthly", "quick_ratio")})  # fmt: skip


def unit(measurement: str, field: str) -> str:
    """What a field's numbers are: ``count``, ``ratio`` (0.25 = 25 %), ``money`` or
    ``number``; readers format by it (the CLI, the report, dashboards' units).

    Money is in the row's ``currency`` tag where the measurement has one and the field has
    no ``_rc`` suffix, else in the reporting currency (``money_currency``).
    """
    spec = BY_NAME[measurement]
    if field not in spec.fields:
        raise KeyError(f"{measurement} has no field {field!r}")
    if field in spec.ints:
        return "count"
    if any(part in field for part in _RATE_PARTS):
        return "ratio"
    if (measurement, field) in _NUMBERS:
        return "number"
    return "money"


def field_unit(measurement: str, field: str) -> str | None:
    """``unit`` for any name: None when the schema has no such measurement or field."""
    spec = BY_NAME.get(measurement)
    return unit(measurement, field) if spec is not None and field in spec.fields else None


def native_currency(measurement: str, field: str) -> bool:
    """True when a money field is in the row's own ``currency`` tag, not the reporting one."""
    return "currency" in BY_NAME[measurement].tags and not field.endswith("_rc")


def bucket_floor(measurement: str, at: pd.Timestamp, tz: str = "UTC") -> pd.Timestamp:
    """The start of the bucket of ``measurement`` that contains ``at`` (hours UTC, the
    rest in the reporting timezone ``tz``)."""
    bucket = BY_NAME[measurement].bucket
    if bucket == "hour":
        return at.floor("h")
    if bucket == "day":
        return local_floor_at(at, "D", tz)
    if bucket == "week":  # ISO: the local Monday
        day = local_floor_at(at, "D", tz)
        monday = day.tz_convert(tz).tz_localize(None) - pd.Timedelta(days=day.tz_convert(tz).weekday())
        return local_floor_at(monday.tz_localize(tz, ambiguous=True, nonexistent="shift_forward")
                              .tz_convert("UTC"), "D", tz)  # fmt: skip
    if bucket in ("month", "cohort month"):
        return local_floor_at(at, "MS", tz)
    if bucket == "year":
        return local_floor_at(at, "YS", tz)
    return at
