"""``growthwatch customers`` and ``growthwatch customer``: who is behind a number.

    growthwatch customers --product acme-crm --movement churn --from 2026-03-01 --to 2026-03-02
    growthwatch customer cus_0042 --product acme-crm --format json

Both read the ledger, never the series, and use the metrics engine's own movement
computation (``growthwatch.metrics.mrr.customer_movements``: the same chain order, netting
and pause rules as ``compute_mrr``), so the customers listed for a day's churn are exactly
the ones ``customers_daily.churned`` counts, and their amounts add up to ``mrr_daily.churn``.
A product's movements need only that product's subscription history (products are
independent), so a drill-down reads one product, not the portfolio.

When retention has trimmed the ledger (``archive.retention.ledger_days``), the events
before the trim boundary come from the archive through the core's ``older_events`` seam
(the archive registers its reader there; the core never imports it), and both commands say
so on stderr and in the table title: the MRR chain of a customer needs its whole history,
and the timeline lists old events too. The ``origin`` column of ``customer`` says where each
event was read.
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import date, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from growthwatch.cli.common import (
    CliError,
    add_config_args,
    config_from_args,
    data_dir_from_args,
    ledger_path_from_args,
    metrics_settings,
    prog,
)
from growthwatch.cli.output import add_format_arg, emit
from growthwatch.events import EventType
from growthwatch.metrics._frame import units
from growthwatch.metrics.engine import read_events
from growthwatch.metrics.fx import FxError
from growthwatch.metrics.mrr import MOVEMENT_KINDS, MRR_TYPES, customer_movements
from growthwatch.metrics.settings import MetricsSettings
from growthwatch.older_events import OlderEvents, open_older_events, read_through
from growthwatch.stores.ledger import Ledger

MONEY_COLUMNS = ("amount", "mrr_before_rc", "mrr_after_rc", "mrr_before", "mrr_after")
LIST_COLUMNS = ("subscriptions", "source_ids")
MOVEMENT_COLUMNS = ("time", "customer", "amount", "mrr_before_rc", "mrr_after_rc", "currency",
                    "mrr_before", "mrr_after", "plan_before", "plan", "interval", "cause",
                    "country", "channel", "events", "subscriptions", "source_ids")  # fmt: skip
TIMELINE_COLUMNS = ("time", "type", "value", "currency", "mrr_before", "mrr_after", "plan",
                       "subscription", "movement", "movement_amount", "customer_mrr_rc",
                       "source", "source_id", "origin")  # fmt: skip


def register(sub: Any) -> None:
    many = sub.add_parser(
        "customers",
        help="list the customers behind an MRR movement (churn, new, expansion, ...)",
        description="List the customers behind one MRR movement of a product in a date "
        "range: time, MRR before and after (reporting currency and native), plan, billing "
        "interval, country and channel when known, and the source ids of the events. Read "
        "from the ledger with the metrics engine's own rules, so the rows of a day are "
        "exactly what customers_daily and mrr_daily count.",
    )  # fmt: skip
    add_config_args(many)
    many.add_argument("--product", required=True,
                      help="product id (`growthwatch products` lists them)")  # fmt: skip
    many.add_argument("--movement", required=True, metavar="KIND",
                      help=f"one of: {', '.join(MOVEMENT_KINDS)}")  # fmt: skip
    many.add_argument("--from", dest="start", metavar="DAY|MONTH",
                      help="first day (inclusive, reporting timezone), e.g. 2026-01-01 or "
                      "2026-01 (default: the first event)")  # fmt: skip
    many.add_argument("--to", dest="end", metavar="DAY|MONTH",
                      help="end day (exclusive), or a month (included), e.g. 2026-02-01 or "
                      "2026-01 (default: after the last event)")  # fmt: skip
    add_format_arg(many)
    many.set_defaults(func=run_customers)

    one = sub.add_parser(
        "customer",
        help="one customer's MRR timeline and events",
        description="Every ledger event of one customer in one product, in order, with the "
        "MRR movement each netting group makes (new, expansion, churn, ...) and the "
        "customer's MRR after it in the reporting currency.",
    )  # fmt: skip
    one.add_argument("customer_id", metavar="ID", help="the customer (the events' subject)")
    add_config_args(one)
    one.add_argument("--product", required=True,
                     help="product id (`growthwatch products` lists them)")  # fmt: skip
    add_format_arg(one)
    one.set_defaults(func=run_customer)


# -- arguments -------------------------------------------------------------------------------


def parse_range(
    start: str | None, end: str | None, tz: str
) -> tuple[pd.Timestamp | None, pd.Timestamp | None]:
    """``--from``/``--to`` as UTC instants of local midnights; a clear error otherwise."""
    from growthwatch.cli.metrics import parse_day_arg, parse_end_arg

    def one(flag: str, text: str | None, parse: Any) -> pd.Timestamp | None:
        if text is None:
            return None
        try:
            day: date = parse(text)
        except argparse.ArgumentTypeError as exc:
            raise CliError(f"{flag}: {exc}") from None
        return pd.Timestamp(day).tz_localize(tz).tz_convert("UTC")

    lo, hi = one("--from", start, parse_day_arg), one("--to", end, parse_end_arg)
    if lo is not None and hi is not None and hi <= lo:
        raise CliError(f"--to {end} is not after --from {start}: the range is empty")
    return lo, hi


def _context(args: argparse.Namespace) -> tuple[Path, MetricsSettings, Any, Path]:
    config = config_from_args(args)
    data_dir = data_dir_from_args(args, config)
    ledger_path = ledger_path_from_args(args, config, data_dir)
    if not ledger_path.exists():
        raise CliError(f"no ledger at {ledger_path}; run `{prog()} demo` or pass --config")
    return ledger_path, metrics_settings(config, data_dir), config, data_dir


def _history(
    ledger: Ledger,
    older: OlderEvents | None,
    types: list[str] | tuple[str, ...],
    product: str,
    subjects: list[str] | None = None,
) -> tuple[pd.DataFrame, datetime | None]:
    """The product's events of ``types``: the ledger's, and before a trim boundary the
    archive's (``older``); the boundary when the archive was read."""

    def ledger_read(start: datetime | None) -> pd.DataFrame:
        lo = None if start is None else pd.Timestamp(start)
        return read_events(ledger, types, products=[product], subjects=subjects, start=lo)

    try:
        return read_through(ledger_read, older, types=list(types), products=[product],
                            subjects=subjects)  # fmt: skip
    except Exception as exc:
        if older is None:
            raise
        # the archive is down or refuses: one line naming it, not a traceback
        cut = older.boundary()
        when = cut.date().isoformat() if cut is not None else "?"
        raise CliError(f"the ledger was trimmed before {when} and the archive ({older.name}) "
                       f"could not be read: {exc}") from None  # fmt: skip


def archive_note(cut: datetime | None, older: OlderEvents | None) -> str:
    """What the output says when old events came from the archive ("" when they did not)."""
    if cut is None or older is None:
        return ""
    return (f"the ledger was trimmed before {cut.date().isoformat()}: older events read from "
            f"the archive ({older.name})")  # fmt: skip


def _say(note: str) -> None:
    if note:
        print(f"note: {note}", file=sys.stderr)


def _check_product(ledger: Ledger, product: str) -> None:
    cursor = ledger.connection
    try:
        known = [r[0] for r in cursor.execute(
            "SELECT DISTINCT product FROM events ORDER BY product").fetchall()]  # fmt: skip
    finally:
        cursor.close()
    if product not in known:
        listed = ", ".join(known) if known else "none: the ledger is empty"
        raise CliError(f"--product {product}: no such product in the ledger (products: {listed})")


def _movements(events: pd.DataFrame, settings: MetricsSettings) -> pd.DataFrame:
    try:
        return customer_movements(events, settings)
    except FxError as exc:
        raise CliError(str(exc)) from None


# -- growthwatch customers -------------------------------------------------------------------


def movements_of(
    ledger: Ledger,
    settings: MetricsSettings,
    product: str,
    kind: str,
    start: pd.Timestamp | None = None,
    end: pd.Timestamp | None = None,
    older: OlderEvents | None = None,
) -> pd.DataFrame:
    """The ``kind`` movements of ``product`` whose day starts in [start, end), in units,
    with each customer's first known country and channel (``customer_movements`` rows).

    ``older``: where the events before a trim boundary are; ``attrs["archive"]`` of the
    result then holds the note saying they were read (a customer's MRR chain needs its
    whole history, whatever the range)."""
    events, cut = _history(ledger, older, MRR_TYPES, product)
    moves = _movements(events, settings)
    keep = (moves["kind"] == kind).to_numpy().copy()
    if start is not None:
        keep &= (moves["day"] >= start).to_numpy()
    if end is not None:
        keep &= (moves["day"] < end).to_numpy()
    out = moves[keep].reset_index(drop=True)
    for col in MONEY_COLUMNS:
        out[col] = units(out[col].to_numpy(dtype="int64"))
    attrs = _customer_attributes(ledger, product, sorted(set(out["customer"])))
    out["country"] = out["customer"].map(attrs["country"])
    out["channel"] = out["customer"].map(attrs["channel"])
    out.attrs["archive"] = archive_note(cut, older)
    return out


def _customer_attributes(ledger: Ledger, product: str, customers: list[str]) -> pd.DataFrame:
    """Per customer, the first known country (metadata) and acquisition channel."""
    if not customers:
        return pd.DataFrame({"country": pd.Series(dtype=object),
                             "channel": pd.Series(dtype=object)})  # fmt: skip
    cursor = ledger.connection
    try:
        frame = cursor.execute(
            "SELECT subject, "
            "arg_min(json_extract_string(metadata, '$.country'), ts) FILTER "
            "(WHERE json_extract_string(metadata, '$.country') IS NOT NULL) AS country, "
            "arg_min(channel, ts) FILTER (WHERE channel IS NOT NULL) AS channel "
            "FROM events WHERE product = ? AND subject IN (SELECT unnest(?)) GROUP BY subject",
            [product, customers],
        ).df()
    finally:
        cursor.close()
    return frame.set_index("subject")


def run_customers(args: argparse.Namespace) -> int:
    kind = args.movement
    if kind not in MOVEMENT_KINDS:
        raise CliError(f"--movement {kind}: unknown movement; choose one of "
                       f"{', '.join(MOVEMENT_KINDS)}")  # fmt: skip
    ledger_path, settings, config, data_dir = _context(args)
    start, end = parse_range(args.start, args.end, settings.timezone)
    with Ledger(ledger_path) as ledger:
        _check_product(ledger, args.product)
        older = open_older_events(config, data_dir, ledger)
        try:
            rows = movements_of(ledger, settings, args.product, kind, start, end, older)
        finally:
            if older is not None:
                older.close()
    note = str(rows.attrs.get("archive", ""))
    _say(note)
    currency = settings.fx.reporting
    if args.format != "json":
        for col in LIST_COLUMNS:
            rows[col] = [" ".join(v) for v in rows[col]]
    span = f"{args.start or 'first event'} to {args.end or 'last event'}"
    total = float(np.round(rows["amount"].sum(), 6)) if len(rows) else 0.0
    emit(rows, MOVEMENT_COLUMNS, fmt=args.format, keys=["time", "customer"],
         title=f"{len(rows):,} {kind} movement(s) of {args.product}, {span}: "
               f"{total:,.2f} {currency}" + (f" ({note})" if note else ""),
         headers={"amount": f"{kind} ({currency})", "mrr_before_rc": f"mrr before ({currency})",
                  "mrr_after_rc": f"mrr after ({currency})", "mrr_before": "mrr before (native)",
                  "mrr_after": "mrr after (native)"},
         text_columns=["currency", "plan_before", "plan", "interval", "cause", "country", "channel",
                       "subscriptions", "source_ids"])  # fmt: skip
    return 0


# -- growthwatch customer --------------------------------------------------------------------


def customer_timeline(
    ledger: Ledger,
    settings: MetricsSettings,
    product: str,
    customer: str,
    older: OlderEvents | None = None,
) -> pd.DataFrame:
    """Every ledger event of one customer, in ledger order, with the movement of the netting
    group it belongs to (on the group's first event; "netted" on the others) and the
    customer's reporting-currency MRR after that movement.

    ``older``: where the events before a trim boundary are (their ``origin`` is
    ``archive``, the others' ``ledger``; ``attrs["archive"]`` holds the note)."""
    mine, cut = _history(ledger, older, [t.value for t in EventType], product, [customer])
    if mine.empty:
        raise CliError(f"customer {customer}: no events in product {product}")
    moves = _movements(mine[mine["type"].isin(list(MRR_TYPES))], settings)
    kind: dict[str, str] = {}
    amount: dict[str, float] = {}
    after: dict[str, float] = {}
    for row in moves.itertuples(index=False):
        ids = list(row.source_ids)
        if not ids:
            continue
        kind[ids[0]] = str(row.kind)
        amount[ids[0]] = float(units(np.array([row.amount], dtype="int64"))[0])
        after[ids[0]] = float(units(np.array([row.mrr_after_rc], dtype="int64"))[0])
        for other in ids[1:]:
            kind[other] = "netted"
    sid = mine["metadata"].astype(object).map(_subscription)
    out = pd.DataFrame({
        "time": mine["ts"], "type": mine["type"].astype(object),
        "value": mine["value"], "currency": mine["currency"].astype(object),
        "mrr_before": mine["mrr_before"], "mrr_after": mine["mrr_after"],
        "plan": mine["plan"].astype(object), "subscription": sid,
        "source": mine["source"].astype(object), "source_id": mine["source_id"].astype(object),
    })  # fmt: skip
    out["movement"] = out["source_id"].map(kind).fillna("")
    out["movement_amount"] = out["source_id"].map(amount)
    out["customer_mrr_rc"] = out["source_id"].map(after)
    out["origin"] = "ledger"
    if cut is not None:
        out.loc[(mine["ts"] < pd.Timestamp(cut)).to_numpy(), "origin"] = "archive"
    out.attrs["archive"] = archive_note(cut, older)
    return out


def _subscription(text: object) -> str | None:
    if not isinstance(text, str):
        return None
    try:
        value = json.loads(text).get("subscription")
    except (ValueError, AttributeError):
        return None
    return None if value is None else str(value)


def run_customer(args: argparse.Namespace) -> int:
    ledger_path, settings, config, data_dir = _context(args)
    with Ledger(ledger_path) as ledger:
        _check_product(ledger, args.product)
        older = open_older_events(config, data_dir, ledger)
        try:
            rows = customer_timeline(ledger, settings, args.product, args.customer_id, older)
        finally:
            if older is not None:
                older.close()
    note = str(rows.attrs.get("archive", ""))
    _say(note)
    currency = settings.fx.reporting
    known = rows["customer_mrr_rc"].dropna()
    now = float(known.iloc[-1]) if len(known) else 0.0
    plans = rows["plan"].dropna()
    title = (f"customer {args.customer_id} of {args.product}: {len(rows):,} events, MRR now "
             f"{now:,.2f} {currency}" + (f", plan {plans.iloc[-1]}" if len(plans) else "")
             + (f" ({note})" if note else ""))  # fmt: skip
    emit(rows, TIMELINE_COLUMNS, fmt=args.format, keys=["time"], title=title,
         headers={"movement_amount": f"amount ({currency})",
                  "customer_mrr_rc": f"mrr after ({currency})"},
         text_columns=["type", "currency", "plan", "subscription", "movement", "source",
                       "source_id", "origin"])  # fmt: skip
    return 0


__all__ = ["customer_timeline", "movements_of", "parse_range", "register"]
