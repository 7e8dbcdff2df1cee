"""The revenue-cohort parts of the subscription totals (``mrr_totals._cohort_parts``): the
small-frame way gives exactly what the grouped way gives (random portfolios: upgrades,
downgrades, cancellations, reactivations, two currencies, netting groups, spans of months in
UTC and Berlin), and a hand-built portfolio gives the sums counted by hand."""

from __future__ import annotations

import dataclasses
from datetime import timedelta
from typing import Any

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from metric_cases import frame, sub
from test_properties import SETTINGS, build_renewals, build_subs, renewal, sub_event

from growthwatch.metrics import mrr_totals
from growthwatch.metrics.mrr import MRR_TYPES, compute_mrr
from growthwatch.metrics.reads import read_events
from growthwatch.stores.ledger import Ledger

JAN = (2026 - 1970) * 12  # local month numbers
FEB, MAR, APR, MAY = JAN + 1, JAN + 2, JAN + 3, JAN + 4
M = 1_000_000  # micro-units


def as_dict(s: pd.Series) -> dict[tuple[Any, ...], int]:
    return {tuple(k): int(v) for k, v in s.items()}


def hand_built() -> pd.DataFrame:
    """c1 joins in January, upgrades in February, cancels at 00:30 on 1 April in Berlin
    (22:30 UTC on 31 March), reactivates in May; c2 joins at 00:30 on 1 February in Berlin
    (23:30 UTC on 31 January) and downgrades in March."""
    return frame(
        sub("2026-01-05 10:00", 0, 100, "c1"),
        sub("2026-02-10 10:00", 100, 150, "c1"),
        sub("2026-03-31 22:30", 150, 0, "c1"),
        sub("2026-05-03 10:00", 0, 80, "c1"),
        sub("2026-01-31 23:30", 0, 50, "c2"),
        sub("2026-03-15 10:00", 50, 20, "c2"),
    )


@pytest.mark.parametrize("way", [mrr_totals._cohort_small, mrr_totals._cohort_grouped])
def test_hand_built_cohorts_in_berlin(way: Any) -> None:
    tz = "Europe/Berlin"
    s = dataclasses.replace(SETTINGS, timezone=tz)
    result = compute_mrr(hand_built(), s, pd.Timestamp("2026-06-01", tz="UTC"))
    size, mrr, paying = way(result, tz)
    assert as_dict(size) == {("p1", JAN): 1, ("p1", FEB): 1}
    assert as_dict(mrr) == {
        ("p1", JAN, JAN): 100 * M,
        ("p1", JAN, FEB): 50 * M,
        ("p1", JAN, APR): -150 * M,
        ("p1", JAN, MAY): 80 * M,
        ("p1", FEB, FEB): 50 * M,
        ("p1", FEB, MAR): -30 * M,
    }
    assert as_dict(paying) == {
        ("p1", JAN, JAN): 1,
        ("p1", JAN, APR): -1,
        ("p1", JAN, MAY): 1,
        ("p1", FEB, FEB): 1,
    }


def test_parts_choose_the_small_way_for_few_rows() -> None:
    result = compute_mrr(hand_built(), SETTINGS, pd.Timestamp("2026-06-01", tz="UTC"))
    assert mrr_totals._cohort_small(result, "UTC") is not None
    for got, want in zip(mrr_totals._cohort_parts(result, "UTC"),
                         mrr_totals._cohort_grouped(result, "UTC"), strict=True):  # fmt: skip
        pd.testing.assert_series_equal(got, want)


def _events(raw: list[Any]) -> pd.DataFrame:
    with Ledger() as ledger:
        ledger.append(raw)
        return read_events(ledger, MRR_TYPES)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(sub_event, min_size=1, max_size=30),
    st.lists(renewal, max_size=6),
    st.sampled_from([1, 9]),
    st.sampled_from(["UTC", "Europe/Berlin"]),
)
def test_small_way_is_the_grouped_way(
    subs: list[tuple[Any, ...]], renewals: list[tuple[Any, ...]], stretch: int, tz: str
) -> None:
    """``stretch`` spreads the two weeks of events over four months (cohorts and months
    apart); Berlin's events are moved across the March clock change."""
    subs = [(*e[:3], e[3] * stretch, *e[4:]) for e in subs]
    s = dataclasses.replace(SETTINGS, timezone=tz)
    raw = build_subs(subs) + build_renewals(renewals, subs)
    if tz != "UTC":
        raw = [dataclasses.replace(e, timestamp=e.timestamp + timedelta(days=80)) for e in raw]
    until = pd.Timestamp(max(e.timestamp for e in raw) + timedelta(days=1))
    result = compute_mrr(_events(raw), s, until)
    if not (result.movements["kind"] == "new").any():
        return
    small = mrr_totals._cohort_small(result, tz)
    assert small is not None
    for got, want in zip(small, mrr_totals._cohort_grouped(result, tz), strict=True):
        pd.testing.assert_series_equal(got, want)
