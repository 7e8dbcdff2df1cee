"""``growthwatch serve --config FILE``: scheduled pulls, the Stripe webhook endpoint, /metrics."""

from __future__ import annotations

import argparse
import signal
import threading
from pathlib import Path
from typing import Any

from rich.console import Console

from growthwatch.config import ConfigError, load_config


def register(sub: Any) -> None:
    parser = sub.add_parser(
        "serve",
        help="run the source exporters: schedules, Stripe webhooks, Prometheus /metrics",
        description="Run every configured source on its schedule, serve the Stripe webhook "
        "endpoint (POST /webhooks/stripe/<product>) and Prometheus metrics (/metrics on the "
        "same port, and on server.metrics_port if set). Stops cleanly on SIGINT/SIGTERM.",
    )
    parser.add_argument("--config", type=Path, required=True, help="growthwatch.yaml")
    parser.add_argument(
        "--no-schedule", action="store_true", help="webhooks and /metrics only, no pulls"
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from exporters.service import Service, describe  # heavy imports only for this command

    console = Console(stderr=True)
    try:
        config = load_config(args.config)
    except ConfigError as exc:
        console.print(f"[red]{exc}[/red]")
        return 2
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    with Service(config, base=args.config.resolve().parent) as service:
        try:
            service.start(schedule=not args.no_schedule)
        except ConfigError as exc:
            console.print(f"[red]{exc}[/red]")
            return 2
        assert service.receiver is not None
        console.print(f"growthwatch serve: webhooks and /metrics on {service.receiver.url}")
        for path in sorted(service.receiver.routes):
            console.print(f"  POST {path}")
        for line in describe(service.streams):
            console.print(f"  pull {line}")
        stop.wait()
        console.print("stopping ...")
    return 0
