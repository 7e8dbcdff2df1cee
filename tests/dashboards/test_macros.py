"""Grafana's macro expansion as reproduced by dashboards.macros (expected texts by hand)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from dashboards.macros import auto_interval_ms, expand, interval_text

START = datetime(2026, 1, 1, tzinfo=UTC)
END = datetime(2026, 1, 2, tzinfo=UTC)


def test_time_filter_interval_and_variables() -> None:
    q = ("SELECT sum(\"x\") FROM \"m\" WHERE \"product\" = '$product' AND \"segment\" =~ /^$segment$/"
         " AND $timeFilter GROUP BY time($__interval) LIMIT $__interval_ms")  # fmt: skip
    sent = expand(q, variables={"product": "acme", "segment": ["plan=pro", "a.b"]}, start=START,
                  end=END, interval_ms=3_600_000)  # fmt: skip
    assert sent == (
        "SELECT sum(\"x\") FROM \"m\" WHERE \"product\" = 'acme' AND \"segment\" =~ "
        "/^(plan=pro|a\\.b)$/ AND time >= 1767225600000ms and time <= 1767312000000ms "
        "GROUP BY time(1h) LIMIT 3600000"
    )
    assert expand("$interval ${product}", variables={"product": "p"}, start=START, end=END,
                  interval_ms=86_400_000) == "1d p"  # fmt: skip


def test_unknown_variable_is_an_error() -> None:
    with pytest.raises(KeyError, match="nope"):
        expand("WHERE x = '$nope'", variables={}, start=START, end=END, interval_ms=1000)


def test_auto_interval_rounds_like_grafana_and_respects_min_interval() -> None:
    two_years = START - timedelta(days=730)
    # 730 d / 60 points = 12.2 d -> rounded to 1 week; 1 day / 1000 points = 86.4 s -> 1 m
    assert interval_text(auto_interval_ms(two_years, START, max_data_points=60)) == "1w"
    assert interval_text(auto_interval_ms(START, END, max_data_points=1000)) == "1m"
    assert interval_text(auto_interval_ms(START, END, max_data_points=1000, min_interval="1d")) == "1d"
    assert interval_text(90_000) == "90s" and interval_text(250) == "250ms"
