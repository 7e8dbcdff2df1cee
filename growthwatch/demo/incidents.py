"""Labelled incidents injected into the demo data: the ground truth for the detectors.

Each incident is placed deterministically from the seed, at least ``WARMUP_DAYS`` after the
start so that a detector has a baseline (four comparable weeks and more) before it. The
generator reads the same ``Incident`` objects to shape the data, so the ground truth and
the data can never disagree. Products are picked by size (largest first) so that every
effect is large enough to see, whatever the volume parameter.

A range too short to hold an incident after the warm-up simply has none of that kind.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

from growthwatch.demo.catalog import catalog, profiles
from growthwatch.demo.spec import DAY_S, HOUR_S, DemoSpec, Stream, rng
from growthwatch.metrics.refs import MetricRef

ref = MetricRef.parse

WARMUP_DAYS: Final = 60
CHURN_SPIKE_FACTOR: Final = 5.0
CHURN_SPIKE_DAYS: Final = 3
TRAFFIC_SPIKE_FACTOR: Final = 6.0
TRAFFIC_SPIKE_CHANNEL: Final = "social"
MAX_SPAN_DAYS: Final = 3  # the longest incident, counted in whole days
TRACKING_OUTAGE_HOURS: Final = 40  # starts between 08:00 and 19:00, so a whole day is lost


@dataclass(frozen=True)
class Incident:
    """One injected anomaly: where, when (``[start_s, end_s)``, UNIX seconds) and its effect."""

    id: str
    kind: str  # churn_spike | payment_outage | tracking_outage | traffic_spike
    product: str
    product_index: int
    start_s: int
    end_s: int
    metrics: tuple[MetricRef, ...]  # the series the incident moves, checked against the schema
    expected: tuple[tuple[str, Any], ...]  # e.g. (("metric", "customers_daily.cancellations"), ("factor", 5.0))
    description: str

    @property
    def start(self) -> datetime:
        return datetime.fromtimestamp(self.start_s, UTC)

    @property
    def end(self) -> datetime:
        return datetime.fromtimestamp(self.end_s, UTC)

    def covers(self, ts_s: int) -> bool:
        return self.start_s <= ts_s < self.end_s

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "kind": self.kind,
            "product": self.product,
            "start": _iso(self.start),
            "end": _iso(self.end),
            "metrics": [str(m) for m in self.metrics],
            "expected_effect": dict(self.expected),
            "description": self.description,
        }


def incidents(spec: DemoSpec) -> list[Incident]:
    """The incidents of this spec (empty kinds are those the range is too short for)."""
    products = catalog(spec)
    shares = [p.share for p in profiles(spec)]
    by_size = sorted(range(spec.products), key=lambda i: -shares[i])
    draw = rng(spec.seed, Stream.INCIDENTS)
    builders = (_churn_spike, _payment_outage, _tracking_outage, _traffic_spike)
    # Each kind gets its own slice of the range (in a seeded order), so incidents do not
    # pile up on the same days and each can be seen on its own.
    slots = draw.permutation(len(builders))
    found: list[Incident] = []
    for rank, build in enumerate(builders):
        index = by_size[rank % len(by_size)]
        day_u, hour_u, extra_u = draw.random(3)
        slot_u = (slots[rank] + day_u) / len(builders)
        incident = build(spec, index, products[index].id, slot_u, hour_u, extra_u)
        if incident is not None:
            found.append(incident)
    return found


def write_ground_truth(spec: DemoSpec, path: Path) -> Path:
    """The incidents as a JSON list (ISO UTC times), for humans and detector tests."""
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = [i.to_dict() for i in incidents(spec)]
    path.write_text(json.dumps(payload, indent=2) + "\n", encoding="utf-8")
    return path


def _day_start(spec: DemoSpec, u: float, span_days: int) -> int | None:
    """A UTC midnight at fraction ``u`` of the days from WARMUP_DAYS after the start to
    ``MAX_SPAN_DAYS`` before the end (None if the range is too short for that)."""
    last = spec.n_days - MAX_SPAN_DAYS
    if last < WARMUP_DAYS or span_days > MAX_SPAN_DAYS:
        return None
    return spec.start_s + (WARMUP_DAYS + int(u * (last - WARMUP_DAYS + 1))) * DAY_S


def _churn_spike(
    spec: DemoSpec, index: int, product: str, day_u: float, _hour_u: float, _extra: float
) -> Incident | None:
    start = _day_start(spec, day_u, CHURN_SPIKE_DAYS)
    if start is None:
        return None
    return Incident(
        id=f"churn-spike-{product}",
        kind="churn_spike",
        product=product,
        product_index=index,
        start_s=start,
        end_s=start + CHURN_SPIKE_DAYS * DAY_S,
        metrics=(ref("customers_daily.cancellations"), ref("mrr_daily.churn"),
                 ref("customers_daily.churn_rate"), ref("customers_daily.active")),
        expected=(("metric", "customers_daily.cancellations"), ("factor", CHURN_SPIKE_FACTOR)),
        description=(
            f"Churn spike: {product}'s paying customers cancel about {CHURN_SPIKE_FACTOR:g}x as "
            f"often as usual for {CHURN_SPIKE_DAYS} days (extra immediate cancellations): the "
            "scenario growthwatch exists for, where 47 customers left over three days before "
            "anyone noticed."
        ),
    )


def _payment_outage(
    spec: DemoSpec, index: int, product: str, day_u: float, hour_u: float, extra_u: float
) -> Incident | None:
    day = _day_start(spec, day_u, 2)
    if day is None:
        return None
    start = day + (6 + int(hour_u * 10)) * HOUR_S
    hours = 4 + int(extra_u * 5)
    return Incident(
        id=f"payment-outage-{product}",
        kind="payment_outage",
        product=product,
        product_index=index,
        start_s=start,
        end_s=start + hours * HOUR_S,
        metrics=(ref("revenue_hourly.payments"), ref("revenue_hourly.gross_rc"),
                 ref("revenue_hourly.failed_count")),
        expected=(("metric", "revenue_hourly.payments"), ("factor", 0.0)),
        description=(
            f"Payment outage: every charge of {product} fails for {hours} hours "
            "(payment_failed with reason processor_error); each is retried after the outage "
            "and succeeds, so revenue is late, not lost."
        ),
    )


def _tracking_outage(
    spec: DemoSpec, index: int, product: str, day_u: float, hour_u: float, _extra: float
) -> Incident | None:
    day = _day_start(spec, day_u, 3)
    if day is None:
        return None
    start = day + (8 + int(hour_u * 12)) * HOUR_S
    return Incident(
        id=f"tracking-outage-{product}",
        kind="tracking_outage",
        product=product,
        product_index=index,
        start_s=start,
        end_s=start + TRACKING_OUTAGE_HOURS * HOUR_S,
        metrics=(ref("product_daily.signups"), ref("product_daily.activations"),
                 ref("product_daily.dau")),
        expected=(("metric", "product_daily.signups"), ("factor", 0.0)),
        description=(
            f"Tracking outage: {product}'s analytics SDK sent nothing for "
            f"{TRACKING_OUTAGE_HOURS} hours, so signups, activations and active-use events "
            "are missing (users kept signing up; billing and web traffic are unaffected)."
        ),
    )


def _traffic_spike(
    spec: DemoSpec, index: int, product: str, day_u: float, _hour_u: float, _extra: float
) -> Incident | None:
    start = _day_start(spec, day_u, 1)
    if start is None:
        return None
    return Incident(
        id=f"traffic-spike-{product}",
        kind="traffic_spike",
        product=product,
        product_index=index,
        start_s=start,
        end_s=start + DAY_S,
        metrics=(ref("traffic_daily.sessions"),),
        expected=(
            ("metric", "traffic_daily.sessions"),
            ("channel", TRAFFIC_SPIKE_CHANNEL),
            ("factor", TRAFFIC_SPIKE_FACTOR),
        ),
        description=(
            f"Traffic spike: a post went viral, {product}'s {TRAFFIC_SPIKE_CHANNEL} sessions "
            f"are {TRAFFIC_SPIKE_FACTOR:g}x normal for one day (other channels unchanged)."
        ),
    )


def _iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")
