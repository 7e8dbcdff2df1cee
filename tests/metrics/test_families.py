"""The metric-family registry: every family found, agreeing with the series schema, and
one object holding everything the engine needs to know of it."""

from __future__ import annotations

import pandas as pd
import pytest

from growthwatch.demo.generator import generate
from growthwatch.demo.pipeline import DEMO_METRICS
from growthwatch.demo.spec import DemoSpec
from growthwatch.frames import check_frame
from growthwatch.metrics.families import family_classes, load
from growthwatch.metrics.families.base import Family, Frames, Scope
from growthwatch.metrics.schema import BY_NAME, MEASUREMENTS
from growthwatch.metrics.settings import MetricsSettings
from growthwatch.plugins import declared_subclasses

EXPECTED = ["cohorts", "funnels", "kpis", "product", "revenue", "subscriptions", "traffic"]


def test_the_registry_finds_every_family_module_by_name() -> None:
    names = [cls.name for cls in family_classes()]
    assert set(EXPECTED) <= set(names)
    assert names == sorted(names)


def test_each_engine_gets_its_own_instances() -> None:
    """A family may keep state between runs (the subscription family's MRR state): two
    engines must not share it."""
    first, second = load(), load()
    assert all(a is not b for a, b in zip(first, second, strict=True))


def test_every_family_writes_only_measurements_of_the_schema() -> None:
    for cls in family_classes():
        assert cls.measurements, cls.name
        for name in cls.measurements:
            assert name in BY_NAME, f"{cls.name} writes {name}, which the schema lacks"
        for name in cls.shrinking:
            assert name in cls.measurements, (cls.name, name)
        for name in cls.owns:
            assert name in cls.measurements, (cls.name, name)


def test_every_metric_measurement_has_its_family() -> None:
    """The schema's family column names a family that writes the measurement; a shared
    measurement (cohort_retention) is told apart by the tags each family owns."""
    by_name = {cls.name: cls for cls in family_classes()}
    writers: dict[str, list[str]] = {}
    for cls in family_classes():
        for name in cls.measurements:
            writers.setdefault(name, []).append(cls.name)
    for m in MEASUREMENTS:
        if m.family == "detector":
            continue  # written by the detector, not computed from events
        assert m.family in by_name, m.name
        assert m.name in by_name[m.family].measurements, m.name
        shared = writers[m.name]
        if len(shared) > 1:
            owned = [tuple(sorted(by_name[f].owns.get(m.name, {}).items())) for f in shared]
            assert all(owned) and len(set(owned)) == len(owned), (m.name, owned)


def test_compute_returns_exactly_the_declared_measurements() -> None:
    settings = DEMO_METRICS  # with funnels
    raw = pd.concat(generate(DemoSpec(seed=7, products=2, months=2, events_per_day=300)),
                    ignore_index=True)
    events = check_frame(raw)[0]
    until = events["ts"].max()
    for family in load():
        chosen = events[events["type"].isin(list(family.types(settings)))]
        frames = family.compute(chosen, Scope(settings, until))
        assert set(frames) == set(family.measurements), family.name


class _Double(Family):
    """A test's own family: not a family of the product."""

    name = "double"
    columns = ("product",)
    measurements = ("kpi",)

    def types(self, settings: MetricsSettings) -> tuple[str, ...]:
        return ("kpi",)

    def compute(self, events: pd.DataFrame, scope: Scope) -> Frames:
        return {}


def test_a_family_outside_the_package_is_not_registered() -> None:
    assert "double" not in [cls.name for cls in family_classes()]


def test_two_classes_with_one_name_are_an_error_naming_both() -> None:
    class Base:
        pass

    class One(Base):
        key = "same"

    class Two(Base):
        key = "same"

    with pytest.raises(TypeError, match=r"One.*Two|Two.*One"):
        declared_subclasses(Base, "key")
