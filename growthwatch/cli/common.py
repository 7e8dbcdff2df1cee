"""What several commands share: the InfluxDB a command line or a config points at."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from growthwatch.stores.influx import InfluxStore


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
