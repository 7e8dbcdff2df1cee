"""The exporters' commands: ``growthwatch serve`` and ``growthwatch backfill``.

The core CLI lists this module in ``growthwatch.cli.COMMANDS``; the exporters own what
their commands do (the core never imports the exporters).
"""

from __future__ import annotations

import argparse
import signal
import threading
from datetime import UTC, date, datetime
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn, TimeElapsedColumn

from growthwatch.cli.common import CliError, add_config_args, config_from_args
from growthwatch.config import ConfigError


def register(sub: Any) -> None:
    serve = sub.add_parser(
        "serve",
        help="run the source exporters: schedules, Stripe webhooks, Prometheus /metrics",
        description="Run every configured source on its schedule, serve the Stripe webhook "
        "endpoint (POST /webhooks/stripe/<product>) and Prometheus metrics (/metrics on the "
        "same port, and on server.metrics_port if set). Stops cleanly on SIGINT/SIGTERM.",
    )
    add_config_args(serve, required=True, data_dir=False)
    serve.add_argument(
        "--no-schedule", action="store_true", help="webhooks and /metrics only, no pulls"
    )
    serve.set_defaults(func=run_serve)

    backfill = sub.add_parser(
        "backfill",
        help="read a source's history from a date on (safe to interrupt and re-run)",
        description="Read SOURCE (product/name, or a name only one product has) from --since "
        "to now into the ledger. The backfill's progress is saved after every window, so "
        "running the same command again after an interrupt continues where it stopped; "
        "events already stored are never counted twice. Stop `growthwatch serve` first: "
        "the ledger file has one writer.",
    )
    backfill.add_argument("source", help="e.g. acme-crm/stripe")
    backfill.add_argument("--since", type=date.fromisoformat, required=True, help="YYYY-MM-DD")
    backfill.add_argument("--until", type=date.fromisoformat, default=None,
                          help="YYYY-MM-DD (default now)")  # fmt: skip
    backfill.add_argument("--format", choices=("table", "json"), default="table",
                          help="how to print the closing summary (Stripe: subscriptions "
                          "rebuilt exactly / with assumptions / not at all)")  # fmt: skip
    add_config_args(backfill, required=True, data_dir=False)
    backfill.set_defaults(func=run_backfill)


def run_serve(args: argparse.Namespace) -> int:
    from exporters.service import Service, describe  # heavy imports only for this command

    console = Console(stderr=True)
    config = config_from_args(args)
    assert config is not None  # --config is required
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    with Service(config, base=args.config.resolve().parent) as service:
        try:
            service.start(schedule=not args.no_schedule)
        except ConfigError as exc:
            raise CliError(str(exc)) from exc
        assert service.receiver is not None
        console.print(f"growthwatch serve: webhooks and /metrics on {service.receiver.url}")
        for path in sorted(service.receiver.routes):
            console.print(f"  POST {path}")
        for line in describe(service.streams):
            console.print(f"  pull {line}")
        for source, reason in service.not_started.items():
            console.print(f"  [yellow]not started {source}: {reason}[/yellow]")
        stop.wait()
        console.print("stopping ...")
    return 0


def run_backfill(args: argparse.Namespace) -> int:
    from exporters.base import SourceError
    from exporters.service import Service, select_source

    console = Console(stderr=True)
    config = config_from_args(args)
    assert config is not None  # --config is required
    try:
        source = select_source(config, args.source)
    except ValueError as exc:
        raise CliError(str(exc)) from exc
    since = datetime(args.since.year, args.since.month, args.since.day, tzinfo=UTC)
    until = (
        datetime(args.until.year, args.until.month, args.until.day, tzinfo=UTC)
        if args.until else None
    )  # fmt: skip
    with Service(config, base=args.config.resolve().parent) as service:
        stream = service.stream(source)
        columns = (TextColumn("{task.description}"), BarColumn(), TaskProgressColumn(),
                   TimeElapsedColumn())  # fmt: skip
        with Progress(*columns, console=console) as bar:
            task = bar.add_task(f"backfill {stream.stream_id} since {args.since}", total=1.0)
            try:
                result = service.ingestor.sync(
                    stream, since=since, until=until, backfill=True,
                    progress=lambda done: bar.update(task, completed=done),
                )  # fmt: skip
            except SourceError as exc:
                console.print(f"[red]{exc}[/red]")
                return 1
            except KeyboardInterrupt:
                console.print("interrupted: run the same command again to continue")
                return 130
        service.hook.wait_idle(timeout=600)
        summary = getattr(stream, "backfill_summary", None)
        history = summary() if callable(summary) else None
    console.print(str(result))
    if history is not None:
        print_history(history, args.format)
    return 0 if result.rejected == 0 else 1


def print_history(history: Any, fmt: str) -> None:
    """The closing summary of an invoice-based rebuild (``HistorySummary``), on stdout."""
    import json

    from rich.table import Table

    out = Console()
    if fmt == "json":
        out.print_json(json.dumps(history.to_json()))
        return
    table = Table(title="subscription history")
    table.add_column("subscriptions")
    table.add_column("count", justify="right")
    for label, count in history.rows():
        table.add_row(label, str(count))
    out.print(table)
    reasons = history.by_reason()
    if reasons:
        detail = Table(title="assumptions (subscriptions per reason)")
        detail.add_column("reason")
        detail.add_column("subscriptions", justify="right")
        for reason, count in reasons.items():
            detail.add_row(reason, str(count))
        out.print(detail)
