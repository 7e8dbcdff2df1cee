"""Event columns while they are being generated: numpy and Arrow arrays, not yet a frame.

The generator builds many small and a few huge blocks (one per product and day and kind),
carries events that belong to a later chunk (an activation next week, a renewal next
month), and turns each chunk into one frame at the end. Keeping product and type as small
integer codes until then makes merging, splitting and sorting cheap. The text columns
(ids, plan, channel, metadata) are Arrow string arrays: the millions of ids are built from
their numbers by Arrow's string kernels (``ids``), and taking, merging and handing them on
to the ledger copies bytes in C++ instead of touching one Python string per event.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, fields
from typing import Any, Final

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from growthwatch.events import EventType

TYPES: Final = tuple(EventType)
CODE: Final = {t: i for i, t in enumerate(TYPES)}
TEXT: Final = ("subject", "source_id", "plan", "channel", "metadata")  # Arrow string columns


@dataclass
class Block:
    """Parallel arrays, one row per event. ``ts`` is UNIX microseconds (UTC)."""

    ts: np.ndarray  # int64
    product: np.ndarray  # int16, index into the catalog
    type: np.ndarray  # int8, index into TYPES
    value: np.ndarray  # float64
    mrr_before: np.ndarray  # float64, NaN outside subscription types
    mrr_after: np.ndarray
    subject: pa.Array  # string (null: none)
    source_id: pa.Array  # string
    plan: pa.Array  # string (null: none)
    channel: pa.Array  # string (null: none)
    metadata: pa.Array  # string, JSON text (null: none)

    def __len__(self) -> int:
        return len(self.ts)

    def take(self, index: np.ndarray) -> Block:
        """The rows selected by a boolean mask or an index array, in that order."""
        rows = np.flatnonzero(index) if index.dtype == bool else index
        arrow_rows = pa.array(rows, type=pa.int64())
        return Block(**{f.name: _take(getattr(self, f.name), rows, arrow_rows)
                        for f in fields(self)})  # fmt: skip


def _take(column: Any, rows: np.ndarray, arrow_rows: pa.Array) -> Any:
    return column.take(arrow_rows) if isinstance(column, pa.Array) else column[rows]


def strings(values: Sequence[str | None] | np.ndarray) -> pa.Array:
    """Python strings (None: missing) as an Arrow string column."""
    return pa.array(values, type=pa.string())


def nulls(n: int) -> pa.Array:
    """A text column of ``n`` missing values."""
    return pa.nulls(n, pa.string())


def ids(prefix: str, numbers: np.ndarray | range) -> pa.Array:
    """``prefix + str(n)`` for each number, built by Arrow (the text of an int64 is the
    decimal digits Python's ``str`` gives)."""
    digits = pc.cast(pa.array(np.asarray(numbers, dtype=np.int64)), pa.string())
    return pc.binary_join_element_wise(prefix, digits, "")


def pick(names: tuple[str, ...] | list[str], codes: np.ndarray) -> pa.Array:
    """``names[code]`` for each code, as an Arrow string column."""
    return pa.array(names, type=pa.string()).take(pa.array(np.asarray(codes, dtype=np.int64)))


def unit_block(
    ts_us: np.ndarray,
    product: int,
    etype: EventType,
    subject: pa.Array,
    source_id: pa.Array,
    channel: pa.Array | None = None,
) -> Block:
    """Count events (signup, activation, active use, session): value 1, no money, no plan."""
    n = len(ts_us)
    nothing = nulls(n)
    nan = np.full(n, np.nan)
    return Block(
        ts=ts_us.astype(np.int64, copy=False),
        product=np.full(n, product, dtype=np.int16),
        type=np.full(n, CODE[etype], dtype=np.int8),
        value=np.ones(n),
        mrr_before=nan,
        mrr_after=nan,
        subject=subject,
        source_id=source_id,
        plan=nothing,
        channel=nothing if channel is None else channel,
        metadata=nothing,
    )


def concat(blocks: list[Block]) -> Block:
    """One block from many (an empty list gives an empty block)."""
    if not blocks:
        return empty()
    if len(blocks) == 1:
        return blocks[0]
    return Block(**{f.name: _concat([getattr(b, f.name) for b in blocks]) for f in fields(Block)})


def _concat(columns: list[Any]) -> Any:
    if isinstance(columns[0], pa.Array):
        return pa.concat_arrays(columns)
    return np.concatenate(columns)


def empty() -> Block:
    flt = np.empty(0)
    return Block(
        ts=np.empty(0, dtype=np.int64),
        product=np.empty(0, dtype=np.int16),
        type=np.empty(0, dtype=np.int8),
        value=flt,
        mrr_before=flt,
        mrr_after=flt,
        subject=nulls(0),
        source_id=nulls(0),
        plan=nulls(0),
        channel=nulls(0),
        metadata=nulls(0),
    )
