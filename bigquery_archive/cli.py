"""``growthwatch archive``: backfill, status, replay, drill-down, retention, schema.

    growthwatch archive [--since 2025-01-01] [--until DATE]      # archive closed days
    growthwatch archive status                                    # per day: ledger vs archive
    growthwatch archive replay --since D --until D --into ledger|series|influx
    growthwatch archive events --since D --until D [--product P] [--type T]
    growthwatch archive trim [--dry-run]                          # apply retention now
    growthwatch archive schema                                    # the documented tables

With ``archive.bigquery`` in the config, days go to BigQuery. Without it the ledger is the
archive: ``archive`` lists the closed days it holds and copies nothing, ``replay`` reads
the ledger, ``trim`` refuses. Every listing takes ``--format table|csv|json``.
"""

from __future__ import annotations

import argparse
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from bigquery_archive.archiver import Archiver, day_start
from bigquery_archive.backend import Archive
from bigquery_archive.connect import open_archive, open_position
from bigquery_archive.history import history_types
from bigquery_archive.older import open_archived_events
from bigquery_archive.output import add_format_arg, emit
from bigquery_archive.position import ArchivePosition
from bigquery_archive.reader import ArchiveReader
from bigquery_archive.replay import TARGETS, replay_ledger, replay_series
from bigquery_archive.retention import trim_influx, trim_ledger
from bigquery_archive.schema import SchemaConflict, describe
from bigquery_archive.settings import ArchiveSettings
from growthwatch import Config, Ledger, SeriesStore, register_older_events
from growthwatch.cli.common import (
    CliError,
    add_config_args,
    config_from_args,
    data_dir_from_args,
    influx_from_args,
    ledger_path_from_args,
    metrics_settings,
)

# The drill-down (``growthwatch customers`` / ``customer``) reads what retention trimmed
# from the ledger through this (the core's seam; it cannot import the archive).
register_older_events(open_archived_events)


def _date(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"not a date (YYYY-MM-DD): {text!r}") from exc


def _instant(text: str) -> datetime:
    try:
        value = datetime.fromisoformat(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"not an ISO time: {text!r}") from exc
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def register(sub: Any) -> None:
    parser = sub.add_parser(
        "archive", help="archive closed days to BigQuery; replay, drill-down, retention",
        description="Archive the ledger's closed days (events and daily metric rows) to "
        "BigQuery exactly once; with no BigQuery configured the ledger is the archive.",
    )  # fmt: skip

    def common(p: argparse.ArgumentParser) -> None:
        add_config_args(p)
        add_format_arg(p)
        p.add_argument("--now", type=_instant, default=None, metavar="TIME",
                       help="take this as the current time (which days are closed; tests)")  # fmt: skip

    common(parser)
    parser.add_argument("--since", type=_date, default=None, metavar="DATE",
                        help="first day to archive (default: the ledger's first day)")
    parser.add_argument("--until", type=_date, default=None, metavar="DATE",
                        help="archive days before this one (default: every closed day)")
    parser.add_argument("--no-metrics", action="store_true",
                        help="archive events only, not the daily metric rows")
    parser.set_defaults(func=run_archive)
    actions = parser.add_subparsers(dest="archive_action", metavar="ACTION")

    status = actions.add_parser("status", help="per day: ledger events, archived, trimmed")
    common(status)
    status.set_defaults(func=run_status)

    replay = actions.add_parser("replay", help="rebuild the ledger, series or InfluxDB "
                                "for a range from the archive")  # fmt: skip
    common(replay)
    replay.add_argument("--since", type=_date, required=True, metavar="DATE",
                        help="first day to rebuild")
    replay.add_argument("--until", type=_date, required=True, metavar="DATE",
                        help="rebuild days before this one")
    replay.add_argument("--into", choices=TARGETS, required=True,
                        help="ledger (events), series (embedded store) or influx (InfluxDB)")
    replay.add_argument("--influx-url", default=None, metavar="URL",
                        help="InfluxDB to rebuild (default: the config's influxdb)")
    replay.add_argument("--influx-db", default=None, metavar="NAME",
                        help="InfluxDB database (default: the config's, or growthwatch)")
    replay.add_argument("--no-raw-events", action="store_true",
                        help="influx: do not rewrite the growth_events points of the range")
    replay.set_defaults(func=run_replay)

    events = actions.add_parser("events", help="list events of a period (archive or ledger)")
    common(events)
    events.add_argument("--since", type=_date, required=True, metavar="DATE", help="first day")
    events.add_argument("--until", type=_date, required=True, metavar="DATE",
                        help="days before this one")
    events.add_argument("--product", action="append", default=None, help="only this product")
    events.add_argument("--type", action="append", default=None, help="only this event type")
    events.add_argument("--limit", type=int, default=100, help="print at most N rows")
    events.set_defaults(func=run_events)

    trim = actions.add_parser("trim", help="apply archive.retention to the ledger and InfluxDB")
    common(trim)
    trim.add_argument("--dry-run", action="store_true", help="say what would go; delete nothing")
    trim.set_defaults(func=run_trim)

    schema = actions.add_parser("schema", help="the archive tables' documented columns")
    add_format_arg(schema)
    schema.set_defaults(func=run_schema)


# -- context -------------------------------------------------------------------------------


class _Context:
    def __init__(self, args: argparse.Namespace) -> None:
        self.config: Config | None = config_from_args(args)
        self.data_dir: Path = data_dir_from_args(args, self.config)
        try:
            self.settings = ArchiveSettings.from_config(self.config)
        except ValueError as exc:
            raise CliError(str(exc)) from exc
        self.metrics = metrics_settings(self.config, self.data_dir)
        ledger_path = ledger_path_from_args(args, self.config, self.data_dir)
        if not ledger_path.exists():
            raise CliError(f"no ledger at {ledger_path} (run `growthwatch demo` or a backfill)")
        self.ledger = Ledger(ledger_path)
        self.archive: Archive = open_archive(self.settings, self.ledger)
        self.position: ArchivePosition = open_position(self.archive, self.data_dir)
        self.now: datetime = args.now or datetime.now(UTC)

    def series(self) -> SeriesStore:
        return SeriesStore(self.data_dir / "series.duckdb")

    def close(self) -> None:
        self.archive.close()
        self.ledger.close()


def _progress() -> Progress:
    return Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                    TextColumn("{task.fields[events]:,} events"), TimeRemainingColumn(),
                    console=Console(stderr=True), transient=False)  # fmt: skip


# -- commands ------------------------------------------------------------------------------


def run_archive(args: argparse.Namespace) -> int:
    ctx = _Context(args)
    err = Console(stderr=True)
    series = None
    try:
        try:
            for line in ctx.archive.ensure():
                err.print(f"archive: {line}")
        except SchemaConflict as exc:
            raise CliError(str(exc)) from exc
        metrics = ctx.settings.schedule.metrics and not args.no_metrics
        series = ctx.series() if metrics and not ctx.archive.embedded else None
        archiver = Archiver(ctx.ledger, ctx.archive, ctx.position, series=series,
                            close_after=ctx.settings.schedule.close_after, now=lambda: ctx.now)  # fmt: skip
        work = archiver.plan(args.since, args.until)
        if ctx.archive.embedded:
            err.print("archive: no archive.bigquery configured: the ledger is the archive; "
                      "nothing to copy. Closed days it holds:")  # fmt: skip
        with _progress() as bar:
            task = bar.add_task("archive", total=len(work), events=0)

            def step(day: date, events: int) -> None:
                bar.update(task, advance=1, events=bar.tasks[task].fields["events"] + events,
                           description=f"archive {day}")  # fmt: skip

            results = archiver.run(work, metrics=metrics, progress=step)
        rows = [r.as_row() for r in results]
        emit(rows, args.format, title=f"archived to {ctx.archive.name}")
        if not work:
            err.print("archive: every closed day is archived")
        return 0
    finally:
        if series is not None:
            series.close()
        ctx.close()


def run_status(args: argparse.Namespace) -> int:
    ctx = _Context(args)
    try:
        from bigquery_archive.rows import ledger_days

        end = (ctx.now - ctx.settings.schedule.close_after).date()
        ledger = ledger_days(ctx.ledger, None, day_start(end))
        rows = []
        for day, n, max_seq in ledger.itertuples(index=False):
            pos = ctx.position.days.get(day.isoformat())
            rows.append({
                "day": day.isoformat(), "ledger_events": int(n),
                "archived_rows": int(n) if ctx.archive.embedded else (pos.archived if pos else 0),
                "pending": "" if ctx.archive.embedded or (pos and pos.max_seq >= max_seq)
                else "yes",
            })  # fmt: skip
        emit(rows, args.format, title=f"{ctx.archive.name}; ledger trimmed before "
             f"{ctx.position.trimmed_before or '-'}")  # fmt: skip
        return 0
    finally:
        ctx.close()


def run_replay(args: argparse.Namespace) -> int:
    if args.since >= args.until:
        raise CliError(f"--since {args.since} must be before --until {args.until}")
    ctx = _Context(args)
    err = Console(stderr=True)
    try:
        with _progress() as bar:
            task = bar.add_task(f"replay into {args.into}", total=None, events=0)

            def step(what: str, n: int) -> None:
                bar.update(task, description=f"replay {what}",
                           events=bar.tasks[task].fields["events"] + n)  # fmt: skip

            if args.into == "ledger":
                if ctx.archive.embedded:
                    raise CliError("--into ledger: no archive.bigquery configured, the ledger "
                                   "is the archive (nothing to rebuild it from)")  # fmt: skip
                result = replay_ledger(ctx.archive, ctx.ledger, args.since, args.until, step)
                emit(result.days, args.format, title="replayed into the ledger")
                return 0
            stores: list[Any] = []
            raw: list[Any] = []
            series = None
            if args.into == "series":
                series = ctx.series()
                stores.append(series)
            else:
                influx = influx_from_args(args, ctx.config, ctx.data_dir)
                if influx is None:
                    raise CliError("--into influx: give --influx-url or an influxdb section")
                influx.ensure_database()
                stores.append(influx)
                raw = [] if args.no_raw_events else [influx]
            try:
                result = replay_series(ctx.archive, ctx.metrics, stores, args.since, args.until,
                                       into=args.into, history_from=_first_day(ctx),
                                       raw_events=raw, progress=step, workdir=ctx.data_dir)  # fmt: skip
            finally:
                if series is not None:
                    series.close()
        err.print(f"replay: {result.events_read:,} archived events read from {ctx.archive.name}")
        emit([{"into": result.into, "since": args.since.isoformat(),
               "until": args.until.isoformat(), "events_read": result.events_read,
               "points": result.points, "raw_points": result.raw_points}], args.format)  # fmt: skip
        return 0
    finally:
        ctx.close()


def _first_day(ctx: _Context) -> date:
    from bigquery_archive.replay import EPOCH

    return date.fromisoformat(min(ctx.position.days)) if ctx.position.days else EPOCH


def run_events(args: argparse.Namespace) -> int:
    ctx = _Context(args)
    try:
        reader = ArchiveReader(ctx.ledger, ctx.archive, ctx.position)
        frame = reader.read(day_start(args.since), day_start(args.until), types=args.type,
                            products=args.product)  # fmt: skip
        shown = frame.head(args.limit)
        cols = ["ts", "product", "type", "value", "currency", "subject", "source", "source_id"]
        rows = [{c: (v.isoformat() if c == "ts" else (None if v != v else v))
                 for c, v in zip(cols, r, strict=True)}
                for r in shown[cols].astype(object).itertuples(index=False, name=None)]  # fmt: skip
        emit(rows, args.format, title=f"{len(frame):,} event(s); first {len(shown)}")
        return 0
    finally:
        ctx.close()


def run_trim(args: argparse.Namespace) -> int:
    ctx = _Context(args)
    try:
        if ctx.archive.embedded:
            raise CliError("archive trim: no archive.bigquery configured; the ledger is the only "
                           "copy of the history, so nothing is trimmed")  # fmt: skip
        retention = ctx.settings.retention
        if not (retention.ledger_days or retention.influx_days):
            raise CliError("archive trim: archive.retention sets no ledger_days or influx_days")
        keep = history_types(ctx.metrics)
        results = [trim_ledger(ctx.ledger, ctx.position, retention, keep, now=ctx.now,
                               dry_run=args.dry_run)]  # fmt: skip
        influx = influx_from_args(argparse.Namespace(influx_db=None), ctx.config, ctx.data_dir)
        results.append(trim_influx(influx, ctx.ledger, ctx.position, retention, now=ctx.now,
                                   dry_run=args.dry_run))  # fmt: skip
        emit([r.as_row() for r in results], args.format,
             title="would trim" if args.dry_run else "trimmed")  # fmt: skip
        return 0
    finally:
        ctx.close()


def run_schema(args: argparse.Namespace) -> int:
    emit(describe(), args.format, title="archive tables")
    return 0
