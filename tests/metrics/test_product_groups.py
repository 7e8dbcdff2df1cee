"""How a full build of the totals families (subscriptions, trials, segments) cuts the
ledger (``touched.product_groups``): products in groups of at most ``chunk_events``
events, and a bigger product in parts of its customers that together read each of its
events exactly once."""

from __future__ import annotations

from datetime import timedelta

import pandas as pd
from metric_cases import ev
from test_properties import START

from growthwatch.metrics.reads import read_events
from growthwatch.metrics.touched import Group, product_groups
from growthwatch.stores.ledger import Ledger


def test_small_products_share_groups_and_a_big_one_is_split_in_parts() -> None:
    counts = pd.Series({"a": 3, "b": 4, "c": 17, "d": 2, "e": 7})
    # a + b = 7 fit 8; c alone needs ceil(17 / 8) = 3 parts; d and e (9) do not fit one
    assert product_groups(counts, 8) == [
        Group(["a", "b"]), Group(["c"], (0, 3)), Group(["c"], (1, 3)), Group(["c"], (2, 3)),
        Group(["d"]), Group(["e"]),
    ]  # fmt: skip
    assert product_groups(counts, 100) == [Group(["a", "b", "c", "d", "e"])]


def test_the_parts_of_a_product_read_each_of_its_events_once() -> None:
    events = [ev("signup", START + timedelta(hours=i), f"u{i % 23}", product="p",
                 source_id=f"s{i}") for i in range(60)]  # fmt: skip
    events.append(ev("signup", START, "u1", product="q", source_id="other"))
    with Ledger() as ledger:
        ledger.append(events)
        whole = read_events(ledger, ["signup", "payment"], products=["p"])
        parts = [read_events(ledger, ["signup", "payment"], products=["p"], part=(i, 4))
                 for i in range(4)]  # fmt: skip
    keys = [set(part["idempotency_key"].astype(str)) for part in parts]
    assert sum(len(k) for k in keys) == len(whole) == 60
    assert set().union(*keys) == set(whole["idempotency_key"].astype(str))
    # a customer's events are all in one part, and more than one part has customers
    owners = [set(part["subject"].dropna()) for part in parts]
    assert sum(len(o) for o in owners) == 23
    assert sum(1 for o in owners if o) > 1


def test_a_group_read_from_the_indexed_copies_is_the_ledgers_read() -> None:
    """A full build reads its groups from the copies of its types (``segment_events``):
    the same frame as from the ledger, whatever the group, later events left out."""
    from growthwatch.metrics import segment_events
    from growthwatch.metrics.reads import LedgerView
    from growthwatch.metrics.segments import TYPES
    from growthwatch.metrics.settings import MetricsSettings
    from growthwatch.metrics.touched import read_upto

    events = []
    for i in range(90):
        kind = ("signup", "subscription_started", "payment", "refund", "active_use")[i % 5]
        extra = {"after": 10} if kind == "subscription_started" else {}
        events.append(ev(kind, START + timedelta(hours=i // 3), f"c{i % 11}",
                         product=("p", "q", "r")[i % 3], source_id=f"e{i}", **extra))  # fmt: skip
    with Ledger() as ledger:
        ledger.append(events[:70])
        view = LedgerView(ledger, MetricsSettings())
        upto = ledger.max_seq()
        segment_events.sync(view, upto)
        ledger.append(events[70:])  # after ``upto``: in neither read
        for group in (Group(["p", "r"]), Group(["q"], (1, 3)), Group(["q"], (0, 3))):
            want = read_upto(view, TYPES, ("idempotency_key", "product", "type", "ts",
                                           "subject", "mrr_after"), group, upto)  # fmt: skip
            got = read_upto(view, TYPES, ("idempotency_key", "product", "type", "ts",
                                          "subject", "mrr_after"), group, upto,
                            segment_events.SOURCE)  # fmt: skip
            pd.testing.assert_frame_equal(got.reset_index(drop=True),
                                          want.reset_index(drop=True))  # fmt: skip
            assert len(want) and not want["type"].eq("active_use").any()
            assert set(want["product"]) == set(group.products)
