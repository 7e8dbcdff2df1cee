"""Which segments drove an anomaly, and the one sentence that says so.

For event-backed counts (cancellations, failed payments, signups) the events of the
judged window are compared, segment by segment, with what the baseline's mix predicts:
``excess(segment) = observed(segment) - expected_total x baseline_share(segment)``. A
segment is a value of one dimension (plan, country, channel, cancellation reason,
payment failure reason, ... from the event columns and metadata) or a pair of them; the
most specific segment that carries at least half of the excess is reported, e.g. "72 % of
the excess is plan=pro with reason=payment_failed".
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from itertools import combinations
from typing import Any

import pandas as pd

#: ``cancel_reason``/``cancel_feedback`` are the Stripe mapping's keys for
#: ``cancellation_details.reason``/``feedback`` (exporters/stripe_mapping.py); ``reason``
#: is what other sources (and the demo generator) call it
DEFAULT_DIMENSIONS: tuple[str, ...] = ("plan", "country", "channel", "reason", "cancel_reason",
                                       "cancel_feedback", "interval")  # fmt: skip


@dataclass(frozen=True)
class Driver:
    segment: tuple[tuple[str, str], ...]
    observed: float
    expected: float
    share: float  # of the total excess

    @property
    def text(self) -> str:
        return " with ".join(f"{k}={v}" for k, v in self.segment)


def segment_frame(events: pd.DataFrame, dimensions: tuple[str, ...]) -> pd.DataFrame:
    """One row per event, one column per dimension (event columns, then metadata keys)."""
    out = pd.DataFrame(index=range(len(events)))
    meta: list[dict[str, Any]] = []
    if "metadata" in events and len(events):
        for text in events["metadata"]:
            try:
                value = json.loads(text) if isinstance(text, str) and text else {}
            except ValueError:
                value = {}
            meta.append(value if isinstance(value, dict) else {})
    for dim in dimensions:
        if dim in events and dim != "metadata":
            col = events[dim].astype("object").to_numpy()
        else:
            col = [m.get(dim) for m in meta] if meta else [None] * len(events)
        out[dim] = [None if v is None or (isinstance(v, float) and pd.isna(v)) else str(v)
                    for v in col]  # fmt: skip
    return out


def drivers(
    window: pd.DataFrame,
    baseline: pd.DataFrame,
    expected_total: float,
    dimensions: tuple[str, ...] = DEFAULT_DIMENSIONS,
    min_share: float = 0.5,
) -> list[Driver]:
    """Segments by share of the excess, best first (empty when there is no excess)."""
    return segment_drivers(segment_frame(window, dimensions), segment_frame(baseline, dimensions),
                           expected_total, dimensions, min_share)  # fmt: skip


def segment_drivers(
    now: pd.DataFrame, base: pd.DataFrame, expected_total: float,
    dimensions: tuple[str, ...], min_share: float = 0.5,
) -> list[Driver]:
    """``drivers`` on frames already split into dimensions (``segment_frame``)."""
    excess_total = len(now) - expected_total
    if excess_total <= 0 or len(now) == 0:
        return []
    dims = [d for d in dimensions if now[d].notna().any()]
    found: list[Driver] = []
    for size in (1, 2):
        for combo in combinations(dims, size):
            observed = now.groupby(list(combo), dropna=True).size()
            expected_share = (
                base.groupby(list(combo), dropna=True).size() / max(len(base), 1)
                if len(base) else pd.Series(dtype=float)
            )  # fmt: skip
            for key, obs in observed.items():
                values = key if isinstance(key, tuple) else (key,)
                share_base = float(expected_share.get(key, 0.0))
                exp = expected_total * share_base
                share = (obs - exp) / excess_total
                if share > 0:
                    segment = tuple(zip(combo, (str(v) for v in values), strict=True))
                    found.append(Driver(segment, float(obs), exp, min(float(share), 1.0)))
    strong = [d for d in found if d.share >= min_share]
    if strong:
        return sorted(strong, key=lambda d: (-len(d.segment), -d.share, d.text))
    return sorted(found, key=lambda d: (-d.share, len(d.segment), d.text))


def sentence(
    label: str, observed: float, expected: float, lower: float, upper: float,
    by: str | None = None, top: Driver | None = None,
) -> str:
    """"cancellations 41 vs 8 expected (3-14) by 14:00; 72 % of the excess is plan=pro"."""
    text = f"{label} {_num(observed)} vs {_num(expected)} expected ({_num(lower)}-{_num(upper)})"
    if by:
        text += f" {by}"
    if top is not None:
        text += f"; {round(100 * top.share)} % of the excess is {top.text}"
    return text


def _num(value: float) -> str:
    if value != value:  # NaN
        return "?"
    if abs(value) >= 100 or float(value).is_integer():
        return f"{value:,.0f}"
    return f"{value:,.1f}" if abs(value) >= 10 else f"{value:.2g}"
