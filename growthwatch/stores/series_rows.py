"""A ``PointBatch`` as the rows the embedded series store writes: one row per point.

The store keeps one wide table per measurement (``series.py``); a batch becomes, without a
Python loop over its rows:

* ``tags``: the canonical JSON of each row's tag set (sorted keys, absent/NA tags left
  out), the same text ``json.dumps(..., sort_keys=True)`` gives, because that is exactly
  what builds it, once per distinct tag combination (a batch has a few hundred at most),
  not once per row;
* ``time``: microseconds UTC (what DuckDB's TIMESTAMPTZ holds), naive in Arrow;
* per field, a float64 array whose nulls are the undefined values (NaN, NA, +-inf: each
  removes a stored value) and, for string fields, a string array.

Rows with the same (tag set, time) in one batch keep the last one: every row carries
every field of the batch, so the last row is the last value of each of its fields, which
is the "last wins" of writing the rows one by one.

Everything is Arrow so DuckDB reads it without converting Python objects (the old long
frame spent seconds there).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from growthwatch.points import PointBatch


@dataclass(frozen=True)
class SeriesRows:
    """One batch, deduplicated, ready for the store: Arrow columns plus its time span."""

    tags: pa.Array  # string: canonical tag JSON per row
    time: pa.Array  # timestamp[us], naive UTC (see ``series._upsert`` for why naive)
    values: dict[str, pa.Array]  # field -> float64, null = undefined
    texts: dict[str, pa.Array]  # field -> string (fields whose values are text), null = undefined
    start: datetime  # earliest time, inclusive
    end: datetime  # latest time, inclusive

    def __len__(self) -> int:
        return len(self.time)


def series_rows(batch: PointBatch) -> SeriesRows | None:
    """The rows of ``batch`` (None when its frame is empty)."""
    frame = batch.frame
    if frame.empty:
        return None
    micros = _micros(frame["time"])
    combo, texts = tag_json(frame, batch.tags)
    keep = _last_of_each(combo, micros)
    if keep is not None:
        combo, micros = combo[keep], micros[keep]
    values: dict[str, pa.Array] = {}
    strings: dict[str, pa.Array] = {}
    for name in dict.fromkeys(batch.fields):  # a field named twice is one field
        column = frame[name] if keep is None else frame[name][keep]
        number, text = _field_arrays(column)
        values[name] = number
        if text is not None:
            strings[name] = text
    tag_array = pa.array(texts, type=pa.string()).take(pa.array(combo))
    return SeriesRows(
        tags=tag_array,
        time=pa.array(micros, type=pa.timestamp("us")),
        values=values,
        texts=strings,
        start=pd.Timestamp(int(micros.min()), unit="us", tz="UTC").to_pydatetime(),
        end=pd.Timestamp(int(micros.max()), unit="us", tz="UTC").to_pydatetime(),
    )


def _last_of_each(combo: np.ndarray, micros: np.ndarray) -> np.ndarray | None:
    """The rows to keep, the last of each (tag set, time) (None: every row is the only
    one). numpy, not a frame's ``duplicated``: a live update writes dozens of small
    batches, and building a frame per batch was most of this check's cost."""
    n = len(combo)
    times, codes = np.unique(micros, return_inverse=True)
    key = combo.astype(np.int64) * len(times) + codes.reshape(-1)
    if len(np.unique(key)) == n:
        return None
    _, first_reversed = np.unique(key[::-1], return_index=True)
    keep = np.zeros(n, dtype=bool)
    keep[n - 1 - first_reversed] = True
    return keep


def tag_json(frame: pd.DataFrame, tags: tuple[str, ...]) -> tuple[np.ndarray, list[str]]:
    """Each row's tag set as an index into a list of canonical JSON texts.

    String and integer tag columns are factorised (their values hash exactly as they
    print); any other column (floats, where -0.0 and 0.0 hash alike but print apart;
    mixed objects, where 1, 1.0 and True do) takes the per-row ``json.dumps``.
    """
    n = len(frame)
    if not tags:
        return np.zeros(n, dtype=np.int64), ["{}"]
    if not all(_factorisable(frame[t]) for t in tags):
        return _tag_json_per_row(frame, tags)
    codes: list[np.ndarray] = []
    uniques: list[list[Any]] = []
    combo = np.zeros(n, dtype=np.int64)
    for tag in tags:
        code, unique = pd.factorize(frame[tag], use_na_sentinel=True)
        codes.append(code)
        uniques.append(np.asarray(unique, dtype=object).tolist())
        combo, _ = pd.factorize(combo * (len(unique) + 1) + (code + 1))
    _, first = np.unique(combo, return_index=True)  # combo ids are 0..k-1 in first-seen order
    texts = [
        json.dumps({t: uniques[i][codes[i][row]] for i, t in enumerate(tags)
                    if codes[i][row] >= 0}, sort_keys=True)
        for row in first.tolist()
    ]  # fmt: skip
    return combo.astype(np.int64), texts


def _tag_json_per_row(frame: pd.DataFrame, tags: tuple[str, ...]) -> tuple[np.ndarray, list[str]]:
    """The general form, row by row (what the store always did before)."""
    part = frame[list(tags)]
    rows = [
        json.dumps({k: v for k, v in zip(tags, row, strict=True) if v is not None},
                   sort_keys=True)
        for row in part.astype(object).where(part.notna(), None).itertuples(index=False, name=None)
    ]  # fmt: skip
    codes, unique = pd.factorize(pd.Series(rows, dtype=object))
    return codes.astype(np.int64), list(unique)


def _factorisable(column: pd.Series) -> bool:
    dtype = column.dtype
    if pd.api.types.is_bool_dtype(dtype) or pd.api.types.is_integer_dtype(dtype):
        return True
    if pd.api.types.is_string_dtype(dtype):
        return pd.api.types.infer_dtype(column, skipna=True) in ("string", "empty")
    return False


def _micros(times: pd.Series) -> np.ndarray:
    """Times as int64 microseconds since the epoch, UTC."""
    index = pd.DatetimeIndex(times).tz_convert("UTC").tz_localize(None)
    return index.to_numpy().astype("datetime64[us]").astype(np.int64)


def _field_arrays(column: pd.Series) -> tuple[pa.Array, pa.Array | None]:
    """(numbers, texts) of one field column; a text column has null numbers and vice versa."""
    n = len(column)
    if column.dtype == np.float64 or column.dtype == np.int64:  # the common case, directly
        numbers = np.asarray(column, dtype="float64")
        return pa.array(numbers, mask=~np.isfinite(numbers)), None
    if pd.api.types.is_numeric_dtype(column.dtype) or pd.api.types.is_bool_dtype(column.dtype):
        numbers = column.to_numpy(dtype="float64", na_value=np.nan)
        return pa.array(numbers, mask=~np.isfinite(numbers)), None
    objects = column.to_numpy(dtype=object, na_value=None)
    present = pd.notna(objects)
    if pd.api.types.infer_dtype(objects, skipna=True) in ("string", "empty"):
        strings = np.where(present, objects, None)
        return pa.nulls(n, pa.float64()), pa.array(strings, type=pa.string())
    # Mixed values (rare: single points with a text and a number under one field name):
    # numbers stay numbers, everything else is stored as its text.
    numbers = np.full(n, np.nan)
    texts: np.ndarray = np.full(n, None, dtype=object)
    for i, value in enumerate(objects):
        if not present[i]:
            continue
        if isinstance(value, bool | int | float | np.number):
            number = float(value)
            if np.isfinite(number):
                numbers[i] = number
        else:
            texts[i] = value if isinstance(value, str) else str(value)
    return pa.array(numbers, mask=~np.isfinite(numbers)), pa.array(texts, type=pa.string())
