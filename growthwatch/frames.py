"""Growth events as columns: the bulk form of ``GrowthEvent``.

Building millions of ``GrowthEvent`` objects costs seconds per million, so bulk paths (the
demo generator, backfills, the ledger's reads, the metric functions) pass pandas frames in
one fixed layout instead. ``check_frame`` applies the same rules as ``GrowthEvent`` to a
whole frame at once and, instead of failing the batch, splits it into the good rows and a
list of problems, so one bad record never costs the good ones.

Layout (``EVENT_COLUMNS``): money columns are float64 here for speed; the ledger stores them
as exact DECIMAL(18, 6) and rounds float input to 6 decimals on the way in.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Final

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from growthwatch import currency as iso4217
from growthwatch.events import (
    MAX_ABS_VALUE,
    MONETARY_TYPES,
    PRODUCT_ID,
    REQUIRED_METADATA,
    SUBJECT_TYPES,
    SUBSCRIPTION_TYPES,
    UNIT_TYPES,
    EventType,
    GrowthEvent,
    idempotency_key,
)

# column -> pandas dtype of a checked frame
EVENT_COLUMNS: Final[dict[str, str]] = {
    "idempotency_key": "str",
    "product": "str",
    "type": "str",
    "ts": "datetime64[us, UTC]",
    "value": "float64",
    "currency": "str",  # missing for non-monetary types
    "subject": "str",  # missing for session aggregates and KPIs
    "mrr_before": "float64",  # NaN outside subscription types
    "mrr_after": "float64",
    "plan": "str",  # metadata["plan"], lifted out for grouping
    "channel": "str",  # metadata["channel"], lifted out for grouping
    "metadata": "str",  # JSON object text (or missing)
    "source": "str",
    "source_id": "str",
    "kind": "str",
}
REQUIRED_INPUT: Final = ("product", "type", "ts", "value", "source", "source_id")
_MAX = float(MAX_ABS_VALUE)


@dataclass(frozen=True, slots=True)
class RowProblem:
    """Why one input row was rejected. ``row`` is the input frame's index label."""

    row: Any
    field: str
    value: Any
    reason: str

    def __str__(self) -> str:
        return f"row {self.row}: {self.field}={self.value!r}: {self.reason}"


class FrameValidationError(ValueError):
    """Raised by ``validate_frame`` when any row is invalid; ``problems`` lists them."""

    def __init__(self, problems: list[RowProblem]) -> None:
        self.problems = problems
        shown = "; ".join(str(p) for p in problems[:5])
        more = f" (and {len(problems) - 5} more)" if len(problems) > 5 else ""
        super().__init__(f"{len(problems)} invalid event row(s): {shown}{more}")


def empty_frame() -> pd.DataFrame:
    return pd.DataFrame({c: pd.Series(dtype=d) for c, d in EVENT_COLUMNS.items()})


def events_to_frame(events: Iterable[GrowthEvent]) -> pd.DataFrame:
    """Columns from already-validated events (no re-check needed)."""
    records = [e.to_record() for e in events]
    if not records:
        return empty_frame()
    frame = pd.DataFrame.from_records(records)
    frame["metadata"] = [json.dumps(m, sort_keys=True) if m else None for m in frame["metadata"]]
    for col in ("value", "mrr_before", "mrr_after"):
        frame[col] = [np.nan if v is None else float(v) for v in frame[col]]
    return _typed(frame)


def frame_to_events(frame: pd.DataFrame) -> Iterator[GrowthEvent]:
    """Rebuild ``GrowthEvent`` objects (slow; for small frames and tests)."""
    for row in frame.itertuples(index=False):
        meta = json.loads(row.metadata) if isinstance(row.metadata, str) else {}
        yield GrowthEvent(
            product=row.product,
            type=EventType(row.type),
            timestamp=row.ts.to_pydatetime(),
            value=_dec(row.value),
            currency=row.currency if isinstance(row.currency, str) else None,
            subject=row.subject if isinstance(row.subject, str) else None,
            mrr_before=None if pd.isna(row.mrr_before) else _dec(row.mrr_before),
            mrr_after=None if pd.isna(row.mrr_after) else _dec(row.mrr_after),
            source=row.source,
            source_id=row.source_id,
            kind=row.kind,
            metadata=meta,
        )


def _dec(value: float) -> Decimal:
    return Decimal(repr(float(value))).quantize(Decimal("0.000001"))


def _typed(frame: pd.DataFrame) -> pd.DataFrame:
    out = pd.DataFrame(index=frame.index)
    for col, dtype in EVENT_COLUMNS.items():
        series = frame[col] if col in frame else pd.Series(None, index=frame.index, dtype=object)
        if dtype.startswith("datetime"):
            out[col] = pd.to_datetime(series, utc=True).astype(dtype)
        elif dtype == "float64":
            out[col] = pd.to_numeric(series, errors="coerce").astype("float64")
        else:
            out[col] = series.astype("str")
    return out


def check_frame(
    frame: pd.DataFrame, *, derive_keys: bool = True
) -> tuple[pd.DataFrame, list[RowProblem]]:
    """Validate every row with ``GrowthEvent``'s rules, vectorised.

    Returns the good rows in the ``EVENT_COLUMNS`` layout (keys always derived,
    ``kind`` defaulted to the type; the input's index labels kept) and one ``RowProblem``
    per bad row (its first problem). ``check_table`` is the same check with the good rows
    as an Arrow table (what the ledger inserts from).
    """
    table, problems, index = _check(frame, derive_keys=derive_keys)
    good = table.to_pandas()
    good.index = index
    return _typed(good), problems


def check_table(
    frame: pd.DataFrame, *, derive_keys: bool = True
) -> tuple[pa.Table, list[RowProblem]]:
    """``check_frame`` with the good rows as an Arrow table in ``EVENT_COLUMNS`` order and
    types: the bulk path (``Ledger.append``) hands it to DuckDB without a pandas copy."""
    table, problems, _ = _check(frame, derive_keys=derive_keys)
    return table, problems


def _check(
    frame: pd.DataFrame, *, derive_keys: bool
) -> tuple[pa.Table, list[RowProblem], pd.Index]:
    """The rules, each a mask over the rows, in a fixed order (a row's first problem is
    the one reported). Text columns are turned into Arrow strings once and checked with
    Arrow compute or once per distinct value (products, types, currencies: a handful),
    never per row in Python, so the cost is a few copies of the columns."""
    missing = [c for c in REQUIRED_INPUT if c not in frame.columns]
    if missing:
        raise FrameValidationError(
            [RowProblem("*", c, None, "column missing from the frame") for c in missing]
        )
    n = len(frame)
    bad = np.zeros(n, dtype=bool)
    problems: list[RowProblem] = []
    index = frame.index

    def flag(mask: np.ndarray, field: str, values: Callable[[], pd.Series], reason: str) -> None:
        new = mask & ~bad
        if not new.any():
            return
        shown = values()
        for pos in np.flatnonzero(new):
            problems.append(RowProblem(index[pos], field, shown.iloc[pos], reason))
        bad[:] |= new

    def text(col: str) -> Callable[[], pd.Series]:
        """The column's values as given (missing as None), for problem reports."""

        def values() -> pd.Series:
            s = frame[col] if col in frame else pd.Series(None, index=index, dtype=object)
            return s.where(s.notna(), None)

        return values

    def raw(col: str, default: pd.Series | None = None) -> Callable[[], pd.Series]:
        return lambda: frame[col] if col in frame or default is None else default

    strings = {c: _strings(frame, c, n) for c in _TEXT_COLUMNS}

    product = strings["product"]
    ok = _per_distinct(product, lambda u: pc.match_substring_regex(u, PRODUCT_ID.pattern))
    flag(~ok, "product", text("product"), "must match [a-z0-9][a-z0-9_-]*")

    etype = strings["type"]
    codes = pc.index_in(etype, value_set=_TYPE_VALUES).fill_null(-1).to_numpy()
    flag(codes < 0, "type", text("type"), "not a known event type")

    def of_types(types: Iterable[EventType]) -> np.ndarray:
        table = np.zeros(len(_TYPE_VALUES) + 1, dtype=bool)  # the last one: unknown (-1)
        for t in types:
            table[_TYPE_CODE[t]] = True
        return table[codes]

    raw_ts = frame["ts"]
    ts_problem = np.zeros(n, dtype=bool)
    if pd.api.types.is_datetime64_any_dtype(raw_ts):
        if getattr(raw_ts.dt, "tz", None) is None:
            ts_problem[:] = True
            ts = pd.Series(pd.NaT, index=index, dtype="datetime64[us, UTC]")
        else:
            ts = raw_ts.dt.tz_convert("UTC")
    else:
        naive = np.array(
            [not (hasattr(v, "tzinfo") and v.tzinfo is not None) for v in raw_ts], dtype=bool
        )
        ts_problem |= naive
        ts = pd.to_datetime(raw_ts.where(~naive, None), utc=True, errors="coerce")
    ts_problem |= ts.isna().to_numpy()
    flag(ts_problem, "ts", raw("ts"), "must be a timezone-aware timestamp (naive rejected)")

    value = pd.to_numeric(frame["value"], errors="coerce").astype("float64")
    v = value.to_numpy()
    with np.errstate(invalid="ignore"):
        flag(~np.isfinite(v) | (np.abs(v) > _MAX), "value", raw("value"), "not a finite amount")

    currency = strings["currency"]
    monetary = of_types(MONETARY_TYPES)
    cur_ok = _mask(pc.is_in(currency, value_set=_CURRENCY_VALUES))
    flag(monetary & ~cur_ok, "currency", text("currency"), "must be an upper-case ISO 4217 code")
    flag(~monetary & _mask(pc.is_valid(currency)), "currency", text("currency"),
         "carries no currency")  # fmt: skip

    subject = strings["subject"]
    needs_subject = of_types(SUBJECT_TYPES)
    flag(needs_subject & _blank(subject), "subject", text("subject"),
         "required for this event type")  # fmt: skip

    subscription = of_types(SUBSCRIPTION_TYPES)
    mrr: dict[str, np.ndarray] = {}
    for col in ("mrr_before", "mrr_after"):
        given = frame[col] if col in frame else pd.Series(np.nan, index=index)
        m = pd.to_numeric(given, errors="coerce").astype("float64").to_numpy()
        mrr[col] = m
        shown = raw(col, pd.Series(np.nan, index=index))
        with np.errstate(invalid="ignore"):
            flag(subscription & ~(np.isfinite(m) & (m >= 0)), col, shown, "required, >= 0")
        flag(~subscription & ~np.isnan(m), col, shown, "only subscription events carry MRR")
    delta = np.round(mrr["mrr_after"] - mrr["mrr_before"], 6)
    with np.errstate(invalid="ignore"):
        flag(subscription & (np.abs(np.round(v, 6) - delta) > 5e-7), "value", lambda: value,
             "must equal mrr_after - mrr_before")  # fmt: skip
        paused = of_types([EventType.SUBSCRIPTION_PAUSED])
        flag(paused & (np.round(mrr["mrr_after"], 6) != 0), "mrr_after",
             raw("mrr_after", value), "a paused subscription has MRR 0")  # fmt: skip
        resumed = of_types([EventType.SUBSCRIPTION_RESUMED])
        flag(resumed & (np.round(mrr["mrr_before"], 6) != 0), "mrr_before",
             raw("mrr_before", value), "a resume starts from MRR 0")  # fmt: skip
        flag(of_types(UNIT_TYPES) & (v != 1), "value", lambda: value, "counts 1")
        positive = of_types([EventType.PAYMENT, EventType.REFUND])
        flag(positive & ~(v > 0), "value", lambda: value, "must be a positive amount")
        nonneg = of_types([EventType.PAYMENT_FAILED, EventType.SESSION])
        flag(nonneg & (v < 0), "value", lambda: value, "cannot be negative")

    source, source_id = strings["source"], strings["source_id"]
    flag(_mask(pc.is_null(source)), "source", text("source"), "must be a non-empty string")
    flag(_mask(pc.is_null(source_id)), "source_id", text("source_id"),
         "must be a non-empty string")  # fmt: skip

    metadata = strings["metadata"]
    kpi = pa.nulls(n, pa.string())
    if metadata.null_count < n:
        # Parse only the rows that carry metadata (most bulk events carry none).
        rows = np.flatnonzero(_mask(pc.is_valid(metadata)))
        meta_objs = [_parse_meta(m) for m in metadata.take(pa.array(rows)).to_pylist()]
        broken = np.zeros(n, dtype=bool)
        broken[rows] = [m is None for m in meta_objs]
        flag(broken, "metadata", text("metadata"), "must be a JSON object")

        def lifted(key: str, given: pa.Array) -> pa.Array:
            out = np.array(given.to_pylist(), dtype=object)
            out[rows] = [_get(m, key) for m in meta_objs]
            return pc.coalesce(pa.array(out, type=pa.string()), given)

        if "plan" not in frame:
            strings["plan"] = lifted("plan", strings["plan"])
        if "channel" not in frame:
            strings["channel"] = lifted("channel", strings["channel"])
        kpi = lifted("kpi", kpi)
    for required_type, keys in REQUIRED_METADATA.items():
        is_type = of_types([required_type])
        for key in keys:
            present = _mask(pc.is_valid(strings["channel"] if key == "channel" else kpi))
            flag(is_type & ~present, f"metadata.{key}", text("metadata"),
                 "required for this type")  # fmt: skip

    kind = pc.coalesce(strings["kind"], etype) if "kind" in frame else etype
    ts_us = ts.astype("datetime64[us, UTC]") if not ts_problem.all() else ts
    columns: dict[str, pa.Array] = {
        "idempotency_key": pa.nulls(n, pa.string()),
        "product": product,
        "type": etype,
        "ts": pa.array(ts_us.to_numpy(dtype="datetime64[us]"), pa.timestamp("us", tz="UTC")),
        "value": pa.array(value.round(6).to_numpy(), from_pandas=True),
        "currency": currency,
        "subject": subject,
        "mrr_before": pa.array(np.round(mrr["mrr_before"], 6), from_pandas=True),
        "mrr_after": pa.array(np.round(mrr["mrr_after"], 6), from_pandas=True),
        "plan": strings["plan"],
        "channel": strings["channel"],
        "metadata": metadata,
        "source": source,
        "source_id": source_id,
        "kind": kind,
    }
    table = pa.table(columns)
    good = ~bad
    if bad.any():
        table = table.filter(pa.array(good))
    # Always derived, never trusted from the input: a key that disagrees with the
    # source's ids would silently merge or split events. The ledger derives keys itself
    # in SQL (same formula, vectorised) and asks for none here.
    if derive_keys:
        derived = [
            idempotency_key(s, i, k)
            for s, i, k in zip(
                table["source"].to_pylist(), table["source_id"].to_pylist(),
                table["kind"].to_pylist(), strict=True,
            )
        ]  # fmt: skip
        table = table.set_column(0, "idempotency_key", pa.array(derived, type=pa.string()))
    return table, problems, index[good]


# Text columns of the input, as Arrow strings (a missing column: all null).
_TEXT_COLUMNS: Final = ("product", "type", "currency", "subject", "plan", "channel",
                        "metadata", "source", "source_id", "kind")  # fmt: skip
_TYPE_VALUES: Final = pa.array([t.value for t in EventType], type=pa.string())
_TYPE_CODE: Final = {t: i for i, t in enumerate(EventType)}
_CURRENCY_VALUES: Final = pa.array(sorted(iso4217.CURRENCIES), type=pa.string())


def _strings(frame: pd.DataFrame, col: str, n: int) -> pa.Array:
    """A text column as an Arrow string array (None and NaN as null). Non-string values
    become their ``str()``, as ``astype(str)`` makes them."""
    if col not in frame:
        return pa.nulls(n, pa.string())
    series = frame[col]
    try:
        arr = pa.array(series, from_pandas=True)
        if isinstance(arr, pa.ChunkedArray):  # pandas' Arrow-backed str dtype
            arr = arr.combine_chunks()
        if not (pa.types.is_string(arr.type) or pa.types.is_large_string(arr.type)
                or pa.types.is_null(arr.type)):  # fmt: skip
            raise pa.ArrowTypeError(f"{col} is {arr.type}")
        return arr.cast(pa.string())
    except (pa.ArrowTypeError, pa.ArrowInvalid):
        present = series.notna()
        as_text = series.astype(object).where(~present, series.astype(str).astype(object))
        return pa.array(as_text.where(present, None), type=pa.string())


def _mask(arr: pa.Array | pa.ChunkedArray) -> np.ndarray:
    """A boolean Arrow array as numpy (null: False)."""
    return np.asarray(arr.fill_null(False).to_numpy(zero_copy_only=False), dtype=bool)


def _per_distinct(arr: pa.Array, test: Callable[[pa.Array], pa.Array]) -> np.ndarray:
    """``test`` over each distinct value once, spread back to the rows (null: False)."""
    encoded = arr.dictionary_encode()
    passed = _mask(test(encoded.dictionary))
    idx = encoded.indices.fill_null(-1).to_numpy(zero_copy_only=False)
    return np.append(passed, False)[idx]


def _blank(arr: pa.Array) -> np.ndarray:
    """Null, empty or all whitespace (Arrow's ``utf8_trim_whitespace``, which pandas'
    ``str.strip`` runs). An all-whitespace string starts with whitespace, so only the
    strings whose first character is not alphanumeric (a few, if any) are trimmed."""
    blank = _mask(pc.is_null(arr)) | _mask(pc.equal(pc.utf8_length(arr), 0))
    first = pc.utf8_slice_codeunits(arr, 0, 1)
    suspects = np.flatnonzero(~_mask(pc.utf8_is_alnum(first)) & ~blank)
    if len(suspects):
        trimmed = pc.utf8_trim_whitespace(arr.take(pa.array(suspects)))
        blank[suspects] = _mask(pc.equal(pc.utf8_length(trimmed), 0))
    return blank


def validate_frame(frame: pd.DataFrame) -> pd.DataFrame:
    """``check_frame`` for callers that want all or nothing."""
    good, problems = check_frame(frame)
    if problems:
        raise FrameValidationError(problems)
    return good


def _parse_meta(text: object) -> dict[str, Any] | None:
    if not isinstance(text, str):
        return {}
    try:
        parsed = json.loads(text)
    except ValueError:
        return None
    return parsed if isinstance(parsed, dict) else None


def _get(meta: dict[str, Any] | None, key: str) -> str | None:
    if not meta:
        return None
    value = meta.get(key)
    return None if value is None else str(value)
