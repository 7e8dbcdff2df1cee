"""One way to name a metric series: ``MetricRef`` (measurement, field, tags).

Incidents, detectors, dashboards and the report all point at series. Naming them with
free strings ("churned_mrr", "active_users") drifts from what the engine writes; a
``MetricRef`` is checked against the metrics schema when it is made, so a name that is no
series field fails at once, with the fields that do exist.

Text form, for config and the CLI: ``measurement.field`` with optional tags,
``mrr_daily.churn{product=acme-crm}``.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

from growthwatch.metrics.schema import BY_NAME, Measurement

_TEXT = re.compile(r"^(?P<m>[a-z0-9_]+)\.(?P<f>[a-z0-9_]+)(?:\{(?P<t>[^}]*)\})?$")


class MetricRefError(ValueError):
    """A reference to a series the metrics schema does not have."""


@dataclass(frozen=True)
class MetricRef:
    measurement: str
    field: str
    tags: Mapping[str, str] = dataclasses.field(default_factory=lambda: MappingProxyType({}))

    def __post_init__(self) -> None:
        spec = BY_NAME.get(self.measurement)
        if spec is None:
            raise MetricRefError(
                f"unknown measurement {self.measurement!r}; known: {', '.join(sorted(BY_NAME))}"
            )
        if self.field not in spec.fields:
            raise MetricRefError(
                f"{self.measurement} has no field {self.field!r}; fields: {', '.join(spec.fields)}"
            )
        unknown = [t for t in self.tags if t not in spec.tags]
        if unknown:
            raise MetricRefError(
                f"{self.measurement} has no tag {unknown[0]!r}; tags: {', '.join(spec.tags)}"
            )
        object.__setattr__(self, "tags", MappingProxyType(dict(sorted(self.tags.items()))))

    @property
    def spec(self) -> Measurement:
        return BY_NAME[self.measurement]

    @property
    def is_count(self) -> bool:
        """Integer fields are counts (cancellations, signups): detectors judge them as such."""
        return self.field in self.spec.ints

    def with_tags(self, **tags: str) -> MetricRef:
        return MetricRef(self.measurement, self.field, {**self.tags, **tags})

    @classmethod
    def parse(cls, text: str) -> MetricRef:
        match = _TEXT.match(text.strip())
        if not match:
            raise MetricRefError(
                f"{text!r} is not a metric reference; write measurement.field"
                "[{tag=value,...}], e.g. mrr_daily.churn{product=acme-crm}"
            )
        tags: dict[str, str] = {}
        for part in filter(None, (match["t"] or "").split(",")):
            key, sep, value = part.partition("=")
            if not sep or not key.strip():
                raise MetricRefError(f"{text!r}: tag {part!r} is not key=value")
            tags[key.strip()] = value.strip()
        return cls(match["m"], match["f"], tags)

    def __str__(self) -> str:
        tags = ",".join(f"{k}={v}" for k, v in self.tags.items())
        return f"{self.measurement}.{self.field}" + (f"{{{tags}}}" if tags else "")
