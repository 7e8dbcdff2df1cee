"""The deterministic demo data generator: a portfolio's events, chunk by chunk.

``generate(spec)`` yields pandas frames in time order, each in the input layout of
``growthwatch.frames.check_frame`` and ready for ``Ledger.append``. The same spec gives
byte-identical frames on any machine (see ``growthwatch.demo.spec`` for the random
streams), and every event's ``source_id`` is stable, so appending a second run stores
nothing new.

How the volume is shaped: ``events_per_day`` is the portfolio's mean over the range. Each
product gets a share of it and a day factor (growth trend x weekday/weekend), normalised
so the factors average 1 over the range; analytics events (about 95%) are drawn in bulk
per product-day, subscription customers are acquired in proportion and each simulated over
its whole life. A chunk is handed out in frames of at most ``FRAME_ROWS`` rows (so a
pipeline starts storing a big chunk while its later frames are built). Events that fall
into a later chunk (a renewal next month, an activation next week) wait in a carry-over
block, so memory holds one chunk plus that backlog.

Labelled incidents (``incidents(spec)``) shape the data and are its ground truth.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC
from itertools import chain, pairwise
from typing import Final

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from growthwatch.demo.analytics import ProductAnalytics
from growthwatch.demo.catalog import DemoPlan, DemoProduct, ProductProfile, catalog, profiles
from growthwatch.demo.columns import TYPES, Block, concat
from growthwatch.demo.incidents import WARMUP_DAYS, Incident, incidents, write_ground_truth
from growthwatch.demo.spec import DAY_S, HOUR_S, DemoSpec, Stream, add_months, rng
from growthwatch.demo.subscriptions import ProductContext, customers_block
from growthwatch.events import MONETARY_TYPES
from growthwatch.frames import EVENT_COLUMNS

__all__ = [
    "DemoPlan",
    "DemoProduct",
    "DemoSpec",
    "Incident",
    "catalog",
    "estimated_events",
    "generate",
    "incidents",
    "write_ground_truth",
]

SOURCE: Final = "demo"
# New subscription customers per expected event: with the opening base, about 4.5% of the
# events are subscription lifecycle events and payments (about 1.5% in runs shorter than
# the warm-up, which start without customers).
ACQUISITION_RATE: Final = 0.005
# Customers acquired this many days before the start make up the opening customer base
# (only for ranges of at least the incidents' warm-up: short runs start empty).
PRE_RANGE_DAYS: Final = 365
PRE_RANGE_KEY: Final = 2**31  # the acquisition stream's "day" for the opening base
CHUNK_ROWS: Final = 1_000_000  # chunks beyond this volume split into fewer days
FRAME_ROWS: Final = 250_000  # a chunk is yielded in frames of at most this many rows
FRAME_COLUMNS: Final = [c for c in EVENT_COLUMNS if c != "idempotency_key"]
_TYPE_NAMES: Final = pa.array([t.value for t in TYPES], type=pa.string())
_MONETARY: Final = np.array([t in MONETARY_TYPES for t in TYPES])


def estimated_events(spec: DemoSpec) -> int:
    """About how many events ``generate(spec)`` yields (for a progress bar's total)."""
    return spec.events_per_day * spec.n_days


def generate(spec: DemoSpec) -> Iterator[pd.DataFrame]:
    """The portfolio's events in time-ordered chunks (calendar months at normal volume)."""
    portfolio = _Portfolio(spec)
    carry = concat([])
    for first_day, last_day in chunk_days(spec):
        fresh = [portfolio.day(day_no) for day_no in range(first_day, last_day)]
        pending = concat([b for b in (carry, *chain.from_iterable(fresh)) if len(b)])
        del fresh  # the per-product blocks are copied into ``pending``; free them early
        chunk_end_us = (spec.start_s + last_day * DAY_S) * 1_000_000
        due = pending.ts < chunk_end_us
        # The rows due in this chunk in time order (stable): one gather per frame straight
        # from ``pending``, never a copy of the due rows first.
        rows = np.flatnonzero(due)
        order = rows[np.argsort(pending.ts[rows], kind="stable")]
        carry = concat([]) if len(rows) == len(pending) else pending.take(~due)
        # Handed out in frames of FRAME_ROWS, so that a pipeline stores the first rows of
        # a big chunk while the rest are still being built.
        for start in range(0, len(order), FRAME_ROWS):
            yield to_frame(pending.take(order[start : start + FRAME_ROWS]),
                           portfolio.products, start=start, ordered=True)  # fmt: skip
        del pending, order, rows


def chunk_days(spec: DemoSpec) -> list[tuple[int, int]]:
    """Chunk boundaries as day numbers ``[first, last)``: calendar months, or fewer days
    per chunk when a month would exceed ``CHUNK_ROWS`` events."""
    n = spec.n_days
    per_chunk = max(1, CHUNK_ROWS // spec.events_per_day)
    if per_chunk >= 31:
        bounds = [0]
        month = add_months(spec.start.replace(day=1), 1)
        while (month - spec.start).days < n:
            bounds.append((month - spec.start).days)
            month = add_months(month, 1)
    else:
        bounds = list(range(0, n, per_chunk))
    bounds.append(n)
    return list(pairwise(bounds))


@dataclass
class _ProductState:
    product: DemoProduct
    profile: ProductProfile
    factors: np.ndarray  # day factor per day of the range, mean 1
    analytics: ProductAnalytics
    context: ProductContext
    customers: int = 0


class _Portfolio:
    """Every product's state across the range; ``day(n)`` draws day ``n``'s new events."""

    def __init__(self, spec: DemoSpec) -> None:
        self.spec = spec
        self.products = catalog(spec)
        found = incidents(spec)
        self.states = [
            self._state(i, product, profile, found)
            for i, (product, profile) in enumerate(zip(self.products, profiles(spec), strict=True))
        ]

    def _state(
        self, index: int, product: DemoProduct, profile: ProductProfile, found: list[Incident]
    ) -> _ProductState:
        def mine(kind: str) -> Incident | None:
            return next((i for i in found if i.kind == kind and i.product_index == index), None)

        spec = self.spec
        return _ProductState(
            product=product,
            profile=profile,
            factors=day_factors(spec, profile),
            analytics=ProductAnalytics(
                spec.seed, index, product, profile, mine("tracking_outage"), mine("traffic_spike")
            ),
            context=ProductContext(
                seed=spec.seed,
                index=index,
                product=product,
                profile=profile,
                end_s=spec.end_s,
                churn_spike=mine("churn_spike"),
                payment_outage=mine("payment_outage"),
            ),
        )

    def day(self, day_no: int) -> list[Block]:
        day_s = self.spec.start_s + day_no * DAY_S
        blocks: list[Block] = []
        for index, state in enumerate(self.states):
            volume = self.spec.events_per_day * state.profile.share * state.factors[day_no]
            if day_no == 0 and self.spec.n_days >= WARMUP_DAYS:
                blocks.append(self._opening_base(index, state, volume))
            blocks.extend(state.analytics.day(day_s, day_no, volume))
            draw = rng(self.spec.seed, Stream.ACQUISITION, index, day_no)
            n = int(draw.poisson(ACQUISITION_RATE * volume))
            acquired = day_s + np.sort(draw.integers(0, DAY_S - HOUR_S, n))
            blocks.append(customers_block(state.context, state.customers + 1, acquired))
            state.customers += n
        return [b for b in blocks if len(b)]

    def _opening_base(self, index: int, state: _ProductState, volume: float) -> Block:
        """The customers already there at the start: a year of earlier acquisitions (at the
        product's growth rate) simulated through, kept from the start on."""
        days = np.arange(-PRE_RANGE_DAYS, 0)
        rate = ACQUISITION_RATE * volume * np.exp(state.profile.growth * days / 365.0)
        draw = rng(self.spec.seed, Stream.ACQUISITION, index, PRE_RANGE_KEY)
        counts = draw.poisson(rate)
        day_starts = np.repeat(self.spec.start_s + days * DAY_S, counts)
        acquired = day_starts + draw.integers(0, DAY_S - HOUR_S, len(day_starts))
        block = customers_block(state.context, 1, acquired, opening_s=self.spec.start_s)
        state.customers = len(acquired)
        return block


def day_factors(spec: DemoSpec, profile: ProductProfile) -> np.ndarray:
    """Growth trend x weekly seasonality per day of the range, normalised to mean 1."""
    days = np.arange(spec.n_days)
    weekday = (spec.start.weekday() + days) % 7
    factor = np.exp(profile.growth * days / 365.0) * np.where(weekday >= 5, profile.weekend, 1.0)
    return factor / factor.mean()


def to_frame(
    block: Block, products: list[DemoProduct], *, start: int = 0, ordered: bool = False
) -> pd.DataFrame:
    """A block as a ``check_frame`` input frame, sorted by time (stable, so deterministic)
    unless ``ordered`` says it is already; its index counts from ``start``.

    The text columns are pandas' Arrow-backed ``str`` columns over the block's Arrow
    arrays (no Python string per event), which ``check_frame`` reads without a copy."""
    b = block if ordered else block.take(np.argsort(block.ts, kind="stable"))
    n = len(b)
    product = pa.array(b.product.astype(np.int64))
    type_code = pa.array(b.type.astype(np.int64))
    names = _TYPE_NAMES.take(type_code)
    currencies = pa.array([p.currency for p in products], type=pa.string()).take(product)
    text = {
        "product": pa.array([p.id for p in products], type=pa.string()).take(product),
        "type": names,
        "currency": pc.if_else(pa.array(_MONETARY[b.type]), currencies, None),
        "subject": b.subject,
        "plan": b.plan,
        "channel": b.channel,
        "metadata": b.metadata,
        "source": pa.repeat(pa.scalar(SOURCE, pa.string()), n),
        "source_id": b.source_id,
        "kind": names,
    }
    index = pd.RangeIndex(start, start + n)
    columns = {name: _str_column(values, index) for name, values in text.items()}
    frame = pd.DataFrame(
        {
            **columns,
            "ts": pd.Series(b.ts.astype("datetime64[us]"), index=index).dt.tz_localize(UTC),
            "value": pd.Series(b.value, index=index),
            "mrr_before": pd.Series(b.mrr_before, index=index),
            "mrr_after": pd.Series(b.mrr_after, index=index),
        },
        copy=False,
    )
    return frame[FRAME_COLUMNS]


def _str_column(values: pa.Array, index: pd.RangeIndex) -> pd.Series:
    """An Arrow string array as a pandas ``str`` column (missing: NaN), without copying."""
    series = pa.chunked_array([values], type=pa.string()).to_pandas()
    series.index = index
    return series
