"""What the board report's tests share: the demo spec and month, and detector-shaped
``anomalies`` points (contracts: the ``anomalies`` measurement)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd

from growthwatch import InfluxStore, PointBatch, SeriesStore
from growthwatch.demo.generator import DemoSpec
from reports.period import Month

SPEC = DemoSpec(products=3, months=14, events_per_day=800)  # 2025-09-01 .. 2026-10-31
MONTH = Month(2026, 10)
NOW = datetime(2026, 11, 1, 6, 0, tzinfo=UTC)  # the report is made after the month closed

ANOMALY_TAGS = ("product", "metric", "segment", "severity", "method")
ANOMALY_FIELDS = ("observed", "expected", "lower", "upper", "score", "open", "state",
                  "alert_id", "explanation", "started_ms")  # fmt: skip
CHURN_EXPLANATION = ("cancellations 41 vs 8 expected (3-14) by 14:00; 72 % of the excess is "
                     "plan=pro with reason=payment_failed")  # fmt: skip
SIGNUP_EXPLANATION = "signups 12 vs 95 expected (70-120) on 20 October; tracking looks broken"


def _ms(text: str) -> int:
    return int(pd.Timestamp(text).value // 1_000_000)


def anomaly_batch() -> PointBatch:
    """Transitions as the detector writes them (contracts: the ``anomalies`` measurement):
    one critical incident opened, escalated and resolved in the report month, one warning
    still open, and one September incident the October report must leave out."""
    opened = "2026-10-05T13:00:00Z"
    rows = [
        ("2026-10-05T13:00:00Z", "beacon-analytics", "customers_daily.cancellations", "all",
         "warning", "seasonal_mad", 30.0, 8.0, 3.0, 14.0, 0.8, 1, "open", "a-churn",
         "cancellations 30 vs 8 expected (3-14) by 13:00", _ms(opened)),
        ("2026-10-05T14:00:00Z", "beacon-analytics", "customers_daily.cancellations", "plan=pro",
         "critical", "seasonal_mad", 41.0, 8.0, 3.0, 14.0, 0.97, 1, "escalated", "a-churn",
         CHURN_EXPLANATION, _ms(opened)),
        ("2026-10-07T09:00:00Z", "beacon-analytics", "customers_daily.cancellations", "plan=pro",
         "critical", "seasonal_mad", 9.0, 8.0, 3.0, 14.0, 0.1, 0, "resolved", "a-churn",
         "back within the expected range", _ms(opened)),
        ("2026-10-20T10:00:00Z", "all", "product_daily.signups", "all", "warning", "count_poisson",
         12.0, 95.0, 70.0, 120.0, 0.9, 1, "open", "a-signups", SIGNUP_EXPLANATION,
         _ms("2026-10-20T10:00:00Z")),
        ("2026-09-12T10:00:00Z", "acme-crm", "revenue_hourly.payments", "all", "critical",
         "count_poisson", 0.0, 40.0, 20.0, 60.0, 1.0, 1, "open", "a-september",
         "a September outage that must not appear", _ms("2026-09-12T10:00:00Z")),
    ]  # fmt: skip
    frame = pd.DataFrame(rows, columns=["time", *ANOMALY_TAGS, *ANOMALY_FIELDS])
    frame["time"] = pd.to_datetime(frame["time"], utc=True)
    return PointBatch("anomalies", frame, ANOMALY_TAGS, ANOMALY_FIELDS)


@dataclass
class Demo:
    data_dir: Path
    series: SeriesStore
    influx: InfluxStore
