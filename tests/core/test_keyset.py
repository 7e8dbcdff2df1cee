"""The ledger's in-memory key set: exact membership, first occurrences, key layouts.

Each result is checked against a plain Python set or dict of the 16-byte keys (an
independent method), including keys built to share their high 64 bits, which the set's
fast path (one comparison of the low half) does not cover.
"""

from __future__ import annotations

import random
import uuid

import duckdb
import numpy as np
import pyarrow as pa

from growthwatch.stores.keyset import Keys, KeySet, first_occurrences


def raw_keys(rng: random.Random, n: int, *, shared_high: int = 0) -> list[bytes]:
    """``n`` random 16-byte keys; the first ``shared_high`` share one high half."""
    high = rng.randbytes(8)
    return [high + rng.randbytes(8) if i < shared_high else rng.randbytes(16) for i in range(n)]


def as_keys(raw: list[bytes]) -> Keys:
    return Keys.from_arrow(pa.array(raw, pa.binary(16)))


def test_membership_matches_a_python_set_over_many_additions() -> None:
    rng = random.Random(7)
    held: set[bytes] = set()
    keys = KeySet()
    for step in range(40):  # sizes vary so the runs merge in many patterns
        batch = [k for k in raw_keys(rng, rng.randint(0, 300), shared_high=step % 4)
                 if k not in held]  # fmt: skip
        probe = batch[: len(batch) // 2] + rng.sample(sorted(held), min(50, len(held)))
        probe += raw_keys(rng, 30, shared_high=5)
        expected = [k in held for k in probe]
        assert keys.contains(as_keys(probe)).tolist() == expected
        keys.add(as_keys(batch))
        held.update(batch)
        assert len(keys) == len(held)
    every = sorted(held)
    assert keys.contains(as_keys(every)).all()
    assert not keys.contains(as_keys(raw_keys(rng, 500))).any()


def test_keys_sharing_their_high_half_are_told_apart_by_the_low_half() -> None:
    high = bytes(range(8))
    stored = [high + bytes([i]) * 8 for i in range(1, 6)]
    keys = KeySet()
    keys.add(as_keys(stored[:2]))
    keys.add(as_keys(stored[2:]))  # another run, merged with the first
    probe = [*stored, high + bytes([9]) * 8, high + bytes([0]) * 8, bytes(16)]
    assert keys.contains(as_keys(probe)).tolist() == [True] * 5 + [False] * 3


def test_first_occurrences_keep_the_first_of_each_key_in_order() -> None:
    rng = random.Random(3)
    pool = raw_keys(rng, 40, shared_high=10)
    sample = [rng.choice(pool) for _ in range(300)]
    seen: dict[bytes, int] = {}
    for i, k in enumerate(sample):
        seen.setdefault(k, i)
    expected = [seen[k] == i for i, k in enumerate(sample)]
    assert first_occurrences(as_keys(sample)).tolist() == expected
    distinct = raw_keys(rng, 100)
    assert first_occurrences(as_keys(distinct)).all()
    assert first_occurrences(as_keys([])).tolist() == []


def test_every_layout_of_a_key_gives_the_same_halves() -> None:
    """DuckDB's UUID as Arrow (the extension type), ``CAST(uuid AS BLOB)`` (binary, also
    sliced), and the 32 hex digits of ``growthwatch.events.idempotency_key``."""
    hexes = [uuid.UUID(int=random.Random(i).getrandbits(128)).hex for i in range(20)]
    con = duckdb.connect()
    con.execute("SET arrow_lossless_conversion = true")
    con.execute("CREATE TABLE k (i INTEGER, k UUID)")
    con.executemany("INSERT INTO k VALUES (?, CAST(? AS UUID))", list(enumerate(hexes)))
    as_uuid = con.execute("SELECT k FROM k ORDER BY i").arrow().read_all().column(0)
    as_blob = con.execute("SELECT CAST(k AS BLOB) FROM k ORDER BY i").arrow().read_all().column(0)
    expected = np.frombuffer(b"".join(bytes.fromhex(h) for h in hexes), dtype=np.uint64)
    for keys in (Keys.from_arrow(as_uuid), Keys.from_arrow(as_blob), Keys.from_hex(hexes)):
        assert np.column_stack([keys.hi, keys.lo]).ravel().tolist() == expected.tolist()
    sliced = Keys.from_arrow(as_blob.combine_chunks().slice(5, 7))
    assert sliced.hi.tolist() == expected.reshape(-1, 2)[5:12, 0].tolist()
    assert sliced.lo.tolist() == expected.reshape(-1, 2)[5:12, 1].tolist()
    try:
        Keys.from_arrow(pa.array([b"short"], pa.binary()))
    except ValueError as exc:
        assert "16 bytes" in str(exc)
    else:
        raise AssertionError("a key that is not 16 bytes must be refused")
