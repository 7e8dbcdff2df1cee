"""``growthwatch detect``: score any CSV series, replay history (backtest).

``detect score INPUT.csv`` reads ``timestamp,value`` (ISO times, naive = UTC; regular or
irregular, minutes to days), judges every point causally on the points before it and
writes ``timestamp,value,score,anomaly`` (``anomaly`` at the method's default threshold).
A bad row stops with its row number and nothing is written.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd
from rich.console import Console
from rich.table import Table

from detectors.base import DIRECTIONS
from detectors.causal import Policy, replay
from detectors.evaluate import backtest
from detectors.registry import METHODS, method_for
from detectors.settings import DetectorSettings
from growthwatch import Ledger, SeriesStore
from growthwatch.cli.common import CliError, add_config_args, config_from_args, data_dir_from_args


def register(sub: Any) -> None:
    parser = sub.add_parser("detect", help="anomaly detection: score a CSV, replay history")
    cmds = parser.add_subparsers(dest="detect_command", metavar="SUBCOMMAND", required=True)
    score = cmds.add_parser(
        "score", help="score a univariate CSV series (timestamp,value)",
        description="Judge every point of INPUT.csv on the points before it and write "
        "timestamp,value,score,anomaly (score in [0, 1], higher is more anomalous).",
    )  # fmt: skip
    score.add_argument("input", type=Path, help="CSV with columns timestamp,value")
    score.add_argument("--method", default="seasonal_mad",
                       help=f"detection method: {', '.join(METHODS)} (default %(default)s)")  # fmt: skip
    score.add_argument("--direction", choices=DIRECTIONS, default="both",
                       help="which deviations count: up, down or both (default %(default)s)")  # fmt: skip
    score.add_argument("--output", type=Path, help="write here instead of stdout")
    score.add_argument("--threshold", type=float, default=None,
                       help="score at which a point is an anomaly (default: the method's)")  # fmt: skip
    score.add_argument("--min-points", type=int, default=7,
                       help="points of history before the first score (default %(default)s)")  # fmt: skip
    score.set_defaults(func=run_score)
    back = cmds.add_parser(
        "backtest", help="replay history and list what would have fired",
        description="Replay the ledger and series since DATE through the detector and a "
        "fresh alert book, and list every open, escalation and resolve it would have made.",
    )  # fmt: skip
    back.add_argument("--since", type=_date, required=True, help="first day to judge (YYYY-MM-DD)")
    back.add_argument("--until", type=_date, default=None, help="end, exclusive (default: now)")
    back.add_argument("--product", action="append", help="only this product (repeatable)")
    back.add_argument("--format", choices=("table", "csv", "json"), default="table",
                      help="output format (default %(default)s)")  # fmt: skip
    add_config_args(back)
    back.set_defaults(func=run_backtest)


def _date(text: str) -> datetime:
    try:
        return datetime.fromisoformat(text).replace(tzinfo=UTC)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a date: {text!r} (expected YYYY-MM-DD)") from None


def read_series_csv(path: Path) -> pd.Series:
    """``timestamp,value`` rows as a UTC series; CliError naming the first bad row."""
    if not path.exists():
        raise CliError(f"{path}: no such file")
    with path.open(newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        header = [h.strip() for h in reader.fieldnames or []]
        if "timestamp" not in header or "value" not in header:
            raise CliError(f"{path}: the header must have columns timestamp,value (found "
                           f"{','.join(header) or 'nothing'})")  # fmt: skip
        times: list[pd.Timestamp] = []
        values: list[float] = []
        for row_no, row in enumerate(reader, start=2):
            row = {(k or "").strip(): (v or "").strip() for k, v in row.items()}
            try:
                moment = pd.Timestamp(row["timestamp"])
            except (ValueError, TypeError):
                raise CliError(f"{path}: row {row_no}: timestamp {row['timestamp']!r} is not "
                               "an ISO date/time") from None  # fmt: skip
            if moment is pd.NaT or pd.isna(moment):
                raise CliError(f"{path}: row {row_no}: timestamp is empty")
            moment = moment.tz_localize("UTC") if moment.tzinfo is None else moment.tz_convert("UTC")
            try:
                value = float(row["value"])
            except ValueError:
                raise CliError(f"{path}: row {row_no}: value {row['value']!r} is not a number") from None
            if not math.isfinite(value):
                raise CliError(f"{path}: row {row_no}: value {row['value']!r} is not finite")
            if times and moment <= times[-1]:
                what = "repeats" if moment == times[-1] else "goes back before"
                raise CliError(f"{path}: row {row_no}: timestamp {row['timestamp']} {what} the "
                               "row before (rows must be in time order)")  # fmt: skip
            times.append(moment)
            values.append(value)
    if not times:
        raise CliError(f"{path}: no rows")
    return pd.Series(values, index=pd.DatetimeIndex(times))


def score_frame(series: pd.Series, method: str, direction: str, threshold: float | None,
                min_points: int = 7) -> pd.DataFrame:  # fmt: skip
    """The ``detect score`` result: ``timestamp, value, score, anomaly`` (score blank for
    points without enough history)."""
    cls = method_for(method)
    thr = cls.default_threshold if threshold is None else threshold
    span = (series.index[-1] - series.index[0]).total_seconds() / 86_400 if len(series) else 0
    policy = Policy(warning=thr, critical=max(thr, 0.99999), direction=direction,
                    baseline_days=max(min(56.0, span), 1e-3), min_history_days=0.0,
                    min_points=min_points, adapt_after_days=max(min(7.0, span / 4), 1e-3))  # fmt: skip
    rows = replay(series, cls, policy)
    out = pd.DataFrame({
        "timestamp": [t.isoformat().replace("+00:00", "Z") for t in rows.index],
        "value": rows["value"].to_numpy(),
        "score": rows["score"].round(6).to_numpy(),
        "anomaly": (rows["score"] >= thr).astype(int).to_numpy(),
    })  # fmt: skip
    return out


def run_score(args: argparse.Namespace) -> int:
    try:
        method_for(args.method)
    except ValueError as exc:
        raise CliError(str(exc)) from None
    series = read_series_csv(args.input)
    out = score_frame(series, args.method, args.direction, args.threshold, args.min_points)
    if args.output:
        out.to_csv(args.output, index=False)
    else:
        out.to_csv(sys.stdout, index=False)
    return 0


def run_backtest(args: argparse.Namespace) -> int:
    config = config_from_args(args)
    data_dir = data_dir_from_args(args, config)
    ledger_path = data_dir / "ledger.duckdb"
    if not ledger_path.exists():
        raise CliError(f"{ledger_path}: no ledger (run `growthwatch demo` or `serve` first)")
    try:
        settings = DetectorSettings.from_config(config)
    except ValueError as exc:
        raise CliError(str(exc)) from None
    ledger = Ledger(ledger_path)
    # Never judge past the data: days after the ledger's last event would read as outages.
    cursor = ledger.connection
    try:
        (last,) = cursor.execute("SELECT epoch_ms(max(ts)) FROM events").fetchone() or (None,)
    finally:
        cursor.close()
    horizon = (pd.Timestamp(last, unit="ms", tz="UTC").floor("h") + pd.Timedelta(hours=1)
               if last is not None else None)  # fmt: skip
    until = args.until or datetime.now(UTC)
    if horizon is not None and pd.Timestamp(until) > horizon:
        until = horizon.to_pydatetime()
    store = SeriesStore(data_dir / "series.duckdb")
    console = Console(stderr=True)
    try:
        products = args.product or ledger.products()
        with console.status(f"replaying {len(products)} product(s) since {args.since:%Y-%m-%d}"):
            transitions = backtest(ledger, store, settings, products, since=args.since, until=until)
    finally:
        store.close()
        ledger.close()
    rows = [{"time": t.finding.time.isoformat().replace("+00:00", "Z"), "state": t.state,
             "product": t.alert.product, "metric": t.alert.metric, "segment": t.alert.segment,
             "severity": t.alert.severity, "score": round(t.finding.score, 6),
             "alert_id": t.alert.alert_id, "explanation": t.finding.explanation}
            for t in transitions]  # fmt: skip
    if args.format == "json":
        print(json.dumps(rows, indent=2))
    elif args.format == "csv":
        writer = csv.DictWriter(sys.stdout, fieldnames=list(rows[0]) if rows else ["time"])
        writer.writeheader()
        writer.writerows(rows)
    else:
        out = Console()
        if not out.is_terminal:
            out = Console(width=max(out.width, 160))
        table = Table(title=f"what would have fired since {args.since:%Y-%m-%d}: "
                      f"{sum(r['state'] == 'open' for r in rows)} alert(s)")  # fmt: skip
        for col in ("time", "state", "product", "metric", "segment", "severity", "explanation"):
            table.add_column(col)
        for r in rows:
            table.add_row(*(str(r[c]) for c in ("time", "state", "product", "metric", "segment",
                                                "severity", "explanation")))  # fmt: skip
        out.print(table)
    return 0
