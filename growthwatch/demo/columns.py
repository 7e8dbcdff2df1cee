"""Event columns while they are being generated: numpy arrays, not yet a DataFrame.

The generator builds many small and a few huge blocks (one per product and day and kind),
carries events that belong to a later chunk (an activation next week, a renewal next
month), and turns each chunk into one frame at the end. Keeping product and type as small
integer codes until then makes merging, splitting and sorting cheap.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Final

import numpy as np

from growthwatch.events import EventType

TYPES: Final = tuple(EventType)
CODE: Final = {t: i for i, t in enumerate(TYPES)}


@dataclass
class Block:
    """Parallel arrays, one row per event. ``ts`` is UNIX microseconds (UTC)."""

    ts: np.ndarray  # int64
    product: np.ndarray  # int16, index into the catalog
    type: np.ndarray  # int8, index into TYPES
    value: np.ndarray  # float64
    mrr_before: np.ndarray  # float64, NaN outside subscription types
    mrr_after: np.ndarray
    subject: np.ndarray  # object (str | None)
    source_id: np.ndarray  # object (str)
    plan: np.ndarray  # object (str | None)
    channel: np.ndarray  # object (str | None)
    metadata: np.ndarray  # object (JSON text | None)

    def __len__(self) -> int:
        return len(self.ts)

    def take(self, index: np.ndarray) -> Block:
        """The rows selected by a boolean mask or an index array, in that order."""
        return Block(**{f.name: getattr(self, f.name)[index] for f in fields(self)})


def unit_block(
    ts_us: np.ndarray,
    product: int,
    etype: EventType,
    subject: np.ndarray,
    source_id: np.ndarray,
    channel: np.ndarray | None = None,
) -> Block:
    """Count events (signup, activation, active use, session): value 1, no money, no plan."""
    n = len(ts_us)
    nothing = np.empty(n, dtype=object)  # all None
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
    return Block(
        **{f.name: np.concatenate([getattr(b, f.name) for b in blocks]) for f in fields(Block)}
    )


def empty() -> Block:
    obj = np.empty(0, dtype=object)
    flt = np.empty(0)
    return Block(
        ts=np.empty(0, dtype=np.int64),
        product=np.empty(0, dtype=np.int16),
        type=np.empty(0, dtype=np.int8),
        value=flt,
        mrr_before=flt,
        mrr_after=flt,
        subject=obj,
        source_id=obj,
        plan=obj,
        channel=obj,
        metadata=obj,
    )
