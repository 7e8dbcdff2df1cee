"""``growthwatch config check FILE`` and ``growthwatch config example``."""

from __future__ import annotations

import argparse
import sys
from importlib import resources
from typing import Any

from growthwatch.config import check_file, env_problems


def register(sub: Any) -> None:
    parser = sub.add_parser("config", help="check or print configuration")
    csub = parser.add_subparsers(dest="config_command", metavar="ACTION", required=True)
    check = csub.add_parser(
        "check",
        help="validate a config file against the schema",
        description="Print every problem with its YAML path, line and a hint. Secret values "
        "are never printed. Exit status 1 when there is any problem.",
    )
    check.add_argument("file", help="path to growthwatch.yaml")
    check.add_argument(
        "--env", action="store_true", help="also report ${VAR} references whose variable is unset"
    )
    check.set_defaults(func=run_check)
    example = csub.add_parser("example", help="print the commented example config")
    example.set_defaults(func=run_example)


def example_text() -> str:
    return (resources.files("growthwatch.config") / "growthwatch.example.yaml").read_text()


def run_example(args: argparse.Namespace) -> int:
    sys.stdout.write(example_text())
    return 0


def run_check(args: argparse.Namespace) -> int:
    try:
        problems, data = check_file(args.file)
    except OSError as exc:
        print(f"{args.file}: cannot read: {exc.strerror}", file=sys.stderr)
        return 2
    if args.env and data is not None:
        problems += env_problems(data)
    for problem in problems:
        print(problem.render(args.file))
    if problems:
        print(f"{args.file}: {len(problems)} problem(s)", file=sys.stderr)
        return 1
    print(f"{args.file}: OK")
    return 0
