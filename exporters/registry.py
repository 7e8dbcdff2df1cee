"""Every source type, found by its stream class: adding a source is adding one module.

A module of the ``exporters`` package that defines a ``Stream`` subclass with a
``source_type`` is a source; this registry imports the package's modules once and keys the
classes by type. The config schema (``growthwatch.config.schema.source_schemas``), ``serve``
(which types are scheduled) and ``backfill`` read it; ``tests/exporters/test_registry.py``
checks that it and the config schema agree.
"""

from __future__ import annotations

import functools
import importlib
import pkgutil
from pathlib import Path

from exporters.base import HttpStream, Stream
from exporters.state import StateStore
from growthwatch.config import SourceConfig

_NOT_SOURCES = frozenset({"cli", "registry", "service"})  # they import the registry


@functools.cache
def stream_types() -> dict[str, type[Stream]]:
    """source type -> stream class, for every source module of the package."""
    # The folder of this very package (not ``exporters.__path__``, which a test runner's
    # ``sys.path`` can widen with a ``tests/exporters`` folder).
    for module in pkgutil.iter_modules([str(Path(__file__).parent)]):
        if module.name not in _NOT_SOURCES and not module.name.startswith("_"):
            importlib.import_module(f"exporters.{module.name}")
    found: dict[str, type[Stream]] = {}
    todo = list(Stream.__subclasses__())
    while todo:
        cls = todo.pop()
        todo.extend(cls.__subclasses__())
        kind = cls.__dict__.get("source_type")  # declared here, not inherited: a subclass of
        if kind is None or cls is HttpStream:  # a source (a test double) is not a new source
            continue
        if kind in found and found[kind] is not cls:
            raise TypeError(f"two stream classes for source type {kind!r}: "
                            f"{found[kind].__qualname__} and {cls.__qualname__}")  # fmt: skip
        found[kind] = cls
    return dict(sorted(found.items()))


def scheduled_types() -> frozenset[str]:
    return frozenset(k for k, cls in stream_types().items() if cls.scheduled)


def build_stream(source: SourceConfig, state: StateStore, base: Path | None = None) -> Stream:
    try:
        cls = stream_types()[source.type]
    except KeyError:
        raise ValueError(f"unknown source type {source.type!r}; known: "
                         f"{', '.join(stream_types())}") from None  # fmt: skip
    return cls.build(source, state, base)
