"""Segment series (issue #14): hand-computed cases.

Every expected number below is worked out by hand from the events of the case (written
next to it), never read back from the output under test.
"""

from __future__ import annotations

import dataclasses
import json
from datetime import date
from decimal import Decimal
from pathlib import Path

import pandas as pd
import pytest
from metric_cases import ev, frame, sub

from growthwatch.cli import main
from growthwatch.metrics.engine import compute
from growthwatch.metrics.fx import FxTable
from growthwatch.metrics.segments import segment_frames
from growthwatch.metrics.settings import MetricsSettings, SegmentSettings
from growthwatch.stores.ledger import Ledger

S = MetricsSettings()
UNTIL = pd.Timestamp("2026-01-21", tz="UTC")


def rows(out: dict[str, pd.DataFrame], name: str, dim: str, day: str,
         product: str = "p1") -> pd.DataFrame:  # fmt: skip
    frame_ = out[name]
    pick = (frame_["dimension"] == dim) & (frame_["product"] == product)
    pick &= frame_["time"] == pd.Timestamp(day, tz="UTC")
    return frame_[pick].set_index("segment")


def plan_change_events() -> pd.DataFrame:
    return frame(
        # c1: basic 100 on the 5th, the same subscription moves to pro at 150 on the 10th
        sub("2026-01-05 10:00", 0, 100, "c1", sid="s1", plan="basic", interval="month",
            country="DE"),
        # c2: pro 50 on the 5th, cancelled on the 20th
        sub("2026-01-05 11:00", 0, 50, "c2", sid="s2", plan="pro", interval="month",
            country="FR"),
        sub("2026-01-10 12:00", 100, 150, "c1", sid="s1", plan="pro", interval="month"),
        sub("2026-01-20 12:00", 50, 0, "c2", sid="s2", plan="pro", interval="month"),
    )  # fmt: skip


def test_a_plan_change_is_contraction_in_the_old_plan_and_expansion_in_the_new() -> None:
    out = segment_frames(plan_change_events(), S, UNTIL)
    day = rows(out, "mrr_segments_daily", "plan", "2026-01-10")
    # basic loses c1's 100 (all of it moved), pro gains 150 (100 moved in, 50 real growth)
    assert day.loc["basic", "contraction"] == 100 and day.loc["basic", "moved_out"] == 100
    assert day.loc["basic", "expansion"] == 0 and day.loc["basic", "mrr_end"] == 0
    assert day.loc["pro", "expansion"] == 150 and day.loc["pro", "moved_in"] == 100
    assert day.loc["pro", "contraction"] == 0 and day.loc["pro", "mrr_end"] == 200  # 150 + c2's 50
    # the customer moved with the money: c1 and c2 both count in pro now
    customers = rows(out, "customers_segments_daily", "plan", "2026-01-10")
    assert customers.loc["pro", "customers_end"] == 2 and customers.loc["basic", "customers_end"] == 0
    # the product sees one expansion of 50 and no contraction, so net of the moves the
    # segments say the same
    product = compute(plan_change_events(), S, UNTIL)["mrr_daily"]
    p = product[(product["product"] == "p1") & (product["time"] == pd.Timestamp("2026-01-10", tz="UTC"))]
    assert (p["expansion"].item(), p["contraction"].item()) == (50, 0)
    assert day["expansion"].sum() - day["moved_in"].sum() == 50
    assert day["contraction"].sum() - day["moved_out"].sum() == 0
    # interval did not change: the same event is a plain expansion of 50 there
    interval = rows(out, "mrr_segments_daily", "interval", "2026-01-10")
    assert interval.loc["month", "expansion"] == 50 and interval.loc["month", "moved_in"] == 0
    # c2's churn on the 20th is pro's, and so is the count
    churn = rows(out, "customers_segments_daily", "plan", "2026-01-20")
    assert churn.loc["pro", "churned_customers"] == 1 and churn.loc["basic", "churned_customers"] == 0
    assert rows(out, "mrr_segments_daily", "plan", "2026-01-20").loc["pro", "churn"] == 50


def test_monthly_rates_are_each_segments_own() -> None:
    events = frame(
        # December: c1 and c2 on basic (100 each), c3 on pro (300)
        sub("2025-12-01", 0, 100, "c1", sid="s1", plan="basic"),
        sub("2025-12-01", 0, 100, "c2", sid="s2", plan="basic"),
        sub("2025-12-01", 0, 300, "c3", sid="s3", plan="pro"),
        # January: c1 churns
        sub("2026-01-15", 100, 0, "c1", sid="s1", plan="basic"),
    )
    out = segment_frames(events, S, UNTIL)
    jan = rows(out, "churn_segments_monthly", "plan", "2026-01-01")
    # basic: 2 at the start, 1 churned: 50 %; MRR 200 -> 100: gross MRR churn 50 %, ARPA 100
    assert jan.loc["basic", "customers_start"] == 2 and jan.loc["basic", "churned"] == 1
    assert jan.loc["basic", "customer_churn_rate"] == pytest.approx(0.5)
    assert jan.loc["basic", "gross_mrr_churn_rate"] == pytest.approx(0.5)
    assert jan.loc["basic", "arpa"] == pytest.approx(100)
    # pro: nobody left: 0 %, NRR 100 %, ARPA 300
    assert jan.loc["pro", "customer_churn_rate"] == 0 and jan.loc["pro", "nrr"] == pytest.approx(1)
    assert jan.loc["pro", "arpa"] == pytest.approx(300)
    # the portfolio row of a segment is the products' sum, rates from those sums
    portfolio = rows(out, "churn_segments_monthly", "plan", "2026-01-01", product="all")
    assert portfolio.loc["basic", "customer_churn_rate"] == pytest.approx(0.5)


def test_more_values_than_max_values_fold_into_other_and_none_is_unknown() -> None:
    events = frame(
        # DE has two customers, FR and US one each, c5 never says where it is
        sub("2026-01-05", 0, 10, "c1", sid="a", country="DE"),
        sub("2026-01-05", 0, 20, "c2", sid="b", country="DE"),
        sub("2026-01-05", 0, 30, "c3", sid="c", country="FR"),
        sub("2026-01-05", 0, 40, "c4", sid="d", country="US"),
        sub("2026-01-05", 0, 50, "c5", sid="e"),
    )
    settings = dataclasses.replace(S, segments=SegmentSettings(("country",), max_values=1))
    out = segment_frames(events, settings, UNTIL)
    day = rows(out, "mrr_segments_daily", "country", "2026-01-05")
    assert sorted(day.index) == ["DE", "other", "unknown"]
    assert day.loc["DE", "mrr_end"] == 30  # 10 + 20
    assert day.loc["other", "mrr_end"] == 70  # FR 30 + US 40
    assert day.loc["unknown", "mrr_end"] == 50
    counts = rows(out, "customers_segments_daily", "country", "2026-01-05")
    assert (counts.loc["DE", "new_customers"], counts.loc["other", "new_customers"],
            counts.loc["unknown", "new_customers"]) == (2, 2, 1)  # fmt: skip
    # with room for every value nothing folds
    roomy = segment_frames(events, dataclasses.replace(S, segments=SegmentSettings(("country",))),
                           UNTIL)  # fmt: skip
    assert sorted(rows(roomy, "mrr_segments_daily", "country", "2026-01-05").index) == [
        "DE", "FR", "US", "unknown"]


def test_a_customers_country_and_channel_are_the_first_known_values() -> None:
    events = frame(
        ev("signup", "2026-01-01", "c1", channel="ads"),  # the signup says where c1 came from
        sub("2026-01-05", 0, 10, "c1", sid="a", country="DE"),
        sub("2026-01-08", 10, 20, "c1", sid="a", country="FR", channel="seo"),  # later: ignored
    )
    out = segment_frames(events, S, UNTIL)
    country = rows(out, "mrr_segments_daily", "country", "2026-01-08")
    assert list(country.index) == ["DE"] and country.loc["DE", "mrr_end"] == 20
    assert country.loc["DE", "expansion"] == 10 and country.loc["DE", "moved_in"] == 0
    channel = rows(out, "mrr_segments_daily", "channel", "2026-01-08")
    assert list(channel.index) == ["ads"]


def test_revenue_per_segment_adds_up_to_the_product_in_the_reporting_currency() -> None:
    fx = FxTable("USD", {"EUR": ((date(2026, 1, 1), Decimal("1.000001")),)})
    settings = dataclasses.replace(S, fx=fx, segments=SegmentSettings(("plan",)))
    events = frame(
        ev("payment", "2026-01-05 10:00", "c1", value="0.5", currency="EUR", plan="basic"),
        ev("payment", "2026-01-05 11:00", "c2", value="0.5", currency="EUR", plan="pro"),
        ev("refund", "2026-01-05 12:00", "c2", value="0.25", currency="EUR", plan="pro"),
    )
    out = segment_frames(events, settings, UNTIL)
    rev = out["revenue_segments_daily"]
    p1 = rev[(rev["product"] == "p1") & (rev["dimension"] == "plan")].set_index("segment")
    # native amounts are exact per segment
    assert (p1.loc["basic", "gross"], p1.loc["pro", "gross"], p1.loc["pro", "refunds"]) == (
        0.5, 0.5, 0.25)
    # the product's gross 1.0 EUR is 1.000001 USD; each half alone rounds to 0.500000, so
    # the remaining micro-unit goes to the larger (tie: first by name) segment, basic
    assert p1.loc["basic", "gross_rc"] == pytest.approx(0.500001, abs=1e-12)
    assert p1.loc["pro", "gross_rc"] == pytest.approx(0.5, abs=1e-12)
    assert p1.loc["pro", "refunds_rc"] == pytest.approx(0.25, abs=1e-12)  # 0.25000025 -> 0.25
    assert (p1.loc["basic", "payments"], p1.loc["pro", "refund_count"]) == (1, 1)
    portfolio = rev[(rev["product"] == "all") & (rev["dimension"] == "plan")].set_index("segment")
    assert portfolio.loc["basic", "currency"] == "USD"
    assert portfolio.loc["pro", "net"] == pytest.approx(0.25, abs=1e-12)


def test_no_dimensions_no_segment_series() -> None:
    settings = dataclasses.replace(S, segments=SegmentSettings(()))
    assert segment_frames(plan_change_events(), settings, UNTIL) == {}
    assert "mrr_segments_daily" not in compute(plan_change_events(), settings, UNTIL)


def test_config_sets_and_checks_the_segments(tmp_path: Path) -> None:
    from growthwatch.config import ConfigError, load_config

    path = tmp_path / "growthwatch.yaml"
    path.write_text("products:\n  - id: p1\nmetrics:\n  segments:\n"
                    "    dimensions: [plan, country, industry]\n    max_values: 5\n")  # fmt: skip
    s = MetricsSettings.from_config(load_config(path))
    assert s.segments == SegmentSettings(("plan", "country", "industry"), 5)
    default = tmp_path / "default.yaml"
    default.write_text("products:\n  - id: p1\n")
    assert MetricsSettings.from_config(load_config(default)).segments == SegmentSettings(
        ("plan", "interval", "country", "channel"), 50)
    for bad, where in (("    max_values: 0\n", "max_values"), ("    by: [plan]\n", "by"),
                       ("    dimensions: [Plan Name]\n", "dimensions")):  # fmt: skip
        path.write_text("products:\n  - id: p1\nmetrics:\n  segments:\n" + bad)
        with pytest.raises(ConfigError) as err:
            load_config(path)
        assert where in str(err.value) and "segments" in str(err.value)


def test_show_where_and_by_a_segment(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with Ledger(tmp_path / "ledger.duckdb") as ledger:
        ledger.append(list(_plan_change_list()))
    assert main(["metrics", "recompute", "--data-dir", str(tmp_path)]) == 0
    capsys.readouterr()
    assert main(["metrics", "show", "mrr", "--where", "plan=pro", "--from", "2026-01-09",
                 "--to", "2026-01-11", "--fields", "mrr,expansion,moved_in", "--data-dir",
                 str(tmp_path), "--format", "json"]) == 0  # fmt: skip
    got = json.loads(capsys.readouterr().out)
    assert [(r["mrr"], r["expansion"], r["moved_in"]) for r in got] == [(50, 0, 0), (200, 150, 100)]
    # churn per plan: pro lost c2 in January (a new customer of the month, so the rate's
    # start population is empty: undefined), 1 churned customer
    assert main(["metrics", "show", "churn", "--where", "plan=pro", "--fields",
                 "churned_customers,churn", "--data-dir", str(tmp_path), "--format", "json"]) == 0
    got = json.loads(capsys.readouterr().out)
    assert [(r["churned_customers"], r["churn"]) for r in got] == [(1, 50)]
    # --by: one group of rows per plan, basic first
    assert main(["metrics", "show", "mrr", "--by", "plan", "--from", "2026-01-10", "--to",
                 "2026-01-11", "--fields", "mrr", "--data-dir", str(tmp_path), "--format",
                 "csv"]) == 0  # fmt: skip
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[0].split(",")[:2] == ["time", "segment"]
    assert [line.split(",")[1:] for line in lines[1:]] == [["basic", "0.0"], ["pro", "200.0"]]
    # a dimension that is not configured: one line naming the configured ones
    assert main(["metrics", "show", "mrr", "--where", "industry=retail", "--data-dir",
                 str(tmp_path)]) == 2  # fmt: skip
    err = capsys.readouterr().err
    assert "industry" in err and "plan, interval, country, channel" in err
    assert main(["metrics", "show", "mrr", "--by", "industry", "--data-dir", str(tmp_path)]) == 2
    assert main(["metrics", "show", "product", "--by", "plan", "--data-dir", str(tmp_path)]) == 2
    assert "has no segment series" in capsys.readouterr().err


def _plan_change_list() -> list:  # type: ignore[type-arg]
    return [
        sub("2026-01-05 10:00", 0, 100, "c1", sid="s1", plan="basic", interval="month"),
        sub("2026-01-05 11:00", 0, 50, "c2", sid="s2", plan="pro", interval="month"),
        sub("2026-01-10 12:00", 100, 150, "c1", sid="s1", plan="pro", interval="month"),
        sub("2026-01-20 12:00", 50, 0, "c2", sid="s2", plan="pro", interval="month"),
    ]
