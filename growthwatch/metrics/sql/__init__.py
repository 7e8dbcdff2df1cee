"""The metric definitions that run as SQL in the ledger's engine, one ``.sql`` file each.

They are written in DuckDB's dialect with portable constructs, so that the same
definitions can run where the history lives at scale (BigQuery, through the archive)
after ``sqlglot`` transpiles them; ``query(name)`` reads one.
"""

from __future__ import annotations

from functools import cache
from importlib import resources


@cache
def query(name: str) -> str:
    """The text of ``<name>.sql`` in this package."""
    return resources.files(__package__).joinpath(f"{name}.sql").read_text()
