"""The per-period count of customers paying at the start who churned in it
(``customers._churned_from_start``), both of its ways (the small-frame one and the grouped
one), against a plain-Python reference and each other: hand-built cases (DST days, moves
either side of local midnight, reactivations, products sharing customer ids) and random
movement frames."""

from __future__ import annotations

from collections import defaultdict
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from growthwatch.metrics._frame import TIME_DTYPE
from growthwatch.metrics.customers import (
    SMALL_MOVEMENTS,
    _churned_from_start,
    _churned_grouped,
    _churned_small,
)

WAYS = [_churned_from_start, _churned_small, _churned_grouped]


def _period_start(at: pd.Timestamp, freq: str, tz: str) -> pd.Timestamp:
    """The local period start of ``at``, by calendar arithmetic on the wall clock."""
    local = at.tz_convert(ZoneInfo(tz)).to_pydatetime()
    if freq == "D":
        local = local.replace(hour=0, minute=0, second=0, microsecond=0)
    elif freq == "MS":
        local = local.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    else:
        local = local.replace(month=1, day=1, hour=0, minute=0, second=0, microsecond=0)
    naive = pd.Timestamp(local.replace(tzinfo=None))
    return naive.tz_localize(tz).tz_convert("UTC")


def reference(moves: pd.DataFrame, freq: str, tz: str) -> dict[tuple[str, pd.Timestamp], int]:
    """Per (product, period): customers whose first movement of the period starts from
    paying and who have a churn movement in it (rows in frame order)."""
    first: dict[tuple[str, pd.Timestamp, str], bool] = {}
    churned: dict[tuple[str, pd.Timestamp, str], bool] = defaultdict(bool)
    for row in moves.itertuples(index=False):
        key = (row.product, _period_start(row.time, freq, tz), row.customer)
        first.setdefault(key, bool(row.paid_before))
        churned[key] |= row.kind == "churn"
    out: dict[tuple[str, pd.Timestamp], int] = defaultdict(int)
    for key, paying in first.items():
        if paying and churned[key]:
            out[(key[0], key[1])] += 1
    return dict(out)


def as_dict(got: pd.Series) -> dict[tuple[str, pd.Timestamp], int]:
    assert got.dtype == "int64"
    assert list(got.index.names) == ["product", "period"] or got.empty
    assert got.index.is_monotonic_increasing  # sorted by product, then period
    return {(str(p), pd.Timestamp(t).tz_convert("UTC")): int(n) for (p, t), n in got.items()}


def moves(rows: list[tuple[str, str, str, str, bool]]) -> pd.DataFrame:
    """Movements (time UTC, product, customer, kind, paid_before) in time order."""
    frame = pd.DataFrame(rows, columns=["time", "product", "customer", "kind", "paid_before"])
    frame["time"] = pd.to_datetime(frame["time"], utc=True).astype(TIME_DTYPE)
    frame["customer"] = frame["customer"].astype(object)
    frame["product"] = frame["product"].astype(object)
    return frame.sort_values("time", kind="stable").reset_index(drop=True)


CASES = moves(
    [
        # Berlin: 2026-03-29 01:00 UTC is the spring-forward; 23:30 UTC on the 28th is the 29th locally
        ("2026-03-28T22:30:00", "a", "c1", "contraction", True),
        ("2026-03-28T23:30:00", "a", "c1", "churn", True),
        ("2026-03-28T23:10:00", "a", "c2", "new", False),  # joins and churns the same day: no
        ("2026-03-28T23:50:00", "a", "c2", "churn", True),
        ("2026-03-29T05:00:00", "a", "c3", "churn", True),
        ("2026-03-29T06:00:00", "a", "c3", "reactivation", False),
        ("2026-03-29T07:00:00", "a", "c3", "churn", True),  # counted once
        ("2026-03-29T05:00:00", "b", "c3", "churn", True),  # same id, other product
        ("2026-10-25T00:30:00", "b", "c4", "expansion", True),  # fall-back day, 25 hours
        ("2026-10-25T22:30:00", "b", "c4", "churn", True),
        ("2026-12-31T23:30:00", "b", "c5", "churn", True),  # the new year locally
        ("2026-12-31T22:30:00", "b", "c6", "churn", True),
    ]
)


@pytest.mark.parametrize("way", WAYS)
@pytest.mark.parametrize("tz", ["UTC", "Europe/Berlin", "America/New_York"])
@pytest.mark.parametrize("freq", ["D", "MS", "YS"])
def test_hand_built_cases_match_the_reference(way: Any, freq: str, tz: str) -> None:
    assert as_dict(way(CASES, freq, tz)) == reference(CASES, freq, tz)


@pytest.mark.parametrize("way", WAYS)
def test_hand_built_days_in_berlin(way: Any) -> None:
    """Counted by hand from the local wall clock (CET +1 before the 29 March switch, CEST +2
    after it and until 25 October 01:00 UTC)."""
    got = as_dict(way(CASES, "D", "Europe/Berlin"))

    def day(s: str) -> pd.Timestamp:
        return pd.Timestamp(s, tz="Europe/Berlin").tz_convert("UTC")

    assert got == {
        ("a", day("2026-03-29")): 2,  # c1 (its 28th has no churn), c3; c2 joined that day
        ("b", day("2026-03-29")): 1,  # c3 of the other product
        ("b", day("2026-10-25")): 1,  # c4, both moves on the 25-hour day
        ("b", day("2026-12-31")): 1,  # c6 at 23:30 local
        ("b", day("2027-01-01")): 1,  # c5 at 00:30 local
    }


def test_nothing_churned_is_empty() -> None:
    none = CASES[CASES["kind"] != "churn"].reset_index(drop=True)
    assert _churned_from_start(none, "MS", "UTC").empty
    assert _churned_from_start(CASES.iloc[:0], "MS", "UTC").empty


@st.composite
def random_moves(draw: st.DrawFn) -> pd.DataFrame:
    n = draw(st.integers(1, 60))
    base = pd.Timestamp("2025-12-30T20:00:00", tz="UTC")
    rows = [
        (
            str(base + pd.Timedelta(minutes=draw(st.integers(0, 60 * 24 * 120)))),
            draw(st.sampled_from(["p1", "p2", "p3"])),
            draw(st.sampled_from(["c1", "c2", "c3", "c4"])),
            draw(st.sampled_from(["new", "churn", "expansion", "contraction", "reactivation"])),
            draw(st.booleans()),
        )
        for _ in range(n)
    ]
    return moves(rows)


@settings(max_examples=80, deadline=None)
@given(random_moves(), st.sampled_from(["D", "MS", "YS"]),
       st.sampled_from(["UTC", "Europe/Berlin", "Australia/Sydney"]))  # fmt: skip
def test_random_movements_match_the_reference(frame: pd.DataFrame, freq: str, tz: str) -> None:
    small, grouped = _churned_small(frame, freq, tz), _churned_grouped(frame, freq, tz)
    assert as_dict(small) == reference(frame, freq, tz)
    pd.testing.assert_series_equal(small, grouped, check_index_type=False)
    assert np.all(small.to_numpy() > 0)  # zero counts are not rows


@pytest.mark.parametrize("freq", ["D", "MS", "YS"])
def test_the_ways_agree_above_the_size_switch(freq: str) -> None:
    rng = np.random.default_rng(7)
    n = SMALL_MOVEMENTS + 500
    start = pd.Timestamp("2025-01-01", tz="UTC")
    at = start + pd.to_timedelta(np.sort(rng.integers(0, 86_400 * 500, n)), unit="s")
    frame = moves([
        (str(t), f"p{p}", f"c{c}", k, bool(b))
        for t, p, c, k, b in zip(at, rng.integers(0, 3, n), rng.integers(0, 400, n),
                                 rng.choice(["new", "churn", "expansion"], n),
                                 rng.random(n) < 0.6, strict=True)
    ])  # fmt: skip
    got = _churned_from_start(frame, freq, "Europe/Berlin")
    small = _churned_small(frame, freq, "Europe/Berlin")
    pd.testing.assert_series_equal(got, small, check_index_type=False)
    assert int(got.sum()) > 100
