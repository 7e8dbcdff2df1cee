"""How every command prints data: ``--format table|csv|json``, and tables that never cut.

Analysts pipe growthwatch into scripts (``csv``, ``json``: raw values, ISO 8601 times,
nothing rounded or abbreviated) and read it in a terminal (``table``). A table never
truncates a number: when the columns do not fit the terminal, it is printed as several
tables stacked, each repeating the key columns (time, tags), and only text cells wrap.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import math
import sys
from collections.abc import Callable, Mapping, Sequence
from datetime import date, datetime
from decimal import Decimal
from typing import Any

import pandas as pd
from rich.console import Console
from rich.table import Table

FORMATS = ("table", "csv", "json")
Formatter = Callable[[Any, Mapping[str, Any]], str]
_CELL_PAD = 3  # rich's border and padding per column


def add_format_arg(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--format", choices=FORMATS, default="table",
                        help="table (default, for people), csv or json (for scripts)")  # fmt: skip


def _plain(value: Any) -> Any:
    """A JSON/CSV-ready value: ISO times, floats as floats, NaN/NA as null."""
    if value is None:
        return None
    if isinstance(value, pd.Timestamp | datetime):
        return pd.Timestamp(value).isoformat().replace("+00:00", "Z")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, float) and math.isnan(value):
        return None
    try:
        if pd.isna(value):
            return None
    except (TypeError, ValueError):
        pass
    if hasattr(value, "item"):  # numpy scalars
        return value.item()
    return value


def records(frame: pd.DataFrame, columns: Sequence[str]) -> list[dict[str, Any]]:
    return [{c: _plain(v) for c, v in zip(columns, row, strict=True)}
            for row in frame[list(columns)].itertuples(index=False, name=None)]  # fmt: skip


def emit(
    frame: pd.DataFrame,
    columns: Sequence[str],
    *,
    fmt: str = "table",
    title: str = "",
    keys: Sequence[str] = (),
    formatters: Mapping[str, Formatter] | None = None,
    headers: Mapping[str, str] | None = None,
    text_columns: Sequence[str] = (),
    console: Console | None = None,
) -> None:
    """Print ``frame[columns]`` in ``fmt``.

    ``keys`` are repeated in every stacked part of a wide table; ``formatters`` render a
    cell for people (``value, row -> str``; csv/json always get the raw value); ``headers``
    relabel columns in the table (e.g. ``mrr (USD)``); ``text_columns`` may wrap.
    """
    if fmt == "json":
        json.dump(records(frame, columns), sys.stdout, indent=1)
        sys.stdout.write("\n")
        return
    if fmt == "csv":
        buf = io.StringIO()
        writer = csv.writer(buf, lineterminator="\n")
        writer.writerow(columns)
        for rec in records(frame, columns):
            writer.writerow(["" if rec[c] is None else rec[c] for c in columns])
        sys.stdout.write(buf.getvalue())
        return
    if fmt != "table":
        raise ValueError(f"unknown format {fmt!r}; choose one of {', '.join(FORMATS)}")
    out = console or Console()
    formatters = formatters or {}
    headers = headers or {}
    rows = frame[list(columns)].to_dict("records")
    cells = {c: [formatters[c](r[c], r) if c in formatters else _default(r[c]) for r in rows]
             for c in columns}  # fmt: skip
    label = {c: headers.get(c, c) for c in columns}
    width = {c: max([len(label[c]), *(len(x) for x in cells[c])]) for c in columns}
    available = out.width if out.is_terminal else max(out.width, 200)
    for part in _stack(columns, keys, width, text_columns, available):
        table = Table(title=title or None, title_justify="left")
        for c in part:
            numeric = c not in keys and c not in text_columns
            table.add_column(label[c], justify="right" if numeric else "left",
                             no_wrap=c not in text_columns,
                             min_width=None if c in text_columns else width[c],
                             overflow="fold")  # fmt: skip
        for i in range(len(rows)):
            table.add_row(*(cells[c][i] for c in part))
        Console(width=max(available, sum(width[c] + _CELL_PAD for c in part) + 1),
                file=out.file, force_terminal=out.is_terminal,
                no_color=out.no_color).print(table)  # fmt: skip
        title = ""


def _stack(
    columns: Sequence[str],
    keys: Sequence[str],
    width: Mapping[str, int],
    text_columns: Sequence[str],
    available: int,
) -> list[list[str]]:
    """Split columns into parts that fit ``available`` characters, keys in each part."""
    key_cols = [c for c in columns if c in keys]
    rest = [c for c in columns if c not in keys]
    base = sum(width[c] + _CELL_PAD for c in key_cols) + 1
    parts: list[list[str]] = []
    current: list[str] = []
    used = base
    for c in rest:
        need = (12 if c in text_columns else width[c]) + _CELL_PAD
        if current and used + need > available:
            parts.append(current)
            current, used = [], base
        current.append(c)
        used += need
    parts.append(current)
    return [[*key_cols, *p] for p in parts]


def _default(value: Any) -> str:
    plain = _plain(value)
    if plain is None:
        return "—"
    if isinstance(value, pd.Timestamp | datetime):
        ts = pd.Timestamp(value)
        return ts.strftime("%Y-%m-%d %H:%M") if ts.hour or ts.minute else ts.strftime("%Y-%m-%d")
    if isinstance(plain, float):
        return f"{plain:,.2f}"
    if isinstance(plain, int) and not isinstance(plain, bool):
        return f"{plain:,}"
    return str(plain)
