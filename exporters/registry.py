"""Every source type, found by its stream class: adding a source is adding one module.

A module of the ``exporters`` package that defines a ``Stream`` subclass with a
``source_type`` is a source; this registry imports the package's modules once and keys the
classes by type. The config schema (``growthwatch.config.schema.source_schemas``), ``serve``
(which types are scheduled) and ``backfill`` read it; ``tests/exporters/test_registry.py``
checks that it and the config schema agree.
"""

from __future__ import annotations

import functools
from pathlib import Path

from exporters.base import HttpStream, Stream
from exporters.state import StateStore
from growthwatch.config import SourceConfig
from growthwatch.plugins import declared_subclasses, import_modules

_NOT_SOURCES = frozenset({"cli", "registry", "service"})  # they import the registry


@functools.cache
def stream_types() -> dict[str, type[Stream]]:
    """source type -> stream class, for every source module of the package."""
    import_modules("exporters", Path(__file__).parent, skip=_NOT_SOURCES)
    # a subclass of a source that inherits its type (a test double) is not a new source
    return declared_subclasses(Stream, "source_type", exclude=[HttpStream])  # type: ignore[type-abstract]


def scheduled_types() -> frozenset[str]:
    return frozenset(k for k, cls in stream_types().items() if cls.scheduled)


def build_stream(source: SourceConfig, state: StateStore, base: Path | None = None) -> Stream:
    try:
        cls = stream_types()[source.type]
    except KeyError:
        raise ValueError(f"unknown source type {source.type!r}; known: "
                         f"{', '.join(stream_types())}") from None  # fmt: skip
    return cls.build(source, state, base)
