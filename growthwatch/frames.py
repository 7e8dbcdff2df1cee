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
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Final

import numpy as np
import pandas as pd

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
    ``kind`` defaulted to the type) and one ``RowProblem`` per bad row (its first problem).
    """
    missing = [c for c in REQUIRED_INPUT if c not in frame.columns]
    if missing:
        raise FrameValidationError(
            [RowProblem("*", c, None, "column missing from the frame") for c in missing]
        )
    n = len(frame)
    bad = np.zeros(n, dtype=bool)
    problems: list[RowProblem] = []
    index = frame.index

    def flag(mask: np.ndarray, field: str, values: pd.Series, reason: str) -> None:
        new = mask & ~bad
        for pos in np.flatnonzero(new):
            problems.append(RowProblem(index[pos], field, values.iloc[pos], reason))
        bad[:] |= new

    def text(col: str) -> pd.Series:
        s = frame[col] if col in frame else pd.Series(None, index=index, dtype=object)
        return s.where(s.notna(), None)

    product = text("product")
    ok = product.astype(str).str.fullmatch(PRODUCT_ID.pattern).to_numpy(dtype=bool)
    flag(~ok | product.isna().to_numpy(), "product", product, "must match [a-z0-9][a-z0-9_-]*")

    etype = text("type")
    valid_types = {t.value for t in EventType}
    flag(~etype.isin(valid_types).to_numpy(), "type", etype, "not a known event type")
    etype_s = etype.astype(str)

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
    flag(ts_problem, "ts", raw_ts, "must be a timezone-aware timestamp (naive rejected)")

    value = pd.to_numeric(frame["value"], errors="coerce").astype("float64")
    v = value.to_numpy()
    flag(~np.isfinite(v) | (np.abs(v) > _MAX), "value", frame["value"], "not a finite amount")

    currency = text("currency")
    monetary = etype_s.isin({t.value for t in MONETARY_TYPES}).to_numpy()
    cur_ok = currency.isin(iso4217.CURRENCIES).to_numpy()
    flag(monetary & ~cur_ok, "currency", currency, "must be an upper-case ISO 4217 code")
    flag(~monetary & currency.notna().to_numpy(), "currency", currency, "carries no currency")

    subject = text("subject")
    needs_subject = etype_s.isin({t.value for t in SUBJECT_TYPES}).to_numpy()
    no_subject = subject.isna().to_numpy() | (subject.astype(str).str.strip() == "").to_numpy()
    flag(needs_subject & no_subject, "subject", subject, "required for this event type")

    subscription = etype_s.isin({t.value for t in SUBSCRIPTION_TYPES}).to_numpy()
    mrr: dict[str, np.ndarray] = {}
    for col in ("mrr_before", "mrr_after"):
        raw = frame[col] if col in frame else pd.Series(np.nan, index=index)
        m = pd.to_numeric(raw, errors="coerce").astype("float64").to_numpy()
        mrr[col] = m
        flag(subscription & ~(np.isfinite(m) & (m >= 0)), col, raw, "required, >= 0")
        flag(~subscription & ~np.isnan(m), col, raw, "only subscription events carry MRR")
    delta = np.round(mrr["mrr_after"] - mrr["mrr_before"], 6)
    flag(
        subscription & (np.abs(np.round(v, 6) - delta) > 5e-7),
        "value",
        value,
        "must equal mrr_after - mrr_before",
    )
    paused = (etype_s == EventType.SUBSCRIPTION_PAUSED.value).to_numpy()
    flag(paused & (np.round(mrr["mrr_after"], 6) != 0), "mrr_after", frame.get("mrr_after", value),
         "a paused subscription has MRR 0")  # fmt: skip
    resumed = (etype_s == EventType.SUBSCRIPTION_RESUMED.value).to_numpy()
    flag(resumed & (np.round(mrr["mrr_before"], 6) != 0), "mrr_before",
         frame.get("mrr_before", value), "a resume starts from MRR 0")  # fmt: skip
    unit = etype_s.isin({t.value for t in UNIT_TYPES}).to_numpy()
    flag(unit & (v != 1), "value", value, "counts 1")
    positive = etype_s.isin({EventType.PAYMENT.value, EventType.REFUND.value}).to_numpy()
    flag(positive & ~(v > 0), "value", value, "must be a positive amount")
    nonneg = etype_s.isin({EventType.PAYMENT_FAILED.value, EventType.SESSION.value}).to_numpy()
    flag(nonneg & (v < 0), "value", value, "cannot be negative")

    source, source_id = text("source"), text("source_id")
    flag(source.isna().to_numpy(), "source", source, "must be a non-empty string")
    flag(source_id.isna().to_numpy(), "source_id", source_id, "must be a non-empty string")

    plan, channel = text("plan"), text("channel")
    metadata = text("metadata")
    kpi = pd.Series(None, index=index, dtype=object)
    has_meta = metadata.notna().to_numpy()
    if has_meta.any():
        # Parse only the rows that carry metadata (most bulk events carry none).
        rows = np.flatnonzero(has_meta)
        meta_objs = [_parse_meta(m) for m in metadata.iloc[rows]]
        broken = np.zeros(n, dtype=bool)
        broken[rows] = [m is None for m in meta_objs]
        flag(broken, "metadata", metadata, "must be a JSON object")

        def lifted(key: str, given: pd.Series) -> pd.Series:
            out = given.astype(object).copy()
            out.iloc[rows] = [_get(m, key) for m in meta_objs]
            return out.where(out.notna(), given)

        if "plan" not in frame:
            plan = lifted("plan", plan)
        if "channel" not in frame:
            channel = lifted("channel", channel)
        kpi = lifted("kpi", kpi)
    for required_type, keys in REQUIRED_METADATA.items():
        is_type = (etype_s == required_type.value).to_numpy()
        for key in keys:
            present = (channel if key == "channel" else kpi).notna().to_numpy()
            flag(is_type & ~present, f"metadata.{key}", metadata, "required for this type")

    kind = text("kind") if "kind" in frame else etype
    kind = kind.where(kind.notna(), etype)
    good = ~bad
    out = pd.DataFrame(
        {
            "product": product,
            "type": etype,
            "ts": ts,
            "value": value.round(6),
            "currency": currency,
            "subject": subject,
            "mrr_before": np.round(mrr["mrr_before"], 6),
            "mrr_after": np.round(mrr["mrr_after"], 6),
            "plan": plan,
            "channel": channel,
            "metadata": metadata,
            "source": source,
            "source_id": source_id,
            "kind": kind,
        },
        index=index,
    )[good]
    # Always derived, never trusted from the input: a key that disagrees with the
    # source's ids would silently merge or split events. The ledger derives keys itself
    # in SQL (same formula, vectorised) and asks for none here.
    if derive_keys:
        out["idempotency_key"] = [
            idempotency_key(s, i, k)
            for s, i, k in zip(out["source"], out["source_id"], out["kind"], strict=True)
        ]
    return _typed(out), problems


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
