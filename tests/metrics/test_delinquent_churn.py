"""Voluntary vs delinquent churn: hand-computed cases.

Delinquent = the churn follows a failed payment of that customer that no payment followed,
or the churning event itself says the subscription ended unpaid (Stripe status ``unpaid``,
cancel reason ``payment_failed``). Everything else is voluntary; the two add up to churn.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from metric_cases import ev, frame, sub

from growthwatch.metrics.engine import compute
from growthwatch.metrics.mrr import compute_mrr, customer_movements
from growthwatch.metrics.settings import MetricsSettings

S = MetricsSettings()


def book() -> list:
    """Seven customers paying from January; in February:
    a 100: invoice fails on the 3rd, nothing paid since, cancelled on the 20th -> delinquent
    b  50: fails on the 2nd, the retry is paid on the 5th, cancels on the 21st -> voluntary
    c  30: cancels on the 22nd, never failed -> voluntary
    d  40: goes unpaid (status unpaid, MRR 0) on the 23rd, no failure in the ledger -> delinquent
    e  20: cancelled with cancel_reason payment_failed on the 24th -> delinquent
    f  10: cancels on the 25th; its invoice fails on the 26th (after) -> voluntary
    g  70: fails on the 2nd in product p2 only, cancels in p1 on the 27th -> voluntary
    h  60: fails on the 10th, downgrades to 25 on the 12th: contraction, not churn."""
    mrr = {"a": 100, "b": 50, "c": 30, "d": 40, "e": 20, "f": 10, "g": 70, "h": 60}
    events = [sub("2026-01-05", 0, v, c, sid=f"s_{c}") for c, v in mrr.items()]
    events += [
        ev("payment_failed", "2026-02-03", "a", value="100"),
        sub("2026-02-20", 100, 0, "a", sid="s_a"),
        ev("payment_failed", "2026-02-02", "b", value="50"),
        ev("payment", "2026-02-05", "b", value="50"),
        sub("2026-02-21", 50, 0, "b", sid="s_b"),
        sub("2026-02-22", 30, 0, "c", sid="s_c"),
        sub("2026-02-23", 40, 0, "d", sid="s_d", type_="subscription_changed", status="unpaid"),
        sub("2026-02-24", 20, 0, "e", sid="s_e", cancel_reason="payment_failed",
            cancel_feedback="too_expensive"),
        sub("2026-02-25", 10, 0, "f", sid="s_f", cancel_reason="cancellation_requested"),
        ev("payment_failed", "2026-02-26", "f", value="10"),
        ev("payment_failed", "2026-02-02", "g", value="70", product="p2"),
        sub("2026-02-27", 70, 0, "g", sid="s_g"),
        ev("payment_failed", "2026-02-10", "h", value="60"),
        sub("2026-02-12", 60, 25, "h", sid="s_h"),
    ]  # fmt: skip
    return events


@pytest.fixture(scope="module")
def frames() -> dict[str, pd.DataFrame]:
    return compute(frame(*book()), S)


def row(frames: dict[str, pd.DataFrame], name: str, when: str, product: str = "p1") -> pd.Series:
    out = frames[name]
    hit = out[(out["product"] == product) & (out["time"] == pd.Timestamp(when, tz="UTC"))]
    assert len(hit) == 1, (name, when, product)
    return hit.iloc[0]


def test_month_splits_churn_into_voluntary_and_delinquent(frames: dict[str, pd.DataFrame]) -> None:
    feb = row(frames, "churn_monthly", "2026-02-01")
    assert feb["churn"] == 100 + 50 + 30 + 40 + 20 + 10 + 70
    assert feb["churn_delinquent"] == 100 + 40 + 20  # a, d, e
    assert feb["churn_voluntary"] == 50 + 30 + 10 + 70  # b, c, f, g
    assert feb["churned_customers"] == 7 and feb["churned_delinquent"] == 3
    assert feb["contraction"] == 35  # h: a failure before a downgrade is not churn
    jan = row(frames, "churn_monthly", "2026-01-01")
    assert (jan["churn_delinquent"], jan["churn_voluntary"], jan["churned_delinquent"]) == (0, 0, 0)


def test_days_carry_the_split_and_the_portfolio_sums_it(frames: dict[str, pd.DataFrame]) -> None:
    expected = {"2026-02-20": (100, 0, 1), "2026-02-21": (0, 50, 0), "2026-02-23": (40, 0, 1),
                "2026-02-24": (20, 0, 1), "2026-02-25": (0, 10, 0), "2026-02-12": (0, 0, 0)}  # fmt: skip
    for day, (bad, fine, count) in expected.items():
        mrr = row(frames, "mrr_daily", day)
        assert (mrr["churn_delinquent"], mrr["churn_voluntary"]) == (bad, fine), day
        assert row(frames, "customers_daily", day)["churned_delinquent"] == count, day
    every = row(frames, "churn_monthly", "2026-02-01", "all")
    assert every["churn_delinquent"] == 160 and every["churned_delinquent"] == 3
    assert every["churn_voluntary"] + every["churn_delinquent"] == every["churn"]


def test_drilldown_names_the_cause() -> None:
    moves = customer_movements(frame(*book()), S)
    churn = moves[moves["kind"] == "churn"].set_index("customer")["cause"].to_dict()
    assert churn == {"a": "delinquent", "b": "voluntary", "c": "voluntary", "d": "delinquent",
                     "e": "delinquent", "f": "voluntary", "g": "voluntary"}  # fmt: skip
    assert set(moves.loc[moves["kind"] != "churn", "cause"]) == {""}


def test_a_late_failure_before_the_churn_changes_its_cause() -> None:
    """Only events up to the churn decide, so a failure that arrives late (dated before the
    churn) turns it delinquent on recompute, and a later payment clears it again."""
    base = [sub("2026-01-05", 0, 80, "x", sid="s"), sub("2026-03-10", 80, 0, "x", sid="s")]
    failed = [*base, ev("payment_failed", "2026-03-01", "x", value="80")]
    paid = [*failed, ev("payment", "2026-03-04", "x", value="80")]
    cause = [compute_mrr(frame(*e), S).daily.set_index("time")["churn_delinquent"].sum()
             for e in (base, failed, paid)]  # fmt: skip
    assert cause == [0, 80_000_000, 0]  # micro-units


def test_incremental_update_relabels_the_churn_when_a_failure_arrives_late(
    tmp_path: Path,
) -> None:
    from growthwatch.metrics.engine import MetricsEngine
    from growthwatch.stores.ledger import Ledger
    from growthwatch.stores.series import SeriesStore

    store = SeriesStore(tmp_path / "series.duckdb")
    try:
        with Ledger(tmp_path / "ledger.duckdb") as ledger:
            engine = MetricsEngine(ledger, S)
            ledger.append([sub("2026-01-05", 0, 80, "x", sid="s"),
                           sub("2026-03-10", 80, 0, "x", sid="s")])  # fmt: skip
            engine.update([store])
            before = store.read("mrr_daily", tags={"product": "p1"})
            assert before["churn_delinquent"].sum() == 0 and before["churn_voluntary"].sum() == 80
            ledger.append([ev("payment_failed", "2026-03-01", "x", value="80")])  # late
            assert engine.update([store]).mode == "incremental"
            after = store.read("mrr_daily", tags={"product": "p1"})
            month = store.read("churn_monthly", tags={"product": "p1"})
    finally:
        store.close()
    day = after.set_index(after["time"].dt.strftime("%Y-%m-%d"))
    churn_day = day.loc["2026-03-10"]
    assert (churn_day["churn_delinquent"], churn_day["churn_voluntary"]) == (80, 0)
    march = month.set_index(month["time"].dt.strftime("%Y-%m")).loc["2026-03"]
    assert (march["churn_delinquent"], march["churned_delinquent"]) == (80, 1)
