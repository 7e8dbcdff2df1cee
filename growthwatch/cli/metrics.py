"""``growthwatch metrics``: recompute or update metric series, show one as a table.

    growthwatch metrics recompute [--since 2026-01-01] [--until 2026-02-01]
    growthwatch metrics update
    growthwatch metrics show mrr --product acme-crm --from 2026-01-01 --to 2026-02-01
    growthwatch metrics schema

Series go to the embedded store next to the ledger (``series.duckdb``) and, when InfluxDB
is configured (``--config`` or ``--influx-url``), there too. Without ``--config`` in a
demo data folder, the demo's exchange rates and funnel are used, so the commands work
right after ``growthwatch demo``.
"""

from __future__ import annotations

import argparse
import math
from datetime import date
from pathlib import Path
from typing import Any

import pandas as pd
from rich.console import Console
from rich.table import Table

from growthwatch.cli.common import (
    add_config_args,
    config_from_args,
    data_dir_from_args,
    influx_from_args,
    ledger_path_from_args,
)
from growthwatch.metrics.engine import STATE_FILE, MetricsEngine, RunResult, Store
from growthwatch.metrics.fx import FxError
from growthwatch.metrics.schema import BY_NAME, MEASUREMENTS
from growthwatch.metrics.settings import MetricsSettings
from growthwatch.stores.influx import InfluxError
from growthwatch.stores.ledger import Ledger
from growthwatch.stores.series import SeriesStore

ALIASES = {
    "revenue": "revenue_daily",
    "revenue-hourly": "revenue_hourly",
    "mrr": "mrr_daily",
    "customers": "customers_daily",
    "churn": "churn_monthly",
    "churn-yearly": "churn_yearly",
    "product": "product_daily",
    "engagement": "product_daily",
    "cohorts": "cohort_retention",
    "funnels": "funnel_steps",
    "branches": "funnel_branches",
    "traffic": "traffic_daily",
    "kpi": "kpi",
}
# What a person reads first in the wide measurements; ``--fields all`` shows every field.
HEADLINE = {
    "churn_monthly": ("customers_start", "customers_end", "churned", "customer_churn_rate",
                      "mrr_end", "gross_mrr_churn_rate", "nrr", "arpa", "ltv"),
    "churn_yearly": ("customers_start", "customers_end", "churned", "customer_churn_rate",
                     "mrr_end", "gross_mrr_churn_rate", "nrr", "arpa"),
    "mrr_daily": ("mrr", "new", "expansion", "contraction", "churn", "reactivation",
                  "net_change"),
    "revenue_daily": ("payments", "gross", "refunds", "net", "net_rc", "failed_count"),
    "revenue_hourly": ("payments", "gross", "refunds", "net", "net_rc", "failed_count"),
}  # fmt: skip


def register(sub: Any) -> None:
    parser = sub.add_parser(
        "metrics",
        help="recompute growth metrics from the ledger, or show one as a table",
        description="Compute growth metrics (revenue, MRR and movements, churn, GRR/NRR, "
        "LTV, engagement, cohorts, funnels, traffic, KPIs) from the ledger into the series "
        "stores, or print one. See docs/metrics.md for the definitions and the schema.",
    )
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)

    def common(p: argparse.ArgumentParser) -> None:
        add_config_args(p)

    def writers(p: argparse.ArgumentParser) -> None:
        common(p)
        p.add_argument("--influx-url", help="also write to this InfluxDB (v1 API)")
        p.add_argument("--influx-db", default=None, help="InfluxDB database (default growthwatch)")

    rec = actions.add_parser("recompute", help="rewrite every bucket in a range (default all)")
    writers(rec)
    rec.add_argument("--since", type=date.fromisoformat, help="first day (inclusive)")
    rec.add_argument("--until", type=date.fromisoformat, help="last day (exclusive)")
    rec.set_defaults(func=run_recompute)

    upd = actions.add_parser("update", help="process events added since the last run")
    writers(upd)
    upd.set_defaults(func=run_update)

    show = actions.add_parser("show", help="print a metric series as a table")
    common(show)
    show.add_argument("metric", help=f"a measurement or one of: {', '.join(ALIASES)}")
    show.add_argument("--product", default="all", help="product id, or all (default)")
    show.add_argument("--from", dest="start", type=date.fromisoformat, help="first day")
    show.add_argument("--to", dest="end", type=date.fromisoformat, help="last day (exclusive)")
    show.add_argument(
        "--fields", help="comma-separated fields, or `all` (default: the headline fields)"
    )
    show.add_argument("--where", action="append", default=[], metavar="TAG=VALUE",
                      help="filter on another tag, e.g. basis=logo or channel=all")  # fmt: skip
    show.add_argument("--limit", type=int, default=60, help="last N rows (default 60)")
    show.set_defaults(func=run_show)

    schema = actions.add_parser("schema", help="list the measurements, tags and fields")
    schema.set_defaults(func=run_schema)


# -- helpers ---------------------------------------------------------------------------------


def _context(args: argparse.Namespace) -> tuple[Any, Path, MetricsSettings]:
    config = config_from_args(args)
    data_dir = data_dir_from_args(args, config)
    if config is not None:
        settings = MetricsSettings.from_config(config)
    elif (data_dir / "products.json").exists():
        from growthwatch.demo.pipeline import DEMO_METRICS  # a demo folder: its FX and funnel

        settings = DEMO_METRICS
    else:
        settings = MetricsSettings()
    return config, data_dir, settings


def _run(args: argparse.Namespace, full: bool) -> int:
    console = Console(stderr=True)
    config, data_dir, settings = _context(args)
    ledger_path = ledger_path_from_args(args, config, data_dir)
    if not ledger_path.exists():
        console.print(f"[red]no ledger at {ledger_path}[/red] (run `growthwatch demo` first?)")
        return 1
    series = SeriesStore(data_dir / "series.duckdb")
    stores: list[Store] = [series]
    influx = influx_from_args(args, config, data_dir)
    try:
        if influx is not None:
            influx.ensure_database()
            stores.append(influx)
        with Ledger(ledger_path) as ledger:
            engine = MetricsEngine(ledger, settings, state_path=data_dir / STATE_FILE)
            if full:
                since = pd.Timestamp(args.since, tz="UTC") if args.since else None
                until = pd.Timestamp(args.until, tz="UTC") if args.until else None
                result = engine.recompute(stores, since=since, until=until)
            else:
                result = engine.update(stores)
    except FxError as exc:
        console.print(f"[red]{exc}[/red]")
        return 1
    except InfluxError as exc:
        console.print(f"[red]InfluxDB: {exc}[/red]")
        return 1
    finally:
        series.close()
    _report(result)
    return 0


def _report(result: RunResult) -> None:
    out = Console()
    out.print(
        f"metrics {result.mode}: {result.events:,} events, {result.points:,} points "
        f"in {result.seconds:.1f}s"
    )
    if result.families:
        table = Table("family", "buckets from")
        for family, start in result.families.items():
            table.add_row(family, start)
        out.print(table)


def run_recompute(args: argparse.Namespace) -> int:
    return _run(args, full=True)


def run_update(args: argparse.Namespace) -> int:
    return _run(args, full=False)


_RATES = ("rate", "grr", "nrr", "stickiness", "conversion")


def _format(column: str, value: object, ints: tuple[str, ...]) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "—"
    if isinstance(value, pd.Timestamp):
        return value.strftime("%Y-%m-%d %H:%M") if value.hour or value.minute else \
            value.strftime("%Y-%m-%d")  # fmt: skip
    if isinstance(value, float):
        if any(part in column for part in _RATES):
            return f"{value:.2%}"
        return f"{value:,.0f}" if column in ints else f"{value:,.2f}"
    return str(value)


def run_show(args: argparse.Namespace) -> int:
    console = Console(stderr=True)
    name = ALIASES.get(args.metric, args.metric)
    if name not in BY_NAME:
        console.print(f"[red]unknown metric {args.metric!r}[/red]; try: {', '.join(ALIASES)}")
        return 2
    spec = BY_NAME[name]
    _, data_dir, _ = _context(args)
    path = data_dir / "series.duckdb"
    if not path.exists():
        console.print(f"[red]no series at {path}[/red] (run `growthwatch metrics recompute`)")
        return 1
    tags = {"product": args.product}
    for item in args.where:
        key, _, value = item.partition("=")
        tags[key] = value
    store = SeriesStore(path)
    try:
        start = pd.Timestamp(args.start, tz="UTC") if args.start else None
        end = pd.Timestamp(args.end, tz="UTC") if args.end else None
        frame = store.read(name, start=start, end=end, tags=tags)
    finally:
        store.close()
    if frame.empty or "time" not in frame or len(frame.columns) <= 1:
        console.print(f"no {name} points for {tags}")
        return 1
    if args.fields and args.fields != "all":
        fields = args.fields.split(",")
    else:
        chosen = spec.fields if args.fields == "all" else HEADLINE.get(name, spec.fields)
        fields = [f for f in chosen if f in frame]
    for f in fields:
        if f not in frame:
            frame[f] = float("nan")  # never written: undefined for every row shown
    other_tags = [t for t in spec.tags if t in frame and t not in tags]
    frame = frame.sort_values(["time", *other_tags]).tail(args.limit)
    table = Table(title=f"{name}  {' '.join(f'{k}={v}' for k, v in tags.items())}")
    columns = ["time", *other_tags, *fields]
    for col in columns:
        table.add_column(col, justify="left" if col in ("time", *other_tags) else "right")
    for row in frame[columns].itertuples(index=False):
        table.add_row(*(_format(c, v, spec.ints) for c, v in zip(columns, row, strict=True)))
    out = Console()
    if not out.is_terminal:  # piped or logged: full numbers rather than an 80-column cut
        out = Console(width=max(out.width, 40 + 14 * len(columns)))
    out.print(table)
    return 0


def run_schema(args: argparse.Namespace) -> int:
    table = Table("measurement", "bucket", "tags", "fields")
    for m in MEASUREMENTS:
        table.add_row(m.name, m.bucket, ", ".join(m.tags), ", ".join(m.fields))
    Console().print(table)
    return 0
