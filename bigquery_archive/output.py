"""``--format table|csv|json`` for every listing the archive commands print."""

from __future__ import annotations

import csv
import json
import sys
from collections.abc import Sequence
from typing import Any, TextIO

from rich.console import Console
from rich.table import Table

FORMATS = ("table", "csv", "json")


def add_format_arg(parser: Any) -> None:
    parser.add_argument("--format", choices=FORMATS, default="table",
                        help="how to print the listing: table (default), csv or json")  # fmt: skip


def emit(rows: Sequence[dict[str, Any]], fmt: str, *, title: str = "",
         out: TextIO | None = None) -> None:  # fmt: skip
    out = out or sys.stdout
    if fmt == "json":
        json.dump(list(rows), out, indent=1, default=str)
        out.write("\n")
        return
    columns = list(rows[0]) if rows else []
    if fmt == "csv":
        writer = csv.DictWriter(out, fieldnames=columns, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
        return
    console = Console(file=out, width=None if out.isatty() else 200)
    if not rows:
        console.print(f"{title}: nothing" if title else "nothing")
        return
    table = Table(title=title or None)
    for col in columns:
        table.add_column(col, justify="right" if isinstance(rows[0][col], int | float) else "left")
    for row in rows:
        table.add_row(*("" if row[c] is None else str(row[c]) for c in columns))
    console.print(table)
