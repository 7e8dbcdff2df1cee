"""The components stand on the core's public surface only (``growthwatch/__init__``).

Detectors, dashboards, the archive and the report are built on the core; if they reach into
its modules, every refactoring of the core breaks them. They import ``growthwatch`` itself
(names in ``growthwatch.__all__``) and the CLI helpers meant for components.
"""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import pytest

import growthwatch

ROOT = Path(__file__).resolve().parents[1]
COMPONENTS = ("detectors", "dashboards", "bigquery_archive", "reports")
# What a component's commands share with the core's (flags, errors, output formats).
ALLOWED_MODULES = {"growthwatch", "growthwatch.cli.common", "growthwatch.cli.output"}


def test_every_exported_name_resolves() -> None:
    for name in growthwatch.__all__:
        assert getattr(growthwatch, name) is not None, name
    assert sorted(growthwatch.__all__) == sorted(dir(growthwatch))


def _core_imports(path: Path) -> list[tuple[int, str]]:
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            modules = [node.module]
        elif isinstance(node, ast.Import):
            modules = [a.name for a in node.names]
        else:
            continue
        found += [(node.lineno, m) for m in modules
                  if m == "growthwatch" or m.startswith("growthwatch.")]  # fmt: skip
    return found


@pytest.mark.parametrize("component", COMPONENTS)
def test_components_import_only_the_public_surface(component: str) -> None:
    folder = ROOT / component
    if not folder.exists():
        pytest.skip(f"{component}/ is not in this tree")
    wrong = [f"{path.relative_to(ROOT)}:{line}: {module}"
             for path in sorted(folder.rglob("*.py")) if "node_modules" not in path.parts
             for line, module in _core_imports(path) if module not in ALLOWED_MODULES]  # fmt: skip
    assert wrong == [], "import these through `from growthwatch import ...`:\n" + "\n".join(wrong)


def test_public_names_come_from_the_modules_the_readme_names() -> None:
    assert growthwatch.SeriesReader is importlib.import_module(
        "growthwatch.stores.interfaces").SeriesReader  # fmt: skip
    assert {"GrowthEvent", "Ledger", "SeriesReader", "SeriesWriter", "MetricRef",
            "RetryPolicy", "MetricsEngine", "PointBatch"} <= set(growthwatch.__all__)  # fmt: skip
