"""Finding the classes of a kind in a package: how a source, a metric family (or any
other kind the product grows by one file) is added without a list to edit.

A kind is a base class; a member is a subclass that declares its key attribute itself
(a subclass of a member that inherits the key, such as a test's double, is not a new
member).
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Iterable
from pathlib import Path
from typing import TypeVar

T = TypeVar("T")


def import_modules(package: str, folder: Path, skip: Iterable[str] = ()) -> None:
    """Import every module of ``package`` (found in ``folder``, not on the package's
    ``__path__``, which a test runner's ``sys.path`` can widen) but ``skip`` and the
    private ones."""
    left_out = set(skip)
    for module in pkgutil.iter_modules([str(folder)]):
        if module.name not in left_out and not module.name.startswith("_"):
            importlib.import_module(f"{package}.{module.name}")


def declared_subclasses(
    base: type[T], key: str, *, module_prefix: str = "", exclude: Iterable[type] = ()
) -> dict[str, type[T]]:
    """key -> class, for every subclass of ``base`` (at any depth) that declares ``key``
    itself and lives in a module under ``module_prefix``; two classes with one key are an
    error naming both."""
    left_out = set(exclude)
    found: dict[str, type[T]] = {}
    todo = list(base.__subclasses__())
    while todo:
        cls = todo.pop()
        todo.extend(cls.__subclasses__())
        value = cls.__dict__.get(key)
        if value is None or cls in left_out or not cls.__module__.startswith(module_prefix):
            continue
        if value in found and found[value] is not cls:
            raise TypeError(f"two classes with {key} {value!r}: "
                            f"{found[value].__qualname__} and {cls.__qualname__}")  # fmt: skip
        found[value] = cls
    return dict(sorted(found.items()))
