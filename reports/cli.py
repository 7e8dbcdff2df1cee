"""``growthwatch report``: the board report of one month as PDF (and HTML), optionally sent."""

from __future__ import annotations

import argparse
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from growthwatch import ConfigError
from growthwatch.cli.common import (
    CliError,
    add_config_args,
    config_from_args,
    data_dir_from_args,
    influx_from_args,
)
from reports.build import build_report, default_pdf_path, product_names
from reports.collect import CollectError
from reports.period import Month, PeriodError, last_complete_month, zone


def register(sub: Any) -> None:
    parser = sub.add_parser(
        "report",
        help="the monthly board report (PDF and HTML)",
        description="Build the board report of one month of the reporting timezone from the "
        "metric series: portfolio headline numbers, a KPI table and charts per product, the "
        "month's anomalies and highlights. Reads the embedded series store, or InfluxDB with "
        "--influx-url.",
    )
    parser.add_argument("--month", metavar="YYYY-MM", default=None,
                        help="the month to report (default: the last complete month)")  # fmt: skip
    parser.add_argument(
        "--products", nargs="+", metavar="ID", default=None,
        help="only these products (ids, space or comma separated; default: every product, "
        "or report.products of --config)",
    )  # fmt: skip
    parser.add_argument("--out", type=Path, default=None, metavar="FILE",
                        help="PDF to write (default DATA_DIR/reports/board-report-YYYY-MM.pdf)")  # fmt: skip
    parser.add_argument("--html", type=Path, default=None, metavar="FILE",
                        help="also write the report as one self-contained HTML file")  # fmt: skip
    parser.add_argument("--no-pdf", action="store_true", help="write only the HTML (needs --html)")
    parser.add_argument("--send", action="store_true",
                        help="deliver it to report.delivery of --config (apprise URLs)")  # fmt: skip
    add_config_args(parser)
    parser.add_argument("--influx-url", help="read the series from this InfluxDB (v1 API)")
    parser.add_argument("--influx-db", default=None, help="InfluxDB database (default growthwatch)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    config = config_from_args(args)
    data_dir = data_dir_from_args(args, config)
    currency = config.reporting_currency if config else "USD"
    timezone = config.timezone if config else "UTC"
    section = config.section("report") if config else {}
    now = datetime.now(UTC)
    try:
        month = Month.parse(args.month) if args.month else last_complete_month(now, zone(timezone))
    except PeriodError as exc:
        raise CliError(f"--month: {exc}") from exc
    products = [p for item in args.products or [] for p in item.split(",") if p]
    products = products or list(section.get("products") or [])
    if args.no_pdf and args.html is None:
        raise CliError("--no-pdf writes nothing without --html FILE")
    if args.send and (config is None or not section.get("delivery")):
        raise CliError("--send needs --config with report.delivery (apprise URLs as ${ENV})")
    influx = influx_from_args(args, config, data_dir) if args.influx_url else None
    names = {p.id: p.name for p in config.products if p.name != p.id} if config else {}
    pdf = None if args.no_pdf else (args.out or default_pdf_path(data_dir, month))
    reader: Any
    if influx is not None:
        reader = influx
    else:
        from growthwatch import SeriesStore

        path = data_dir / "series.duckdb"
        if not path.exists():
            raise CliError(f"no series store at {path}: run `growthwatch demo` or "
                           "`growthwatch metrics recompute` first, or pass --data-dir")  # fmt: skip
        reader = SeriesStore(path)
    metrics = config.section("metrics") if config else {}
    try:
        built = build_report(
            reader, month, now=now, pdf=pdf, html=args.html, currency=currency,
            timezone=timezone, products=products or None,
            names=product_names(data_dir, names),
            activation_window_days=int(metrics.get("activation_window_days", 7)),
        )  # fmt: skip
    except (CollectError, PeriodError) as exc:
        raise CliError(str(exc)) from exc
    finally:
        close = getattr(reader, "close", None)
        if close is not None and influx is None:
            close()
    for written in (built.pdf, built.html):
        if written is not None:
            print(f"report {month} written to {written}")
    for note in built.data.notes:
        print(f"note: {note}")
    if args.send:
        assert config is not None and built.pdf is not None
        from reports.service import ReportScheduler, ReportSettings

        scheduler = ReportScheduler(ReportSettings.from_section(section), reader, data_dir)
        try:
            urls = list(scheduler.targets().values())
        except ConfigError as exc:
            raise CliError(str(exc)) from exc
        from reports.deliver import message, send
        from reports.highlights import highlights

        settings = scheduler.settings
        body = message(built.data.title, highlights(built.data), built.pdf, settings.link_base,
                       settings.attach_pdf)  # fmt: skip
        results = send(built.pdf, month=str(month), urls=urls, title=built.data.title,
                       body=body, attach=settings.attach_pdf, record=scheduler.record)  # fmt: skip
        for r in results:
            print(f"sent to {r.target}: {'ok' if r.ok else 'FAILED: ' + r.error}")
        return 0 if all(r.ok for r in results) else 1
    return 0
