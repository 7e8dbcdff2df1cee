"""The ``detector`` config section, typed: what to watch, how to decide, when to page.

Every key does something: ``method`` picks the method (``auto``: counts for count fields,
seasonal for the rest), ``baseline_days``/``min_history_days`` bound the history,
``warning``/``critical`` are score thresholds (severities), ``direction`` and per-metric
overrides say which way is bad, ``adapt_after`` turns a persisting shift into the new
normal, ``resolve_after``/``cooldown`` drive the alert book, ``interval`` the scheduled
evaluation, ``intraday``/``intraday_window`` the running-day judgement, ``multi_days`` the longest
window of days a drop is summed over, and ``segments``
the dimensions of the explanation.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import timedelta
from typing import Any

from detectors.causal import Policy
from detectors.explain import DEFAULT_DIMENSIONS
from detectors.intraday import IntradaySettings
from detectors.registry import method_for
from growthwatch import Config, MetricRef

UP = ("cancellations", "churned", "churn", "churn_rate", "failed_count", "failed",
      "refund_count", "refunds", "churned_customers")  # fmt: skip
DOWN = ("payments", "gross", "net", "gross_rc", "net_rc", "signups", "activations", "dau",
        "wau", "mau", "mrr", "active", "activation_rate", "users")  # fmt: skip
#: ledger event type behind a count field: these are judged intraday, from the events
EVENT_TYPES: Mapping[str, str] = {
    "customers_daily.cancellations": "subscription_cancelled",
    "revenue_hourly.payments": "payment",
    "revenue_daily.payments": "payment",
    "revenue_hourly.failed_count": "payment_failed",
    "revenue_daily.failed_count": "payment_failed",
    "product_daily.signups": "signup",
    "product_daily.activations": "activation",
}
#: ledger event type whose amounts an amount field sums: the running day's sum is judged
#: intraday (``detectors.intraday_amounts``), the daily series at each close as before.
#: Payments only: a refund spike shows at the close (net), a payment outage in the hour.
AMOUNT_EVENT_TYPES: Mapping[str, str] = {
    "revenue_daily.gross": "payment",
    "revenue_daily.gross_rc": "payment",
    "revenue_daily.net": "payment",
    "revenue_daily.net_rc": "payment",
}
DEFAULT_METRICS: tuple[str | dict[str, str], ...] = (
    "customers_daily.cancellations",
    "revenue_hourly.payments",
    "revenue_hourly.failed_count",
    "product_daily.signups",
    "revenue_daily.net_rc",
    # sessions are a float field (an aggregate) but counted in whole visits: judged as counts
    {"metric": "traffic_daily.sessions", "method": "counts"},
)
_DURATION = re.compile(r"^([0-9]+)(s|m|h|d)$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}


def duration(text: str | int | float) -> timedelta:
    if isinstance(text, int | float):
        return timedelta(seconds=float(text))
    match = _DURATION.match(str(text).strip())
    if not match:
        raise ValueError(f"not a duration: {text!r} (expected e.g. 30s, 15m, 6h, 3d)")
    return timedelta(**{_UNITS[match.group(2)]: int(match.group(1))})


def _positive_int(value: Any, key: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{key} must be a whole number of days, at least 1, not {value!r}")
    return value


def default_direction(ref: MetricRef) -> str:
    if ref.field in UP:
        return "up"
    if ref.field in DOWN:
        return "down"
    return "both"


@dataclass(frozen=True)
class WatchedMetric:
    ref: MetricRef
    method: str
    policy: Policy

    @property
    def name(self) -> str:
        """The metric text without tags, as the ``anomalies`` measurement's ``metric`` tag."""
        return f"{self.ref.measurement}.{self.ref.field}"

    @property
    def event_type(self) -> str | None:
        return EVENT_TYPES.get(self.name)

    @property
    def amount_event_type(self) -> str | None:
        """The event type whose amounts this (daily amount) field sums, if any."""
        return AMOUNT_EVENT_TYPES.get(self.name)


@dataclass(frozen=True)
class DetectorSettings:
    metrics: tuple[WatchedMetric, ...]
    method: str = "auto"
    baseline_days: int = 28
    min_history_days: int = 14
    adapt_after: timedelta = timedelta(days=7)
    resolve_after: timedelta = timedelta(hours=2)
    cooldown: timedelta = timedelta(hours=6)
    interval: timedelta = timedelta(seconds=60)
    intraday: bool = True
    intraday_window: timedelta = timedelta(minutes=60)
    segments: tuple[str, ...] = DEFAULT_DIMENSIONS
    warning: float = 0.9995
    critical: float = 0.99999
    extra: Mapping[str, Any] = field(default_factory=dict)
    timezone: str = "UTC"  # reporting.timezone: the zone of the detector's days
    multi_days: int = 3

    def intraday_settings(self, metric: WatchedMetric) -> IntradaySettings:
        return IntradaySettings(
            baseline_days=self.baseline_days, min_history_days=self.min_history_days,
            window_minutes=int(self.intraday_window.total_seconds() // 60),
            warning=metric.policy.warning, direction=metric.policy.direction,
            timezone=self.timezone, multi_days=self.multi_days,
        )  # fmt: skip

    @classmethod
    def from_section(cls, section: Mapping[str, Any]) -> DetectorSettings:
        """Typed settings from a raw ``detector`` mapping; a bad value raises ValueError
        naming the key."""
        s = dict(section)
        method = str(s.get("method", "auto"))
        method_for(method)  # unknown names fail here, with the known ones
        base = Policy(
            warning=float(s.get("warning", 0.9995)), critical=float(s.get("critical", 0.99999)),
            baseline_days=float(s.get("baseline_days", 28)),
            min_history_days=float(s.get("min_history_days", 14)),
            adapt_after_days=duration(s.get("adapt_after", "7d")).total_seconds() / 86_400,
        )  # fmt: skip
        if base.critical < base.warning:
            raise ValueError("detector.critical must be at least detector.warning")
        direction = s.get("direction")
        watched = []
        for i, item in enumerate(s.get("metrics") or DEFAULT_METRICS):
            spec = {"metric": item} if isinstance(item, str) else dict(item)
            try:
                ref = MetricRef.parse(str(spec["metric"]))
            except (KeyError, ValueError) as exc:
                raise ValueError(f"detector.metrics[{i}]: {exc}") from exc
            m_method = str(spec.get("method", method))
            method_for(m_method, is_count=ref.is_count)
            policy = replace(
                base,
                direction=str(spec.get("direction", direction or default_direction(ref))),
                warning=float(spec.get("warning", base.warning)),
                critical=float(spec.get("critical", base.critical)),
                min_history_days=float(spec.get("min_history_days", base.min_history_days)),
            )
            watched.append(WatchedMetric(ref, m_method, policy))
        return cls(
            metrics=tuple(watched), method=method, baseline_days=int(base.baseline_days),
            min_history_days=int(base.min_history_days),
            adapt_after=duration(s.get("adapt_after", "7d")),
            resolve_after=duration(s.get("resolve_after", "2h")),
            cooldown=duration(s.get("cooldown", "6h")),
            interval=duration(s.get("interval", "60s")),
            intraday=bool(s.get("intraday", True)),
            intraday_window=duration(s.get("intraday_window", "60m")),
            multi_days=_positive_int(s.get("multi_days", 3), "detector.multi_days"),
            segments=tuple(s.get("segments", DEFAULT_DIMENSIONS)),
            warning=base.warning, critical=base.critical,
        )  # fmt: skip

    @classmethod
    def from_config(cls, config: Config | None) -> DetectorSettings:
        if config is None:
            return cls.from_section({})
        settings = cls.from_section(config.section("detector"))
        return replace(settings, timezone=str(getattr(config, "timezone", None) or "UTC"))


def make_detector(metric: WatchedMetric, settings: DetectorSettings) -> Any:
    """A zero-argument factory of the metric's method, with the configured baseline span."""
    cls = method_for(metric.method, is_count=metric.ref.is_count)

    def make() -> Any:
        if cls.name in ("counts",):
            return cls(window_days=settings.baseline_days)  # type: ignore[call-arg]
        if cls.name == "seasonal_mad":
            return cls(window_days=max(settings.baseline_days, 28))  # type: ignore[call-arg]
        return cls()

    return make
