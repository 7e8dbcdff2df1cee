"""InfluxDB line protocol encoding, exactly per InfluxDB's escaping rules.

    measurement[,tag=value...] field=value[,field=value...] timestamp

- measurement: escape comma and space;
- tag keys, tag values, field keys: escape comma, equals sign and space;
- string field values: double-quoted, escape double quote and backslash; newlines are
  allowed inside the quotes;
- integers carry an ``i`` suffix, floats are written in shortest round-trip form, booleans
  as ``true``/``false``; NaN and infinities cannot be stored, so that field is left out.

What the protocol cannot carry in a name or tag value is refused with an error naming it
rather than silently stored as something else: a newline (it ends the line) and a
backslash at the end or in front of a comma, equals sign or space (InfluxDB 1.x reads that
as an escape; 2.x reads ``\\\\`` differently again). A backslash anywhere else is literal
in every version, so it is written as it is.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from growthwatch.points import FieldValue, Point, PointBatch

_UNSAFE = re.compile(r"\n|\r|\\$|\\(?=[ ,=])")


class LineProtocolError(ValueError):
    """A name or tag value that line protocol cannot represent faithfully."""


def _check(kind: str, text: str) -> str:
    if not text:
        raise LineProtocolError(f"{kind} must not be empty")
    if _UNSAFE.search(text):
        raise LineProtocolError(
            f"{kind} {text!r} cannot be written as line protocol: newlines and a backslash "
            "at the end or before ',', '=' or ' ' are not representable"
        )
    return text


def escape_measurement(name: str) -> str:
    return _check("measurement", name).replace(",", r"\,").replace(" ", r"\ ")


def escape_key(text: str, kind: str = "tag") -> str:
    """Tag keys, tag values and field keys share one rule."""
    return _check(kind, text).replace(",", r"\,").replace("=", r"\=").replace(" ", r"\ ")


def escape_string_field(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def format_field(value: FieldValue) -> str | None:
    """The encoded value, or None when the value cannot be stored (NaN, inf)."""
    if isinstance(value, bool | np.bool_):
        return "true" if value else "false"
    if isinstance(value, int | np.integer):
        return f"{int(value)}i"
    if isinstance(value, float | np.floating):
        f = float(value)
        return repr(f) if math.isfinite(f) else None
    if isinstance(value, str):
        return escape_string_field(value)
    raise LineProtocolError(f"unsupported field type {type(value).__name__}: {value!r}")


def sanitize_tag_value(value: Any) -> str:
    """Make an arbitrary source string safe as a tag value (for labels from sources)."""
    text = " ".join(str(value).split()) or "unknown"
    return re.sub(r"\\+(?=[ ,=]|$)", "", text) or "unknown"


def encode_point(point: Point) -> str | None:
    fields = []
    for key in sorted(point.fields):
        encoded = format_field(point.fields[key])
        if encoded is not None:
            fields.append(f"{escape_key(key, 'field key')}={encoded}")
    if not fields:
        return None
    tags = "".join(
        f",{escape_key(k, 'tag key')}={escape_key(point.tags[k], 'tag value')}"
        for k in sorted(point.tags)
    )
    ns = int(pd.Timestamp(point.time).value)
    return f"{escape_measurement(point.measurement)}{tags} {','.join(fields)} {ns}"


def _fragments(codes: np.ndarray, texts: list[str | None]) -> pa.Array:
    """``texts[code]`` per row (null where the code is -1 or the text is None)."""
    table = pa.array(texts, type=pa.string())
    return table.take(pa.array(codes, mask=codes < 0, type=pa.int64()))


def _tag_prefix(head: str, tags: list[tuple[str, pd.Series]], n: int) -> pa.Array:
    """``measurement,key=value...`` per row: each tag column factorized and its values
    escaped once, the rows' combinations of them numbered, and each combination written
    once (a null tag is left out), so the per-row work is one gather from a small table
    instead of a join per tag."""
    if not tags:
        return _fragments(np.zeros(n, dtype=np.int64), [head])
    codes: list[np.ndarray] = []
    options: list[list[str]] = []
    for name, column in tags:
        key = "," + escape_key(name, "tag key") + "="
        found, uniques = pd.factorize(column, use_na_sentinel=True)
        codes.append(found.astype(np.int64) + 1)  # 0: no such tag
        options.append(["", *(key + escape_key(str(v), "tag value") for v in uniques)])
    if np.prod([float(len(o)) for o in options]) < 2.0**62:
        combined = np.zeros(n, dtype=np.int64)
        for found, opts in zip(codes, options, strict=True):
            combined = combined * len(opts) + found
        present, row_combo = np.unique(combined, return_inverse=True)
        digits = []
        for opts in reversed(options):
            digits.append(present % len(opts))
            present = present // len(opts)
        picks = np.stack(digits[::-1], axis=1)
    else:  # a mixed radix would overflow: number the distinct rows of codes instead
        picks, row_combo = np.unique(np.stack(codes, axis=1), axis=0, return_inverse=True)
    texts: list[str | None] = [
        head + "".join(opts[i] for opts, i in zip(options, combo, strict=True))
        for combo in picks.tolist()
    ]
    return _fragments(row_combo.reshape(-1), texts)


def _field_fragments(name: str, column: pd.Series) -> pa.Array:
    """``key=value`` per row; null where the value cannot be stored (missing, NaN, inf)."""
    key = escape_key(name, "field key") + "="
    dtype = column.dtype
    missing = column.isna().to_numpy(dtype=bool)
    if pd.api.types.is_bool_dtype(dtype):
        values = column.to_numpy(dtype=bool, na_value=False)
        return _fragments(np.where(missing, -1, values.astype(np.int64)),
                          [key + "false", key + "true"])  # fmt: skip
    if pd.api.types.is_integer_dtype(dtype):
        ints = pa.array(column.to_numpy(dtype="int64", na_value=0), mask=missing)
        return pc.binary_join_element_wise(key, pc.cast(ints, pa.string()), "i", "")
    if pd.api.types.is_float_dtype(dtype):
        # Shortest round-trip text is Python's repr: computed once per distinct bit pattern
        # (so 0.0 and -0.0 stay apart), non-finite values are left out.
        floats = column.to_numpy(dtype="float64", na_value=np.nan)
        codes, uniques = pd.factorize(floats.view(np.int64))
        texts = [
            key + repr(f) if math.isfinite(f) else None
            for f in uniques.view(np.float64).tolist()
        ]
        return _fragments(codes, texts)
    if pd.api.types.is_string_dtype(dtype) and pd.api.types.infer_dtype(column) in (
        "string", "empty"
    ):  # fmt: skip
        if isinstance(dtype, pd.StringDtype):
            strings = pa.array(column, type=pa.string())
        else:
            strings = pa.array(column.astype(object).where(~missing, None), type=pa.string())
        if pc.any(pc.match_substring(strings, "\\")).as_py():
            strings = pc.replace_substring(strings, "\\", "\\\\")
        if pc.any(pc.match_substring(strings, '"')).as_py():
            strings = pc.replace_substring(strings, '"', '\\"')
        return pc.binary_join_element_wise(key + '"', strings, '"', "")
    out: list[str | None] = []
    for v in column:
        encoded = None if v is None or (isinstance(v, float) and math.isnan(v)) else format_field(v)
        out.append(None if encoded is None else key + encoded)
    return pa.array(out, type=pa.string())


def encode_lines(batch: PointBatch) -> pa.Array:
    """The batch's lines as one Arrow string array, each line ending in a newline.

    Vectorised (Arrow compute runs in C++ without the GIL, so encoding overlaps with
    other threads): each distinct combination of tag values is escaped once, floats
    formatted once per distinct value, strings escaped column-wise (only when a value
    needs it), and a line is put together by one join when every row stores every field.
    A row none of whose fields can be stored is left out, as ``encode_point`` leaves such
    a point out. The bytes of consecutive lines are one contiguous slice of the array's
    data buffer, which is how ``InfluxStore`` builds request bodies without copying line
    by line.
    """
    frame = batch.frame
    if frame.empty:
        return pa.array([], type=pa.string())
    head = escape_measurement(batch.measurement)
    prefix = _tag_prefix(head, [(t, frame[t]) for t in sorted(batch.tags)], len(frame))
    fields = [_field_fragments(f, frame[f]) for f in sorted(batch.fields)]
    ns = frame["time"].dt.tz_convert("UTC").astype("datetime64[ns, UTC]").astype("int64")
    times = pc.cast(pa.array(ns.to_numpy()), pa.string())
    if not any(f.null_count for f in fields):  # every row stores every field: one join
        parts: list[Any] = [prefix, " "]
        for i, fragment in enumerate(fields):
            parts += [","] * (i > 0) + [fragment]
        return pc.binary_join_element_wise(*parts, " ", times, "\n", "")
    stored = pc.is_valid(fields[0])
    for fragment in fields[1:]:
        stored = pc.or_(stored, pc.is_valid(fragment))
    # Every stored field as ",key=value", then the first comma becomes the space after the
    # tags (null_handling="skip" would be simpler but drops rows in pyarrow 26).
    body = pc.binary_join_element_wise(*(pc.binary_join_element_wise(",", f, "") for f in fields),
                                       "", null_handling="replace", null_replacement="")  # fmt: skip
    body = pc.binary_replace_slice(body, start=0, stop=1, replacement=" ")
    lines = pc.binary_join_element_wise(prefix, body, " ", times, "\n", "")
    if not pc.all(stored).as_py():
        lines = lines.filter(stored)
    return lines


def encode_batch(batch: PointBatch) -> Iterator[str]:
    """Encode a whole batch, one string per line (see ``encode_lines``)."""
    for line in encode_lines(batch).to_pylist():
        yield line[:-1]


def line_bodies(lines: pa.Array) -> tuple[memoryview, np.ndarray]:
    """The data buffer of ``encode_lines``' result and the byte offset of each line
    (``len(lines) + 1`` offsets): lines ``i..j`` are ``data[offsets[i]:offsets[j]]``."""
    if lines.null_count:
        raise ValueError("encoded lines must not contain nulls")
    width = np.int64 if pa.types.is_large_string(lines.type) else np.int32
    buffers = lines.buffers()
    offsets = np.frombuffer(buffers[1], dtype=width)[lines.offset : lines.offset + len(lines) + 1]
    data = memoryview(buffers[2]) if buffers[2] is not None else memoryview(b"")
    return data, offsets.astype(np.int64)
