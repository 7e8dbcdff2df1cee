"""What several commands share: the ``--config``/``--data-dir`` arguments, loading the
config with a one-line error, and the InfluxDB a command line or a config points at.

Every command of every component (the core's, ``exporters.cli``, ``detectors.cli``, ...)
takes its config and data directory through ``add_config_args`` and ``config_from_args``
so that the same flags mean the same thing everywhere and a missing or broken file is one
clear line, never a traceback.
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path
from typing import Any

from growthwatch.config import Config, ConfigError, load_config
from growthwatch.metrics.settings import MetricsSettings
from growthwatch.stores.influx import InfluxStore

DEFAULT_DATA_DIR = Path("growthwatch-data")


class CliError(Exception):
    """A mistake on the command line or in its files: printed as one line, exit code 2."""

    def __init__(self, message: str, code: int = 2) -> None:
        super().__init__(message)
        self.code = code


def add_config_args(
    parser: argparse.ArgumentParser, *, required: bool = False, data_dir: bool = True
) -> None:
    """``--config FILE`` (required or not) and, unless ``data_dir=False``, ``--data-dir``."""
    parser.add_argument("--config", type=Path, required=required, metavar="FILE",
                        help="growthwatch.yaml (`growthwatch config example` writes one)")  # fmt: skip
    if data_dir:
        parser.add_argument(
            "--data-dir", type=Path, default=None, metavar="DIR",
            help=f"ledger, series and state folder (default ./{DEFAULT_DATA_DIR} or "
            "storage.data_dir of --config)",
        )  # fmt: skip


def config_from_args(args: argparse.Namespace) -> Config | None:
    """The config ``--config`` names, or None without one; a missing, unreadable or
    invalid file raises ``CliError`` (a ``ConfigError`` keeps its line-by-line report)."""
    path: Path | None = getattr(args, "config", None)
    if path is None:
        return None
    if not path.exists():
        raise CliError(f"--config {path}: no such file (`growthwatch config example > {path}` "
                       "writes a commented example)")  # fmt: skip
    if path.is_dir():
        raise CliError(f"--config {path}: is a directory, not a YAML file")
    try:
        return load_config(path)
    except ConfigError as exc:
        raise CliError(str(exc)) from exc
    except OSError as exc:
        raise CliError(f"--config {path}: cannot be read ({exc.strerror or exc})") from exc


def data_dir_from_args(args: argparse.Namespace, config: Config | None) -> Path:
    """``--data-dir`` wins over the config's ``storage.data_dir``; the default is
    ``./growthwatch-data``."""
    given = getattr(args, "data_dir", None)
    if given is not None:
        return Path(given)
    return Path(config.data_dir) if config is not None else DEFAULT_DATA_DIR


def ledger_path_from_args(args: argparse.Namespace, config: Config | None, data_dir: Path) -> Path:
    """The config's ``storage.ledger`` unless ``--data-dir`` says otherwise."""
    if config is not None and getattr(args, "data_dir", None) is None:
        return Path(config.ledger_path)
    return data_dir / "ledger.duckdb"


def influx_from_args(args: argparse.Namespace, config: Any, data_dir: Path) -> InfluxStore | None:
    """``--influx-url`` wins over the config's ``influxdb`` section; neither means no InfluxDB.

    Unwritten points spool under ``data_dir`` so a later run of any command replays them.
    """
    spool = data_dir / "influx-spool"
    if getattr(args, "influx_url", None):
        return InfluxStore(args.influx_url, args.influx_db or "growthwatch", spool_dir=spool)
    if config is not None and config.influxdb is not None:
        return InfluxStore.from_config(config.influxdb, spool_dir=spool, database=args.influx_db)
    return None


def prog() -> str:
    """The command as the user can type it again: ``growthwatch`` when that is on PATH and
    is this program, else the path it was started by (``.venv/bin/growthwatch``), so every
    hint the CLI prints runs as printed."""
    argv0 = sys.argv[0] if sys.argv and sys.argv[0] else "growthwatch"
    if Path(argv0).name != "growthwatch" or "/" not in argv0:
        return "growthwatch"  # found on PATH, or python -m growthwatch: the documented name
    found = shutil.which("growthwatch")
    if found and Path(found).resolve() == Path(argv0).resolve():
        return "growthwatch"
    try:
        return str(Path(argv0).resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return argv0


def metrics_settings(config: Config | None, data_dir: Path) -> MetricsSettings:
    """The metric settings a command runs with: the config's, else (in a folder the demo
    made) the demo's exchange rates and funnel, else the defaults. One rule for every
    command, so ``metrics``, ``archive`` and ``report`` compute the same numbers."""
    if config is not None:
        return MetricsSettings.from_config(config)
    if (data_dir / "products.json").exists():
        from growthwatch.demo.pipeline import DEMO_METRICS

        return DEMO_METRICS
    return MetricsSettings()
