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
from growthwatch.cli.output import add_format_arg, emit, records
from growthwatch.config import ConfigError
from growthwatch.stores.spool import SpoolError


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

    status = sub.add_parser(
        "status",
        help="per product and source: last success, cursor lag, failures, rejections, spool",
        description="Read the data directory of a config (no server needed, safe while "
        "`serve` runs) and show, per configured source, when it last succeeded, how far its "
        "cursor lags, its last failure, its rejections and pending webhook deliveries; then "
        "the InfluxDB spool and how far the metrics are behind the ledger.",
    )  # fmt: skip
    add_config_args(status, required=True, data_dir=False)
    add_format_arg(status)
    status.set_defaults(func=run_status)


def run_serve(args: argparse.Namespace) -> int:
    from exporters.service import Service, describe  # heavy imports only for this command

    console = Console(stderr=True)
    config = config_from_args(args)
    assert config is not None  # --config is required
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    try:
        service = Service(config, base=args.config.resolve().parent)
    except SpoolError as exc:
        raise CliError(str(exc)) from exc
    with service:
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


def run_status(args: argparse.Namespace) -> int:
    """Exit status 1 when any source's last pull failed or a credential is missing."""
    import json as _json

    import pandas as pd

    from exporters.base import LAST_ERROR, LAST_SUCCESS
    from exporters.service import all_sources
    from exporters.state import StateStore
    from growthwatch import clock
    from growthwatch.metrics.engine import STATE_FILE
    from growthwatch.stores.spool import Spool

    config = config_from_args(args)
    assert config is not None
    now = clock.now()
    state_path = config.data_dir / "exporters.sqlite"
    state = StateStore(state_path) if state_path.exists() else None
    rows = []
    failing = False
    for source in all_sources(config):
        sid = f"{source.product}/{source.name}"
        cursor = state.get_cursor(sid) if state else None
        success = state.get_cursor(sid, LAST_SUCCESS) if state else None
        error = state.get_cursor(sid, LAST_ERROR) if state else None
        problem = ""
        try:
            for key, value in source.options.items():
                if isinstance(value, str) and value.startswith("${"):
                    source.secret(key)
        except ConfigError as exc:
            problem = str(exc).splitlines()[-1].strip()
        if error:
            problem = f"{error['at']}: {error['error']}"
        failing = failing or bool(problem)
        lag = (now - pd.Timestamp(cursor).to_pydatetime()).total_seconds() if cursor else None
        rows.append({
            "source": sid, "type": source.type, "last_success": success,
            "cursor_lag_s": None if lag is None else round(lag), "failing": problem or None,
            "rejected": len(state.rejected(sid)) if state else 0,
            "pending_webhooks": len(state.inbox_pending(sid)) if state else 0,
        })  # fmt: skip
    frame = pd.DataFrame(rows)
    spool = Spool(config.data_dir / "influx-spool")
    engine = config.data_dir / STATE_FILE
    engine_state = _json.loads(engine.read_text()) if engine.exists() else {}
    metrics_failing: dict[str, str] = dict(engine_state.get("failing") or {})
    summary: dict[str, Any] = {"spool_points": spool.lines(), "spool_batches": len(spool),
               "metrics_last_seq": engine_state.get("last_seq"),
               "metrics_failing": metrics_failing}  # fmt: skip
    failing = failing or bool(metrics_failing)
    if args.format == "json":  # one document: the sources and the pipeline's queues
        print(_json.dumps({"sources": records(frame, list(frame.columns)), **summary}, indent=1))
    else:
        emit(frame, list(frame.columns), fmt=args.format, keys=["source"],
             text_columns=["failing"], title="sources")  # fmt: skip
    if args.format == "table":
        print(f"InfluxDB spool: {summary['spool_points']:,} point(s) in "
              f"{summary['spool_batches']} batch(es) waiting; metrics processed up to ledger "
              f"seq {summary['metrics_last_seq']}")  # fmt: skip
        for product, reason in metrics_failing.items():
            print(f"metrics of {product} not computed: {reason}")
    if state is not None:
        state.close()
    return 1 if failing else 0
