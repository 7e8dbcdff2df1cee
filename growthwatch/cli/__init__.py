"""The ``growthwatch`` command line.

Each command group lives in a module that exposes ``register(subparsers)``: the core's own
under ``growthwatch.cli``, each component's in its own package (``exporters.cli``,
``detectors.cli``, ...), so a component owns its commands and the core never imports a
component's internals. ``COMMANDS`` lists them in ``--help`` order; adding a command is
adding a module and one line here. Shared flags (``--config``, ``--data-dir``) come from
``growthwatch.cli.common``; a ``CliError`` anywhere becomes one line on stderr, exit 2.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Sequence

from growthwatch.cli.common import CliError

COMMANDS = (
    "growthwatch.cli.demo",
    "growthwatch.cli.metrics",
    "growthwatch.cli.products",
    "growthwatch.cli.customers",
    "growthwatch.cli.config_cmd",
    "exporters.cli",
    "dashboards.cli",
    "reports.cli",
    "bigquery_archive.cli",
    "detectors.cli",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="growthwatch",
        description="Growth analytics for a portfolio of products: sources -> ledger -> "
        "metrics -> InfluxDB/Grafana, anomaly alerts and board reports.",
    )
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more logging")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in COMMANDS:
        importlib.import_module(name).register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    level = logging.WARNING - 10 * min(args.verbose, 2)
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        return int(args.func(args) or 0)
    except CliError as exc:
        print(f"growthwatch: error: {exc}", file=sys.stderr)
        return exc.code
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
