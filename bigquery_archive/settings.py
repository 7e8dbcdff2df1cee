"""The ``archive`` config section, typed (every key is used; see README "Archive").

    archive:
      bigquery: {project, dataset, location, credentials_file: ${ENV}, api_endpoint,
                 storage_endpoint}
      schedule: {every: 1h, close_after: 2h, metrics: true}
      retention: {ledger_days: 400, influx_days: 90}
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

# The engine's windows that a kept ledger must cover: MAU (30 days) plus the funnel and
# activation windows and a month boundary. Shorter retention would change recomputed series.
MIN_LEDGER_DAYS = 90


def parse_duration(text: str) -> timedelta:
    units = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}
    text = str(text).strip()
    if len(text) < 2 or text[-1] not in units or not text[:-1].isdigit():
        raise ValueError(f"not a duration: {text!r} (expected e.g. 30s, 15m, 6h, 3d)")
    return timedelta(**{units[text[-1]]: int(text[:-1])})


@dataclass(frozen=True)
class BigQuerySettings:
    project: str
    dataset: str
    location: str | None = None
    credentials_file: str | None = None  # ${ENV} reference to a service-account JSON path
    api_endpoint: str | None = None  # e.g. the emulator's http://127.0.0.1:9050
    storage_endpoint: str | None = None  # Storage Read API over plain gRPC (the emulator)


@dataclass(frozen=True)
class RetentionSettings:
    ledger_days: int | None = None  # keep this many days in the ledger once archived
    influx_days: int | None = None  # keep this many days of fine-grained InfluxDB series


@dataclass(frozen=True)
class ScheduleSettings:
    every: timedelta = timedelta(hours=1)  # how often serve archives closed days
    close_after: timedelta = timedelta(hours=2)  # a day is closed this long after midnight
    metrics: bool = True  # also archive the day's metric rows


@dataclass(frozen=True)
class ArchiveSettings:
    bigquery: BigQuerySettings | None = None
    schedule: ScheduleSettings = field(default_factory=ScheduleSettings)
    retention: RetentionSettings = field(default_factory=RetentionSettings)
    configured: bool = False  # the config has an ``archive`` section at all

    @classmethod
    def from_section(cls, section: Mapping[str, Any]) -> ArchiveSettings:
        bq = section.get("bigquery")
        sched = section.get("schedule") or {}
        ret = section.get("retention") or {}
        bigquery = None
        if bq:
            bigquery = BigQuerySettings(
                project=str(bq["project"]), dataset=str(bq["dataset"]),
                location=bq.get("location"), credentials_file=bq.get("credentials_file"),
                api_endpoint=bq.get("api_endpoint"), storage_endpoint=bq.get("storage_endpoint"),
            )  # fmt: skip
        schedule = ScheduleSettings(
            every=parse_duration(sched.get("every", "1h")),
            close_after=parse_duration(sched.get("close_after", "2h")),
            metrics=bool(sched.get("metrics", True)),
        )
        retention = RetentionSettings(ret.get("ledger_days"), ret.get("influx_days"))
        if (retention.ledger_days or retention.influx_days) and bigquery is None:
            raise ValueError(
                "archive.retention needs archive.bigquery: without an archive the ledger is "
                "the only copy of the history, so nothing may be trimmed"
            )
        return cls(bigquery, schedule, retention, configured=bool(section))

    @classmethod
    def from_config(cls, config: Any) -> ArchiveSettings:
        return cls.from_section(config.section("archive") if config is not None else {})
