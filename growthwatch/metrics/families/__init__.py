"""Every metric family, found by its class: adding a family is adding one module.

A module of this package that defines a ``Family`` subclass with a ``name`` is a family;
``load`` imports the package's modules once and returns one new instance of each (a
family may keep state between an engine's runs, so each engine gets its own), in the
order of their names.
"""

from __future__ import annotations

import functools
from pathlib import Path

from growthwatch.metrics.families.base import Family
from growthwatch.plugins import declared_subclasses, import_modules


@functools.cache
def family_classes() -> tuple[type[Family], ...]:
    """The family classes, by name (a test's double elsewhere is not a family)."""
    import_modules(__name__, Path(__file__).parent, skip=["base"])
    return tuple(declared_subclasses(Family, "name", module_prefix=f"{__name__}.").values())


def load() -> tuple[Family, ...]:
    """One new instance of every family."""
    return tuple(cls() for cls in family_classes())
