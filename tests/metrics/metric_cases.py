"""Compact builders for hand-computed metric cases."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pandas as pd

from growthwatch.events import EventType, GrowthEvent
from growthwatch.frames import events_to_frame
from growthwatch.metrics.schema import MEASUREMENTS
from growthwatch.stores.series import SeriesStore

_ids = itertools.count()


def t(text: str) -> datetime:
    """'2026-01-05' or '2026-01-05 10:30' as aware UTC."""
    fmt = "%Y-%m-%d %H:%M" if " " in text else "%Y-%m-%d"
    return datetime.strptime(text, fmt).replace(tzinfo=UTC)


def ev(
    type_: str,
    when: str | datetime,
    subject: str | None = "c1",
    *,
    product: str = "p1",
    value: Any = 1,
    currency: str | None = None,
    before: Any = None,
    after: Any = None,
    sid: str | None = None,
    source_id: str | None = None,
    **meta: Any,
) -> GrowthEvent:
    etype = EventType(type_)
    ts = t(when) if isinstance(when, str) else when
    metadata = dict(meta)
    if sid is not None:
        metadata["subscription"] = sid
    if before is not None or after is not None:
        b, a = Decimal(str(before or 0)), Decimal(str(after or 0))
        value = a - b
        before, after = b, a
        currency = currency or "USD"
    elif type_ in ("payment", "refund", "payment_failed"):
        currency = currency or "USD"
        value = Decimal(str(value))
    return GrowthEvent(
        product=product,
        type=etype,
        timestamp=ts,
        value=Decimal(str(value)),
        currency=currency,
        subject=subject,
        mrr_before=before,
        mrr_after=after,
        metadata=metadata,
        source="test",
        source_id=source_id or f"e{next(_ids)}",
    )


def sub(
    when: str, before: Any, after: Any, subject: str = "c1", *, type_: str | None = None, **kw: Any
) -> GrowthEvent:
    """A subscription event; the type follows from before/after unless given."""
    if type_ is None:
        b, a = Decimal(str(before)), Decimal(str(after))
        type_ = (
            "subscription_started" if b == 0 and a > 0
            else "subscription_cancelled" if a == 0 and b > 0
            else "subscription_changed"
        )  # fmt: skip
    return ev(type_, when, subject, before=before, after=after, **kw)


def frame(*events: GrowthEvent) -> pd.DataFrame:
    return events_to_frame(events)


def days(start: str, n: int) -> list[datetime]:
    return [t(start) + timedelta(days=i) for i in range(n)]


def store_contents(store: SeriesStore) -> dict[str, pd.DataFrame]:
    """Every measurement a store holds, rows in a fixed order (to compare whole stores)."""
    out = {}
    for m in MEASUREMENTS:
        got = store.read(m.name)
        if not got.empty:
            keys = [c for c in ("time", *m.tags, "period") if c in got.columns]
            out[m.name] = got.sort_values(keys, ignore_index=True)
    return out
