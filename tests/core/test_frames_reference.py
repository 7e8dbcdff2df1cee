"""The pandas check_frame of 2026-12-01 (before the Arrow rewrite), kept as the reference
the vectorised ``growthwatch.frames.check_frame`` must agree with, row for row.

Copied unchanged from ``growthwatch/frames.py`` at commit 58dda23 (this project's own
code), apart from its name and imports.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from growthwatch import currency as iso4217
from growthwatch.events import (
    MONETARY_TYPES,
    PRODUCT_ID,
    REQUIRED_METADATA,
    SUBJECT_TYPES,
    SUBSCRIPTION_TYPES,
    UNIT_TYPES,
    EventType,
    idempotency_key,
)
from growthwatch.frames import (
    _MAX,
    REQUIRED_INPUT,
    FrameValidationError,
    RowProblem,
    _get,
    _parse_meta,
    _typed,
)


def check_frame_reference(
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


# -- the vectorised check against the reference ------------------------------------------

from datetime import UTC, datetime, timedelta  # noqa: E402
from decimal import Decimal  # noqa: E402

import pytest  # noqa: E402

from growthwatch.events import GrowthEvent  # noqa: E402
from growthwatch.frames import check_frame, check_table, events_to_frame  # noqa: E402

T0 = datetime(2026, 3, 1, tzinfo=UTC)


def _valid_events(rng: np.random.Generator, n: int) -> list[GrowthEvent]:
    """Valid events of every type (the corruptions below break some of them)."""
    out: list[GrowthEvent] = []
    for i in range(n):
        t = T0 + timedelta(seconds=int(rng.integers(0, 86_400)), microseconds=int(rng.integers(0, 10**6)))
        kind = i % 8
        common = {"product": f"p{i % 3}", "timestamp": t, "source": "demo", "source_id": f"id{i}"}
        if kind == 0:
            e = GrowthEvent(type=EventType.PAYMENT, value=Decimal("12.50"), currency="EUR",
                            subject=f"c{i}", **common)  # type: ignore[arg-type]
        elif kind == 1:
            e = GrowthEvent(type=EventType.SUBSCRIPTION_STARTED, value=Decimal("30"),
                            mrr_before=Decimal(0), mrr_after=Decimal(30), currency="USD",
                            subject=f"c{i}", metadata={"plan": "pro"}, **common)  # type: ignore[arg-type]
        elif kind == 2:
            e = GrowthEvent(type=EventType.SESSION, value=Decimal(3),
                            metadata={"channel": "organic"}, **common)  # type: ignore[arg-type]
        elif kind == 3:
            e = GrowthEvent(type=EventType.KPI, value=Decimal("1.25"),
                            metadata={"kpi": "nps"}, **common)  # type: ignore[arg-type]
        elif kind == 4:
            e = GrowthEvent(type=EventType.SUBSCRIPTION_PAUSED, value=Decimal(-30),
                            mrr_before=Decimal(30), mrr_after=Decimal(0), currency="GBP",
                            subject=f"c{i}", **common)  # type: ignore[arg-type]
        elif kind == 5:
            e = GrowthEvent(type=EventType.SUBSCRIPTION_RESUMED, value=Decimal(30),
                            mrr_before=Decimal(0), mrr_after=Decimal(30), currency="JPY",
                            subject=f"c{i}", **common)  # type: ignore[arg-type]
        elif kind == 6:
            e = GrowthEvent(type=EventType.PAYMENT_FAILED, value=Decimal(0), currency="EUR",
                            subject=f"c{i}", **common)  # type: ignore[arg-type]
        else:
            e = GrowthEvent(type=EventType.SIGNUP, value=Decimal(1), subject=f"u{i}",
                            **common)  # type: ignore[arg-type]
        out.append(e)
    return out


# (column, bad value): each breaks one rule of check_frame for some row kinds
CORRUPTIONS: list[tuple[str, object]] = [
    ("product", "Bad Product"), ("product", None), ("product", 7), ("product", "a\n"),
    ("product", "-x"), ("type", "purchase"), ("type", None), ("value", np.nan),
    ("value", np.inf), ("value", 2e12), ("value", -5.0), ("value", 2.0), ("value", 0.0),
    ("currency", "eur"), ("currency", None), ("currency", "XXX1"), ("subject", "   "),
    ("subject", ""), ("subject", None), ("subject", "\u3000"), ("subject", " x "),
    ("mrr_before", -1.0), ("mrr_before", np.nan), ("mrr_after", 5.0), ("mrr_after", np.inf),
    ("source", None), ("source_id", np.nan), ("metadata", "{not json"),
    ("metadata", "[1, 2]"), ("metadata", '{"kpi": null}'), ("metadata", '{"channel": "x"}'),
    ("channel", None), ("kind", None), ("kind", "custom"), ("ts", pd.NaT),
]  # fmt: skip


def _random_frame(seed: int, n: int = 400, *, arrow_strings: bool = False,
                  drop: tuple[str, ...] = ()) -> pd.DataFrame:  # fmt: skip
    rng = np.random.default_rng(seed)
    frame = events_to_frame(_valid_events(rng, n)).drop(columns=["idempotency_key"])
    frame.index = pd.Index(rng.permutation(n) * 10 + 3)  # labels, not positions
    frame = frame.astype({c: object for c in frame.columns if frame[c].dtype == "str"})
    for pos in rng.choice(n, size=n // 3, replace=False):
        for _ in range(int(rng.integers(1, 3))):
            col, bad = CORRUPTIONS[int(rng.integers(len(CORRUPTIONS)))]
            if col == "ts":
                frame["ts"] = frame["ts"].astype(object)
            frame.iat[int(pos), frame.columns.get_loc(col)] = bad  # type: ignore[index]
    if arrow_strings:
        frame = frame.astype({c: "str" for c in frame.columns if frame[c].dtype == object
                              and c != "ts" and c != "product"})  # fmt: skip
    return frame.drop(columns=list(drop))


def _same_problems(got: list[RowProblem], want: list[RowProblem]) -> None:
    assert [(p.row, p.field, p.reason) for p in got] == [(p.row, p.field, p.reason) for p in want]
    for g, w in zip(got, want, strict=True):
        same = g.value == w.value or (pd.isna(g.value) and pd.isna(w.value))
        assert same, (g, w)


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize(
    "variant", [{}, {"arrow_strings": True}, {"drop": ("plan", "channel")}, {"drop": ("kind",)}]
)
def test_vectorised_check_equals_the_reference(seed: int, variant: dict[str, object]) -> None:
    frame = _random_frame(seed, **variant)  # type: ignore[arg-type]
    good, problems = check_frame(frame)
    ref_good, ref_problems = check_frame_reference(frame)
    assert problems, "the random corruptions must leave some bad rows"
    assert len(good) > 0
    _same_problems(problems, ref_problems)
    pd.testing.assert_frame_equal(good, ref_good)


def test_naive_timestamps_in_an_object_column_agree() -> None:
    frame = _random_frame(11)
    frame["ts"] = frame["ts"].astype(object)
    frame.iat[0, frame.columns.get_loc("ts")] = datetime(2026, 3, 1, 12)  # naive
    good, problems = check_frame(frame)
    with np.errstate(invalid="ignore"):  # the reference subtracts NaN MRRs
        ref_good, ref_problems = check_frame_reference(frame)
    assert frame.index[0] in {p.row for p in problems}
    _same_problems(problems, ref_problems)
    pd.testing.assert_frame_equal(good, ref_good)


def test_check_table_holds_the_good_rows_of_check_frame() -> None:
    frame = _random_frame(3)
    table, problems = check_table(frame, derive_keys=False)
    good, _ = check_frame(frame, derive_keys=False)
    assert table.num_rows == len(good) == len(frame) - len(problems)
    assert table.column_names == list(good.columns)
    back = table.to_pandas()
    assert back["source_id"].tolist() == good["source_id"].tolist()
    assert back["value"].tolist() == good["value"].tolist()
    assert (back["ts"].to_numpy() == good["ts"].to_numpy()).all()


def test_empty_frame() -> None:
    frame = _random_frame(0).iloc[:0]
    good, problems = check_frame(frame)
    ref_good, _ = check_frame_reference(frame)
    assert problems == [] and good.empty
    pd.testing.assert_frame_equal(good, ref_good, check_index_type=False)
