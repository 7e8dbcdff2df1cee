"""``growthwatch products``: the product ids every other command accepts, with what the
ledger holds for each (events, first and last event)."""

from __future__ import annotations

import argparse
import json
from typing import Any

import pandas as pd

from growthwatch.cli.common import (
    CliError,
    add_config_args,
    config_from_args,
    data_dir_from_args,
    ledger_path_from_args,
    prog,
)
from growthwatch.cli.output import add_format_arg, emit
from growthwatch.stores.ledger import Ledger


def register(sub: Any) -> None:
    parser = sub.add_parser(
        "products", help="list the products (ids for --product) and what the ledger holds",
        description="List every product of the config (or of the demo's catalogue) and of the "
        "ledger: id, name, currency, events, first and last event.",
    )  # fmt: skip
    add_config_args(parser)
    add_format_arg(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    config = config_from_args(args)
    data_dir = data_dir_from_args(args, config)
    known: dict[str, dict[str, Any]] = {}
    if config is not None:
        for p in config.products:
            known[p.id] = {"name": p.name or p.id, "currency": p.currency or ""}
    elif (data_dir / "products.json").exists():
        for p in json.loads((data_dir / "products.json").read_text()):
            known[p["id"]] = {"name": p.get("name", p["id"]), "currency": p.get("currency", "")}
    ledger_path = ledger_path_from_args(args, config, data_dir)
    counts = pd.DataFrame(columns=["product", "events", "first", "last"])
    if ledger_path.exists():
        with Ledger(ledger_path) as ledger:
            cursor = ledger.connection
            try:
                counts = cursor.execute(
                    "SELECT product, count(*) AS events, min(ts) AS first, max(ts) AS last "
                    "FROM events GROUP BY product ORDER BY product"
                ).df()
            finally:
                cursor.close()
    if not known and counts.empty:
        raise CliError(f"no products: no config given and no ledger at {ledger_path}; run "
                       f"`{prog()} demo` or pass --config growthwatch.yaml")  # fmt: skip
    rows = []
    stats = {r.product: r for r in counts.itertuples(index=False)}
    for pid in sorted(set(known) | set(stats)):
        info, stat = known.get(pid, {}), stats.get(pid)
        rows.append({
            "product": pid, "name": info.get("name", ""), "currency": info.get("currency", ""),
            "events": int(stat.events) if stat is not None else 0,
            "first": _utc(stat.first) if stat is not None else None,
            "last": _utc(stat.last) if stat is not None else None,
        })  # fmt: skip
    frame = pd.DataFrame(rows)
    emit(frame, list(frame.columns), fmt=args.format, keys=["product"],
         text_columns=["name"], title="products")  # fmt: skip
    return 0


def _utc(value: Any) -> pd.Timestamp:
    ts = pd.Timestamp(value)
    return ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")
