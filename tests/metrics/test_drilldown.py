"""``growthwatch customers`` / ``growthwatch customer``: the customers behind a movement.

The drill-down reads the ledger; the series are what the demo pipeline wrote to the
embedded store. For every product and every day of a month, the customers listed must be
exactly the movements the series count, and their amounts must add up to the series' sums.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from metric_cases import ev, sub

from growthwatch.cli import main
from growthwatch.demo.generator import DemoSpec
from growthwatch.demo.pipeline import run_demo
from growthwatch.stores.ledger import Ledger
from growthwatch.stores.series import SeriesStore

MONTH = ("2026-09-01", "2026-10-01")  # the third of the demo's four months
SPEC = DemoSpec(products=3, months=4, events_per_day=400)


@pytest.fixture(scope="module")
def demo_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    folder = tmp_path_factory.mktemp("drilldown-demo")
    run_demo(SPEC, folder)
    yield folder


def cli_json(capsys: pytest.CaptureFixture[str], *argv: str) -> Any:
    assert main([*argv, "--format", "json"]) == 0
    return json.loads(capsys.readouterr().out)


def series(folder: Path, measurement: str) -> pd.DataFrame:
    store = SeriesStore(folder / "series.duckdb")
    try:
        frame = store.read(measurement, start=pd.Timestamp(MONTH[0], tz="UTC").to_pydatetime(),
                           end=pd.Timestamp(MONTH[1], tz="UTC").to_pydatetime())  # fmt: skip
    finally:
        store.close()
    frame["day"] = frame["time"].dt.strftime("%Y-%m-%d")
    return frame.set_index(["product", "day"])


def test_every_day_of_a_month_lists_exactly_what_the_series_count(
    demo_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    customers = series(demo_dir, "customers_daily")
    mrr = series(demo_dir, "mrr_daily")
    products = sorted(p for p in customers.index.get_level_values("product").unique() if p != "all")
    assert len(products) == 3
    days = pd.date_range(MONTH[0], MONTH[1], inclusive="left").strftime("%Y-%m-%d")
    seen = {"churn": 0, "new": 0, "expansion": 0}
    for product in products:
        for kind, count_field in (("churn", "churned"), ("new", "new"), ("expansion", None)):
            rows = cli_json(capsys, "customers", "--product", product, "--movement", kind,
                            "--from", MONTH[0], "--to", MONTH[1], "--data-dir", str(demo_dir))  # fmt: skip
            listed = pd.DataFrame(rows, columns=["time", "customer", "amount"])
            listed["day"] = pd.to_datetime(listed["time"]).dt.strftime("%Y-%m-%d")
            seen[kind] += len(listed)
            assert set(listed["day"]) <= set(days)
            for day in days:
                mine = listed[listed["day"] == day]
                if count_field is not None:
                    want = customers.loc[(product, day), count_field]
                    assert len(mine) == want, (product, kind, day)
                expected = mrr.loc[(product, day), kind]
                assert abs(mine["amount"].sum() - expected) < 0.005, (product, kind, day)
                assert round(mine["amount"].sum(), 6) == pytest.approx(expected, abs=1e-6)
    # the check above means something: the month has movements of every kind
    assert all(n > 0 for n in seen.values()), seen


def test_one_day_range_and_month_shorthand_select_by_reporting_day(
    demo_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    customers = series(demo_dir, "customers_daily")
    product = "beacon-analytics"
    month = cli_json(capsys, "customers", "--product", product, "--movement", "new",
                     "--from", "2026-09", "--to", "2026-09", "--data-dir", str(demo_dir))  # fmt: skip
    assert len(month) == customers.loc[product, "new"].sum()
    busiest = customers.loc[product, "new"].idxmax()
    nxt = (pd.Timestamp(busiest) + pd.Timedelta(days=1)).strftime("%Y-%m-%d")
    one = cli_json(capsys, "customers", "--product", product, "--movement", "new",
                   "--from", busiest, "--to", nxt, "--data-dir", str(demo_dir))  # fmt: skip
    assert len(one) == customers.loc[(product, busiest), "new"] > 0
    for row in one:
        assert row["time"].startswith(busiest)
        assert row["mrr_before_rc"] == 0 and row["mrr_after_rc"] == pytest.approx(row["amount"])
        assert row["currency"] == "EUR" and row["mrr_after"] > 0  # native: the product's EUR
        assert row["source_ids"] and row["subscriptions"]
    # the customer command shows the same movement on that customer's timeline
    first = one[0]
    timeline = cli_json(capsys, "customer", first["customer"], "--product", product,
                        "--data-dir", str(demo_dir))  # fmt: skip
    marked = [e for e in timeline if e["source_id"] == first["source_ids"][0]]
    assert marked and marked[0]["movement"] == "new"
    assert marked[0]["movement_amount"] == pytest.approx(first["amount"])


# -- a hand-made ledger ----------------------------------------------------------------------


@pytest.fixture
def hand_dir(tmp_path: Path) -> Path:
    """c1: basic 100 -> pro 180 (expansion 80). c2: 50, then in the same second a seat
    change to 70 and a cancellation (netted: churn 50, two events). c3: 40, paused.
    c4: new 30 in February."""
    with Ledger(tmp_path / "ledger.duckdb") as ledger:
        ledger.append([
            sub("2026-01-05", 0, 100, "c1", sid="s1", plan="basic", interval="month",
                source_id="in_c1_start"),
            sub("2026-01-06", 0, 50, "c2", sid="s2", plan="team", source_id="in_c2_start"),
            sub("2026-01-07", 0, 40, "c3", sid="s3", plan="basic", source_id="in_c3_start"),
            sub("2026-02-03 10:00", 100, 180, "c1", sid="s1", plan="pro", interval="month",
                source_id="in_c1_upgrade"),
            sub("2026-02-04 12:00", 50, 70, "c2", sid="s2", plan="team", source_id="in_c2_seats"),
            sub("2026-02-04 12:00", 70, 0, "c2", sid="s2", plan="team", source_id="in_c2_cancel"),
            ev("subscription_paused", "2026-02-05", "c3", before=40, after=0, sid="s3",
               source_id="in_c3_pause"),
            sub("2026-02-06", 0, 30, "c4", sid="s4", plan="basic", source_id="in_c4_start",
                country="DE"),
            ev("payment", "2026-02-06", "c4", value="30", sid="s4", source_id="ch_c4"),
        ])  # fmt: skip
    assert main(["metrics", "recompute", "--data-dir", str(tmp_path)]) == 0
    return tmp_path


def feb(capsys: pytest.CaptureFixture[str], folder: Path, kind: str) -> list[dict[str, Any]]:
    return cli_json(capsys, "customers", "--product", "p1", "--movement", kind, "--from",  # type: ignore[no-any-return]
                    "2026-02", "--to", "2026-02", "--data-dir", str(folder))  # fmt: skip


def test_plan_change_same_second_cancel_and_pause(
    hand_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    capsys.readouterr()
    (up,) = feb(capsys, hand_dir, "expansion")
    got = (up["customer"], up["amount"], up["mrr_before_rc"], up["mrr_after_rc"])
    assert got == ("c1", 80, 100, 180)
    assert (up["plan_before"], up["plan"], up["interval"]) == ("basic", "pro", "month")
    assert up["source_ids"] == ["in_c1_upgrade"]
    (gone,) = feb(capsys, hand_dir, "churn")
    # the seat change and the cancellation in one second are one churn of the 50 paid
    got = (gone["customer"], gone["amount"], gone["mrr_before"], gone["mrr_after"])
    assert got == ("c2", 50, 50, 0)
    assert sorted(gone["source_ids"]) == ["in_c2_cancel", "in_c2_seats"] and gone["events"] == 2
    (held,) = feb(capsys, hand_dir, "paused")
    assert (held["customer"], held["amount"], held["mrr_after_rc"]) == ("c3", 40, 0)
    (joined,) = feb(capsys, hand_dir, "new")
    assert (joined["customer"], joined["amount"], joined["country"]) == ("c4", 30, "DE")
    assert feb(capsys, hand_dir, "contraction") == [] and feb(capsys, hand_dir, "resumed") == []
    # and the series say the same
    shown = cli_json(capsys, "metrics", "show", "mrr", "--product", "p1", "--from", "2026-02",
                     "--to", "2026-02", "--fields", "expansion,churn,paused,new",
                     "--data-dir", str(hand_dir))  # fmt: skip
    sums = pd.DataFrame(shown)[["expansion", "churn", "paused", "new"]].sum()
    assert sums.to_dict() == {"expansion": 80, "churn": 50, "paused": 40, "new": 30}


def test_customer_timeline_marks_netted_events(
    hand_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    capsys.readouterr()
    rows = cli_json(capsys, "customer", "c2", "--product", "p1", "--data-dir", str(hand_dir))
    by_id = {r["source_id"]: r for r in rows}
    assert by_id["in_c2_start"]["movement"] == "new"
    assert by_id["in_c2_start"]["customer_mrr_rc"] == 50
    netted = [by_id["in_c2_seats"]["movement"], by_id["in_c2_cancel"]["movement"]]
    assert sorted(netted) == ["churn", "netted"]
    assert main(["customer", "c4", "--product", "p1", "--format", "csv",
                 "--data-dir", str(hand_dir)]) == 0  # fmt: skip
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("time,type,value") and len(lines) == 3  # start + payment
    assert main(["customer", "c4", "--product", "p1", "--data-dir", str(hand_dir)]) == 0
    assert "MRR now 30.00 USD" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["customers", "--product", "nope", "--movement", "churn"],
         "--product nope: no such product in the ledger (products: p1)"),
        (["customers", "--product", "p1", "--movement", "lost"],
         "--movement lost: unknown movement; choose one of new, expansion, contraction, churn, "
         "reactivation, paused, resumed"),
        (["customers", "--product", "p1", "--movement", "churn", "--from", "2026-13-01"],
         "--from: '2026-13-01' is not a day or a month"),
        (["customers", "--product", "p1", "--movement", "churn", "--from", "2026-02-01",
          "--to", "2026-01-01"], "--to 2026-01-01 is not after --from 2026-02-01"),
        (["customer", "zz", "--product", "p1"], "customer zz: no events in product p1"),
        (["customer", "c1", "--product", "p2"], "--product p2: no such product"),
    ],
)  # fmt: skip
def test_clear_one_line_errors(
    hand_dir: Path, capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    capsys.readouterr()
    assert main([*argv, "--data-dir", str(hand_dir)]) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1


def test_demo_dunning_churn_is_delinquent_and_the_series_split_matches(
    demo_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The demo generator cancels a subscription whose dunning ran out with its own label
    ``reason=payment_failed`` (and a customer's cancellation ``reason=voluntary``), which the
    metrics never read: an independent answer for which churn is delinquent."""
    with Ledger(demo_dir / "ledger.duckdb") as ledger:
        labels = ledger.read(types="subscription_cancelled")
    reason = dict(zip(labels["source_id"], labels["metadata"].map(
        lambda m: json.loads(m).get("reason")), strict=True))  # fmt: skip
    mrr = series(demo_dir, "mrr_daily")
    customers = series(demo_dir, "customers_daily")
    causes = {"delinquent": 0, "voluntary": 0}
    for product in ("acme-crm", "beacon-analytics", "kumo-invoicing"):
        rows = cli_json(capsys, "customers", "--product", product, "--movement", "churn",
                        "--from", MONTH[0], "--to", MONTH[1], "--data-dir", str(demo_dir))  # fmt: skip
        for r in rows:
            said = {reason[s] for s in r["source_ids"] if s in reason}
            want = "delinquent" if "payment_failed" in said else "voluntary"
            assert r["cause"] == want, r
            causes[r["cause"]] += 1
        listed = pd.DataFrame(rows)
        listed["day"] = listed["time"].str[:10]
        bad = listed[listed["cause"] == "delinquent"].groupby("day")["amount"].agg(["sum", "size"])
        month = mrr.loc[product]
        assert month["churn_delinquent"].sum() == pytest.approx(bad["sum"].sum(), abs=1e-6)
        for day, got in bad.iterrows():
            assert mrr.loc[(product, day), "churn_delinquent"] == pytest.approx(got["sum"])
            assert customers.loc[(product, day), "churned_delinquent"] == got["size"]
        split = (month["churn_voluntary"] + month["churn_delinquent"]).to_numpy()
        assert split == pytest.approx(month["churn"].to_numpy())
    assert causes["delinquent"] > 0 and causes["voluntary"] > 0, causes
