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


def _field_fragments(name: str, column: pd.Series) -> list[str]:
    key = escape_key(name, "field key") + "="
    dtype = column.dtype
    if pd.api.types.is_bool_dtype(dtype):
        return [key + ("true" if v else "false") for v in column]
    if pd.api.types.is_integer_dtype(dtype):
        return [f"{key}{v}i" for v in column.to_numpy()]
    if pd.api.types.is_float_dtype(dtype):
        values = column.to_numpy(dtype="float64")
        finite = np.isfinite(values)
        return [key + repr(v) if ok else "" for v, ok in zip(values.tolist(), finite, strict=True)]
    out = []
    for v in column:
        encoded = None if v is None or (isinstance(v, float) and math.isnan(v)) else format_field(v)
        out.append("" if encoded is None else key + encoded)
    return out


def encode_batch(batch: PointBatch) -> Iterator[str]:
    """Encode a whole batch; tags are escaped once per distinct value, not per row."""
    frame = batch.frame
    if frame.empty:
        return
    prefix = pd.Series(escape_measurement(batch.measurement), index=frame.index, dtype=object)
    for tag in sorted(batch.tags):
        column = frame[tag]
        escaped = {v: escape_key(str(v), "tag value") for v in column.dropna().unique()}
        tag_key = "," + escape_key(tag, "tag key") + "="
        part = column.map(escaped)
        # A missing tag value means "no such tag" on that point, as in InfluxDB itself.
        prefix = prefix + (tag_key + part).where(part.notna(), "")
    fragments = [_field_fragments(f, frame[f]) for f in sorted(batch.fields)]
    ns = frame["time"].dt.tz_convert("UTC").astype("datetime64[ns, UTC]").astype("int64")
    for head, t, *parts in zip(prefix.tolist(), ns.tolist(), *fragments, strict=True):
        body = ",".join(p for p in parts if p)
        if body:
            yield f"{head} {body} {t}"
