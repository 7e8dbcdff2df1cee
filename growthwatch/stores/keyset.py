"""The ledger's idempotency keys in memory: an exact set of 16-byte keys, as sorted runs.

DuckDB's ART primary key made every bulk insert pay for the index: about 1.7 s of CPU per
million events at 2M events, growing with the history (random keys, cache misses), and the
index has to live in memory anyway. The ledger instead decides which rows are new before
it inserts them, against this set, and inserts only those into a table without an index.
The set is exact (the whole 128-bit key is compared, no hash shortcut), so a key is never
taken for a duplicate it is not, and a duplicate is never stored twice.

Layout: each key is two unsigned 64-bit halves (``hi``, ``lo``), kept in a few runs sorted
by ``hi`` (then ``lo``). A lookup is a binary search per run (``numpy.searchsorted``); an
addition is a new run, merged with the runs before it while they are no more than twice
its size (a binary counter: every key is merged O(log n) times, each merge one linear
pass, since numpy's stable sort is a merge of the two sorted runs). 16 bytes per key:
32 MB per 2M events, about 1 GB for 60M.

Pure numpy, no I/O: the ledger feeds it (``growthwatch.stores.ledger``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import pyarrow as pa

U64 = npt.NDArray[np.uint64]


@dataclass(frozen=True)
class Keys:
    """Keys as two aligned arrays of their 64-bit halves (any order)."""

    hi: U64
    lo: U64

    def __len__(self) -> int:
        return len(self.hi)

    def take(self, mask_or_index: npt.NDArray[np.bool_] | npt.NDArray[np.intp]) -> Keys:
        return Keys(self.hi[mask_or_index], self.lo[mask_or_index])

    @staticmethod
    def from_arrow(column: pa.Array | pa.ChunkedArray) -> Keys:
        """Keys from a column of 16-byte values: DuckDB's UUIDs as Arrow (the ``arrow.uuid``
        extension, ``fixed_size_binary(16)``) or ``CAST(uuid AS BLOB)`` (binary). Nulls
        are refused: a key always exists."""
        if isinstance(column, pa.ChunkedArray):
            column = column.combine_chunks() if column.num_chunks else pa.array([], pa.binary(16))
        if isinstance(column, pa.ExtensionArray):
            column = column.storage
        if column.null_count:
            raise ValueError("idempotency keys: null key")
        n = len(column)
        if pa.types.is_fixed_size_binary(column.type):
            if column.type.byte_width != 16:
                raise ValueError(f"idempotency keys: {column.type} is not 16 bytes")
            raw = np.frombuffer(column.buffers()[1], dtype=np.uint8,
                                count=16 * n, offset=16 * column.offset)  # fmt: skip
        elif pa.types.is_binary(column.type) or pa.types.is_large_binary(column.type):
            offsets = np.frombuffer(column.buffers()[1],
                                    dtype=np.int64 if pa.types.is_large_binary(column.type)
                                    else np.int32, count=n + 1, offset=0)  # fmt: skip
            offsets = offsets[column.offset : column.offset + n + 1]
            if n and not np.all(np.diff(offsets) == 16):
                raise ValueError("idempotency keys: a value is not 16 bytes")
            start = int(offsets[0]) if n else 0
            raw = np.frombuffer(column.buffers()[2] or b"", dtype=np.uint8,
                                count=16 * n, offset=start)  # fmt: skip
        else:
            raise ValueError(f"idempotency keys: unexpected type {column.type}")
        halves = raw.view(np.uint64).reshape(n, 2) if n else np.zeros((0, 2), np.uint64)
        return Keys(np.ascontiguousarray(halves[:, 0]), np.ascontiguousarray(halves[:, 1]))

    @staticmethod
    def from_hex(keys: list[str]) -> Keys:
        """Keys from 32-hex-digit strings (``growthwatch.events.idempotency_key``)."""
        raw = np.frombuffer(b"".join(bytes.fromhex(k) for k in keys), dtype=np.uint64)
        halves = raw.reshape(len(keys), 2)
        return Keys(np.ascontiguousarray(halves[:, 0]), np.ascontiguousarray(halves[:, 1]))


@dataclass(frozen=True)
class PieceKeys:
    """The keys of one piece, sorted once, and which of them are first occurrences:
    computed where the piece is prepared (outside the ledger's lock), used under it."""

    keys: Keys
    order: npt.NDArray[np.intp]  # the keys sorted by ``hi``
    first: npt.NDArray[np.bool_]

    @staticmethod
    def of(keys: Keys) -> PieceKeys:
        order = np.argsort(keys.hi)
        return PieceKeys(keys, order, first_occurrences(keys, order))


def first_occurrences(
    keys: Keys, order: npt.NDArray[np.intp] | None = None
) -> npt.NDArray[np.bool_]:
    """True for each key's first occurrence in ``keys`` (the order given), False for repeats:
    an insert keeps the first of the events a piece brings twice. ``order``: the keys
    sorted by ``hi``, when known."""
    n = len(keys)
    first = np.ones(n, dtype=bool)
    if n < 2:
        return first
    hi = keys.hi[order] if order is not None else np.sort(keys.hi)
    if not np.any(hi[1:] == hi[:-1]):
        return first  # no two share even the high half: the usual case, one sort
    order = np.lexsort((keys.lo, keys.hi))  # stable: repeats keep their order
    hi, lo = keys.hi[order], keys.lo[order]
    repeat = (hi[1:] == hi[:-1]) & (lo[1:] == lo[:-1])
    first[order[1:][repeat]] = False
    return first


class KeySet:
    """An exact set of 16-byte keys (see the module docstring)."""

    def __init__(self) -> None:
        self._runs: list[Keys] = []  # each sorted by ``hi``; sizes shrink along the list

    def __len__(self) -> int:
        return sum(len(r) for r in self._runs)

    def contains(
        self, keys: Keys, order: npt.NDArray[np.intp] | None = None
    ) -> npt.NDArray[np.bool_]:
        """For each key, whether the set holds it (``order``: the keys sorted by ``hi``)."""
        found = np.zeros(len(keys), dtype=bool)
        if not len(keys) or not self._runs:
            return found
        # Queries in order make the binary searches walk the runs in order (cache).
        if order is None:
            order = np.argsort(keys.hi)
        q_hi, q_lo = keys.hi[order], keys.lo[order]
        hit = np.zeros(len(keys), dtype=bool)
        for run in self._runs:
            at = np.searchsorted(run.hi, q_hi, side="left")
            inside = at < len(run)
            same = np.zeros(len(keys), dtype=bool)
            same[inside] = run.hi[at[inside]] == q_hi[inside]
            cand = np.flatnonzero(same)  # the high half is held: a duplicate, mostly
            if not len(cand):
                continue
            hit[cand] |= run.lo[at[cand]] == q_lo[cand]
            # Several held keys share that high half (one pair in 2^64): look at the others.
            nxt = np.minimum(at[cand] + 1, len(run) - 1)
            more = (at[cand] + 1 < len(run)) & (run.hi[nxt] == q_hi[cand]) & ~hit[cand]
            for i in cand[more].tolist():
                j = int(at[i]) + 1
                while j < len(run) and run.hi[j] == q_hi[i] and not hit[i]:
                    hit[i] = run.lo[j] == q_lo[i]
                    j += 1
        found[order] = hit
        return found

    def add(self, keys: Keys, *, in_order: bool = False) -> None:
        """Add keys (the caller adds only keys not held yet: the set does not dedupe);
        ``in_order``: they are sorted by ``hi`` already."""
        if not len(keys):
            return
        run = keys if in_order else keys.take(np.argsort(keys.hi))
        while self._runs and len(self._runs[-1]) <= 2 * len(run):
            run = _merge(self._runs.pop(), run)
        self._runs.append(run)


def _merge(a: Keys, b: Keys) -> Keys:
    hi = np.concatenate([a.hi, b.hi])
    lo = np.concatenate([a.lo, b.lo])
    # Two sorted runs: the stable sort (timsort for 64-bit ints) finds and merges them in
    # one pass. Keys with the same high half need no order among them (a lookup looks at
    # each of them), so sorting by ``hi`` alone keeps the set exact.
    order = np.argsort(hi, kind="stable")
    return Keys(hi[order], lo[order])
