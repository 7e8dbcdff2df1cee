"""``growthwatch demo``: the whole pipeline on generated data, on a fresh machine."""

from __future__ import annotations

import argparse
import importlib.util
from datetime import date, timedelta
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from growthwatch.cli.common import (
    DEFAULT_DATA_DIR,
    add_config_args,
    config_from_args,
    data_dir_from_args,
    influx_from_args,
    prog,
)
from growthwatch.cli.output import add_format_arg, emit
from growthwatch.currency import format_money
from growthwatch.demo.generator import DemoSpec, estimated_events
from growthwatch.demo.pipeline import run_demo
from growthwatch.stores.influx import InfluxError


def register(sub: Any) -> None:
    parser = sub.add_parser(
        "demo",
        help="generate demo data and run it through ledger, metrics and stores",
        description="Generate a deterministic portfolio of 12 products over 18 months, store it "
        "in the embedded ledger, compute daily series and, when InfluxDB is configured, write "
        "them there too. Running it again with the same seed changes nothing.",
    )
    defaults = DemoSpec()
    parser.add_argument("--seed", type=int, default=defaults.seed)
    parser.add_argument("--products", type=int, default=defaults.products)
    parser.add_argument("--months", type=int, default=defaults.months)
    parser.add_argument("--days", type=int, default=None, help="generate N days instead of months")
    parser.add_argument(
        "--events-per-day", type=int, default=defaults.events_per_day,
        help="mean portfolio-wide events per day (default %(default)s; 2000000 for a heavy day)",
    )  # fmt: skip
    parser.add_argument(
        "--end", type=date.fromisoformat, default=defaults.end, help="exclusive end date"
    )
    add_config_args(parser)
    add_format_arg(parser)  # csv/json: the per-product summary on stdout, the rest on stderr
    parser.add_argument(
        "--influx-url", help="also write to this InfluxDB (v1 API), e.g. http://127.0.0.1:8086"
    )
    parser.add_argument("--influx-db", default=None, help="InfluxDB database (default growthwatch)")
    parser.add_argument(
        "--no-raw-events", action="store_true", help="write only series to InfluxDB"
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    console = Console(stderr=True)
    config = config_from_args(args)
    spec = DemoSpec(
        seed=args.seed, products=args.products, months=args.months, days=args.days,
        events_per_day=args.events_per_day, end=args.end,
    )  # fmt: skip
    influx = influx_from_args(args, config, data_dir_from_args(args, config))
    raw = not args.no_raw_events and (config is None or config.influxdb is None
                                      or config.influxdb.raw_events)  # fmt: skip
    data_dir = data_dir_from_args(args, config)
    total = estimated_events(spec)
    console.print(
        f"growthwatch demo: {spec.products} products, {spec.start} .. {spec.end} (seed {spec.seed}),"
        f" ~{total:,} events -> {data_dir}"
        + (f" and {influx.url}/{influx.database}" if influx else "")
    )
    columns = (
        TextColumn("{task.description:<22}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=console, transient=False) as bar:
        tasks = {"ledger": bar.add_task("generate -> ledger", total=total)}
        if influx is not None and raw:
            tasks["influx"] = bar.add_task("events -> InfluxDB", total=total)

        def progress(stage: str, n: int) -> None:
            bar.advance(tasks[stage], n)

        try:
            result = run_demo(spec, data_dir, influx=influx, raw_events=raw, progress=progress)
        except InfluxError as exc:
            console.print(f"[red]InfluxDB: {exc}[/red]")
            return 1
        for task in tasks.values():
            bar.update(task, total=bar.tasks[task].completed)
    out = Console(stderr=args.format != "table")
    if not out.is_terminal:  # piped or logged: full numbers rather than an 80-column cut
        out = Console(width=max(out.width, 120), stderr=args.format != "table")
    summary = result.summary.rename(columns={"net_revenue": "net revenue",
                                             "active_customers": "active customers"})  # fmt: skip
    shown = ["product", "events", "currency", "net revenue", "signups", "cancellations",
             "active customers"]  # fmt: skip
    for col in ("signups", "cancellations", "active customers"):
        summary[col] = summary[col].astype("int64")
    emit(summary, shown, fmt=args.format, keys=["product", "currency"], console=out,
         title=f"growthwatch demo: {result.generated:,} events in {result.seconds:.1f}s",
         formatters={"net revenue": lambda v, row: format_money(v, str(row["currency"]),
                                                                code=False)})  # fmt: skip
    out.print(
        f"ledger: {result.inserted:,} new, {result.duplicates:,} already there, "
        f"{result.rejected:,} rejected; {result.series_points:,} series points"
    )
    if influx is not None:
        out.print(
            f"InfluxDB: {result.influx.points:,} points written, {result.influx.spooled:,} spooled"
        )
    if importlib.util.find_spec("detectors") is not None:  # the detector vs the ground truth
        from detectors.demo import run_detector, summary_lines

        with console.status("detector: replaying the portfolio against the injected incidents"):
            score = run_detector(spec, result.data_dir)
        out.print("")
        for line in summary_lines(score):
            out.print(line)
    gw = prog()
    at = "" if result.data_dir == DEFAULT_DATA_DIR else f" --data-dir {result.data_dir}"
    def hint(text: str) -> None:  # one line each, never wrapped: a hint runs as printed
        out.print(text, soft_wrap=True, highlight=False)

    hint("\nWhere to look next:")
    hint(f"  ledger (DuckDB):      {result.ledger_path}")
    hint(f"  series (DuckDB):      {result.ledger_path.with_name('series.duckdb')}")
    hint(f"  injected incidents:   {result.ground_truth}")
    hint(f"  products:             {gw} products{at}")
    hint(f"  metrics as a table:   {gw} metrics show churn{at}")
    hint(f"  one product's MRR:    {gw} metrics show mrr --product {result.summary['product'].iloc[0]}{at}")
    hint(f"  new events later:     {gw} metrics update{at}")
    if importlib.util.find_spec("detectors") is not None:
        last = spec.end - timedelta(days=31)
        hint(f"  what would have paged: {gw} detect backtest --since {last.isoformat()} "
             f"--product {result.summary['product'].iloc[0]}{at}")  # fmt: skip
    hint(f"  check a config:       {gw} config example > growthwatch.yaml && "
         f"{gw} config check growthwatch.yaml")  # fmt: skip
    if importlib.util.find_spec("reports") is not None:  # the board report component
        from reports.build import demo_report

        with console.status("board report: the last complete month"):
            report = demo_report(result.data_dir, spec.end)
        hint(f"  board report:         {report}")
    if influx is not None:
        hint(
            f"  InfluxQL:             SELECT * FROM customers_daily WHERE product='...'  (db {influx.database})"
        )
    return 0 if result.rejected == 0 else 1
