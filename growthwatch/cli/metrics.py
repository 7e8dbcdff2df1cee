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
import sys
from datetime import date
from pathlib import Path
from typing import Any

import pandas as pd
from rich.console import Console

from growthwatch.cli.common import (
    CliError,
    add_config_args,
    config_from_args,
    data_dir_from_args,
    influx_from_args,
    ledger_path_from_args,
    metrics_settings,
    prog,
)
from growthwatch.cli.output import Formatter, add_format_arg, emit
from growthwatch.currency import format_money
from growthwatch.metrics.engine import STATE_FILE, MetricsEngine, RunResult, Store
from growthwatch.metrics.fx import FxError
from growthwatch.metrics.schema import BY_NAME, MEASUREMENTS, native_currency, unit
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
# The segment series of a product measurement (``--where plan=pro``, ``--by plan``).
SEGMENTED = {
    "mrr_daily": "mrr_segments_daily",
    "customers_daily": "customers_segments_daily",
    "churn_monthly": "churn_segments_monthly",
    "revenue_daily": "revenue_segments_daily",
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
    add_format_arg(rec)
    rec.set_defaults(func=run_recompute)

    upd = actions.add_parser("update", help="process events added since the last run")
    writers(upd)
    add_format_arg(upd)
    upd.set_defaults(func=run_update)

    show = actions.add_parser(
        "show", help="print a metric series (table, csv or json)",
        description="Print one measurement of the embedded series store. Dates: YYYY-MM-DD or "
        "YYYY-MM (a month: --from is its first day, --to includes the whole month).",
    )  # fmt: skip
    common(show)
    show.add_argument("metric", help=f"a measurement or one of: {', '.join(ALIASES)}")
    show.add_argument("--product", default="all",
                      help="product id, or all (default; `growthwatch products` lists them)")  # fmt: skip
    show.add_argument("--from", dest="start", type=parse_day_arg, metavar="DAY|MONTH",
                      help="first day (inclusive), e.g. 2026-01-01 or 2026-01")  # fmt: skip
    show.add_argument("--to", dest="end", type=parse_end_arg, metavar="DAY|MONTH",
                      help="end day (exclusive), or a month (included), e.g. 2026-02-01 or 2026-01")  # fmt: skip
    show.add_argument(
        "--fields", help="comma-separated fields, or `all` (default: the headline fields)"
    )
    show.add_argument("--where", action="append", default=[], metavar="TAG=VALUE",
                      help="filter on another tag, e.g. basis=logo or channel=all, or on a "
                      "segment, e.g. plan=pro (mrr, customers, churn, revenue)")  # fmt: skip
    show.add_argument("--by", metavar="DIMENSION",
                      help="one row group per segment of a dimension, e.g. plan, interval, "
                      "country, channel (mrr, customers, churn, revenue)")  # fmt: skip
    show.add_argument("--limit", type=int, default=60,
                      help="show the last N rows of the range (default 60; 0 for all)")  # fmt: skip
    add_format_arg(show)
    show.set_defaults(func=run_show)

    schema = actions.add_parser("schema", help="list the measurements, tags and fields")
    add_format_arg(schema)
    schema.set_defaults(func=run_schema)


def parse_day_arg(text: str) -> date:
    """``YYYY-MM-DD``, or ``YYYY-MM`` for the month's first day."""
    try:
        if len(text) == 7:
            return date.fromisoformat(text + "-01")
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a day or a month; write YYYY-MM-DD (2026-01-15) or YYYY-MM (2026-01)"
        ) from None


def parse_end_arg(text: str) -> date:
    """An exclusive end: a day as given, a month as the first day of the next month."""
    day = parse_day_arg(text)
    if len(text) == 7:
        return date(day.year + day.month // 12, day.month % 12 + 1, 1)
    return day


# -- helpers ---------------------------------------------------------------------------------


def _context(args: argparse.Namespace) -> tuple[Any, Path, MetricsSettings]:
    config = config_from_args(args)
    data_dir = data_dir_from_args(args, config)
    return config, data_dir, metrics_settings(config, data_dir)


def _run(args: argparse.Namespace, full: bool) -> int:
    console = Console(stderr=True)
    config, data_dir, settings = _context(args)
    ledger_path = ledger_path_from_args(args, config, data_dir)
    if not ledger_path.exists():
        console.print(f"[red]no ledger at {ledger_path}[/red] (run `growthwatch demo` first?)")
        return 1
    series = SeriesStore(data_dir / "series.duckdb", memory_limit=settings.series_memory_limit)
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
                engine.release(force=True)  # the kept totals' copy, for the next run
    except FxError as exc:
        console.print(f"[red]{exc}[/red]")
        return 1
    except InfluxError as exc:
        console.print(f"[red]InfluxDB: {exc}[/red]")
        return 1
    finally:
        series.close()
    _report(result, getattr(args, "format", "table"))
    for product, reason in result.failing.items():
        console.print(f"[red]metrics of {product} not computed[/red]: {reason}")
    for family, reason in result.errors.items():
        console.print(f"[red]metric family {family} failed[/red] (the others were written; "
                      f"`growthwatch metrics update` runs it again): {reason}")  # fmt: skip
    return 1 if result.failing or result.errors else 0


def _report(result: RunResult, fmt: str = "table") -> None:
    """What a run did: for people a line and a table of families; csv/json one row per
    family (mode, buckets from, seconds) for scripts."""
    rows = pd.DataFrame(
        [{"family": f, "buckets_from": start, "seconds": result.timings.get(f)}
         for f, start in result.families.items()],
        columns=["family", "buckets_from", "seconds"],
    )  # fmt: skip
    if fmt != "table":
        rows.insert(0, "mode", result.mode)
        emit(rows, list(rows.columns), fmt=fmt)
        return
    out = Console()
    out.print(
        f"metrics {result.mode}: {result.events:,} events, {result.points:,} points "
        f"in {result.seconds:.1f}s"
    )
    if result.families:
        emit(rows, ["family", "buckets_from"], keys=["family"], console=out,
             headers={"buckets_from": "buckets from"})  # fmt: skip


def run_recompute(args: argparse.Namespace) -> int:
    return _run(args, full=True)


def run_update(args: argparse.Namespace) -> int:
    return _run(args, full=False)


def _cell(measurement: str, column: str, reporting: str) -> Formatter | None:
    """How a field's cell reads: counts with separators, ratios as %, money in its
    currency's minor units."""
    if column not in BY_NAME[measurement].fields:
        return None
    kind = unit(measurement, column)
    if kind == "ratio":
        return lambda v, _row: "—" if _missing(v) else f"{float(v):.2%}"
    if kind == "count":
        return lambda v, _row: "—" if _missing(v) else f"{int(v):,}"
    if kind == "money":
        if native_currency(measurement, column):
            return lambda v, row: "—" if _missing(v) else format_money(v, row["currency"], code=False)
        return lambda v, _row: "—" if _missing(v) else format_money(v, reporting, code=False)
    return lambda v, _row: "—" if _missing(v) else f"{float(v):,.2f}"


def _missing(value: object) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def _header(measurement: str, column: str, reporting: str) -> str:
    if column in BY_NAME[measurement].fields and unit(measurement, column) == "money":
        if native_currency(measurement, column):
            return f"{column} (in currency)"
        return f"{column} ({reporting})"
    if column in BY_NAME[measurement].fields and unit(measurement, column) == "ratio":
        return f"{column} %"
    return column


def _measurement_of(name: str) -> str:
    """The measurement an alias or name means; a field name or a typo is a CliError."""
    measurement = ALIASES.get(name, name)
    if measurement in BY_NAME:
        return measurement
    owners = [m.name for m in MEASUREMENTS if name in m.fields]
    if owners:
        alias = {v: k for k, v in reversed(ALIASES.items())}
        first = owners[0]
        raise CliError(
            f"{name!r} is a field of {', '.join(owners)}, not a metric; try "
            f"`growthwatch metrics show {alias.get(first, first)} --fields {name}`"
        )
    raise CliError(f"unknown metric {name!r}; choose a measurement ({', '.join(BY_NAME)}) "
                   f"or an alias ({', '.join(ALIASES)})")  # fmt: skip


def _segment_query(
    name: str, where: list[str], by: str | None, settings: MetricsSettings
) -> tuple[str, dict[str, str], list[str]]:
    """The measurement to read and the segment tags of ``--where DIM=VALUE`` and ``--by
    DIM``: a product measurement becomes its segment measurement (dimension, segment tags).
    Returns (measurement, segment tags, --where items left for the measurement's own tags)."""
    dims = settings.segments.dimensions
    spec = BY_NAME[name]
    seg: dict[str, str] = {}
    rest = []
    for item in where:
        key, sep, value = item.partition("=")
        if sep and key and key not in spec.tags and key not in ("dimension", "segment"):
            if key not in dims:
                raise CliError(f"--where {key}: {name} has no tag {key!r} and {key} is not a "
                               f"configured segment dimension; tags: {', '.join(spec.tags)}; "
                               f"segments: {', '.join(dims) or 'none (metrics.segments)'}")  # fmt: skip
            if "dimension" in seg and seg["dimension"] != key:
                raise CliError(f"--where {key}: one segment dimension at a time (already "
                               f"{seg['dimension']})")  # fmt: skip
            seg.update(dimension=key, segment=value)
        else:
            rest.append(item)
    if by is not None:
        if by not in dims:
            raise CliError(f"--by {by}: not a configured segment dimension; segments: "
                           f"{', '.join(dims) or 'none (metrics.segments)'}")  # fmt: skip
        if seg.get("dimension", by) != by:
            raise CliError(f"--by {by} with --where {seg['dimension']}=...: one segment "
                           "dimension at a time")  # fmt: skip
        seg["dimension"] = by
    if seg and name not in SEGMENTED.values():
        if name not in SEGMENTED:
            alias = {v: k for k, v in reversed(ALIASES.items())}
            raise CliError(f"{name} has no segment series; segments exist for "
                           f"{', '.join(alias.get(m, m) for m in SEGMENTED)}")  # fmt: skip
        name = SEGMENTED[name]
    return name, seg, rest


def run_show(args: argparse.Namespace) -> int:
    name = _measurement_of(args.metric)
    _, data_dir, settings = _context(args)
    product_name = name
    name, segment_tags, where = _segment_query(name, args.where, args.by, settings)
    spec = BY_NAME[name]
    if args.limit < 0:
        raise CliError(f"--limit {args.limit}: give a number of rows >= 0 (0 shows all)")
    if args.start and args.end and args.end <= args.start:
        raise CliError(f"the range is empty: --from starts {args.start}, --to ends before "
                       f"{args.end} (--to is exclusive for a day, inclusive for a month)")  # fmt: skip
    path = data_dir / "series.duckdb"
    if not path.exists():
        hint = prog()
        raise CliError(f"no series at {path}; run `{hint} demo` or `{hint} metrics recompute`"
                       + (f" --data-dir {data_dir}" if args.data_dir else "") + " first")  # fmt: skip
    tags = {"product": args.product, **segment_tags}
    for item in where:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise CliError(f"--where {item!r}: write TAG=VALUE, e.g. --where basis=logo")
        if key not in spec.tags:
            raise CliError(f"--where {key}: {name} has no tag {key!r}; tags: {', '.join(spec.tags)}")
        tags[key] = value
    if args.fields and args.fields != "all":
        fields = [f.strip() for f in args.fields.split(",") if f.strip()]
        unknown = [f for f in fields if f not in spec.fields]
        if unknown:
            raise CliError(f"--fields: {name} has no field {unknown[0]!r}; fields: "
                           f"{', '.join(spec.fields)} (or all)")  # fmt: skip
    else:
        headline = HEADLINE.get(name, HEADLINE.get(product_name, spec.fields))
        fields = list(spec.fields if args.fields == "all" else headline)
    store = SeriesStore(path)
    try:
        known = store.tag_values("product")
        if known and args.product not in known:
            raise CliError(f"unknown product {args.product!r}; products: {', '.join(known)}")
        start = pd.Timestamp(args.start, tz="UTC") if args.start else None
        end = pd.Timestamp(args.end, tz="UTC") if args.end else None
        frame = store.read(name, start=start, end=end, tags=tags)
        values: list[str] = []
        if (frame.empty or len(frame.columns) <= 1) and "segment" in tags:
            # which segments there are, so a near miss (plan=pro vs pro-monthly) is one step
            others = {k: v for k, v in tags.items() if k != "segment"}
            values = sorted(set(store.read(name, tags=others).get("segment", [])))
    finally:
        store.close()
    if frame.empty or len(frame.columns) <= 1:
        print(f"no {name} points for {' '.join(f'{k}={v}' for k, v in tags.items())}"
              + (f" from {args.start}" if args.start else "")
              + (f" to {args.end}" if args.end else "")
              + (f"; {tags['dimension']} segments: {', '.join(values)}" if values else ""),
              file=sys.stderr)  # fmt: skip
        return 1
    for f in fields:
        if f not in frame:
            frame[f] = float("nan")  # never written: undefined for every row shown
    for f in fields:
        if f in spec.ints:  # counts stay integers in csv and json
            frame[f] = pd.to_numeric(frame[f]).round().astype("Int64")
    other_tags = [t for t in spec.tags if t in frame and t not in tags]
    if "currency" in other_tags or "currency" in tags:
        frame["currency"] = frame.get("currency", tags.get("currency"))
    if "segment" in other_tags:  # --by: one row group per segment value
        other_tags = ["segment", *[t for t in other_tags if t != "segment"]]
        frame = frame.sort_values([*other_tags, "time"], ignore_index=True)
    else:
        frame = frame.sort_values(["time", *other_tags], ignore_index=True)
    total = len(frame)
    if args.limit and "segment" in other_tags:  # the last N rows of every segment
        frame = frame.groupby("segment", sort=False).tail(args.limit).reset_index(drop=True)
        if len(frame) < total:
            print(f"showing the last {args.limit} rows of each segment (--limit 0 for all)",
                  file=sys.stderr)  # fmt: skip
    elif args.limit and total > args.limit:
        frame = frame.tail(args.limit)
        print(f"showing the last {args.limit} of {total} rows (--limit 0 for all, or narrow "
              "--from/--to)", file=sys.stderr)  # fmt: skip
    columns = ["time", *other_tags, *fields]
    reporting = settings.reporting_currency
    formatters = {c: f for c in fields if (f := _cell(name, c, reporting)) is not None}
    emit(frame, columns, fmt=args.format, keys=["time", *other_tags], formatters=formatters,
         headers={c: _header(name, c, reporting) for c in fields},
         title=f"{name}  {' '.join(f'{k}={v}' for k, v in tags.items())}")  # fmt: skip
    return 0


def run_schema(args: argparse.Namespace) -> int:
    rows = pd.DataFrame(
        [{"measurement": m.name, "bucket": m.bucket, "family": m.family, "tags": ", ".join(m.tags),
          "fields": ", ".join(m.fields)} for m in MEASUREMENTS]
    )  # fmt: skip
    emit(rows, list(rows.columns), fmt=args.format, keys=["measurement", "bucket", "family"],
         text_columns=["tags", "fields"])  # fmt: skip
    return 0
