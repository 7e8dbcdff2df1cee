"""``growthwatch backfill SOURCE --since DATE``: history of one source, resumable."""

from __future__ import annotations

import argparse
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn, TimeElapsedColumn

from growthwatch.config import ConfigError, load_config


def register(sub: Any) -> None:
    parser = sub.add_parser(
        "backfill",
        help="read a source's history from a date on (safe to interrupt and re-run)",
        description="Read SOURCE (product/name, or a name only one product has) from --since "
        "to now into the ledger. The backfill's progress is saved after every window, so "
        "running the same command again after an interrupt continues where it stopped; "
        "events already stored are never counted twice. Stop `growthwatch serve` first: "
        "the ledger file has one writer.",
    )
    parser.add_argument("source", help="e.g. acme-crm/stripe")
    parser.add_argument("--since", type=date.fromisoformat, required=True, help="YYYY-MM-DD")
    parser.add_argument("--until", type=date.fromisoformat, default=None, help="YYYY-MM-DD (default now)")
    parser.add_argument("--config", type=Path, required=True, help="growthwatch.yaml")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from exporters.base import SourceError
    from exporters.service import Service, select_source

    console = Console(stderr=True)
    try:
        config = load_config(args.config)
        source = select_source(config, args.source)
    except (ConfigError, ValueError) as exc:
        console.print(f"[red]{exc}[/red]")
        return 2
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
    console.print(str(result))
    return 0 if result.rejected == 0 else 1
