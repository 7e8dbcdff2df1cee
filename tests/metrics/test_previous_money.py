"""The revenue family's restart point of an update reads recent days, not the history.

``LedgerView.previous_last_by_currency`` finds, over the (product, currency) pairs the new
events have, the earliest of their last older money events (the hours after it become zero
rows). An update searches growing windows before the new events; these cases check it
against the whole-history query (``REFERENCE``, the definition) where the last older event
lies in each window, beyond all of them, nowhere (a new pair), and for late events.
"""

from __future__ import annotations

from datetime import timedelta

import pandas as pd
import pytest
from metric_cases import ev, t

from growthwatch.metrics.reads import LedgerView
from growthwatch.metrics.revenue import MONEY_TYPES
from growthwatch.metrics.settings import MetricsSettings
from growthwatch.stores.ledger import Ledger

REFERENCE = (
    "SELECT epoch_us(min(prev)) FROM (SELECT max(ts) FILTER (WHERE seq <= ?) AS prev FROM events "
    "WHERE type IN (SELECT unnest(?)) GROUP BY product, currency HAVING max(seq) > ?)"
)


def _reference(ledger: Ledger, last_seq: int) -> pd.Timestamp | None:
    cursor = ledger.connection
    try:
        row = cursor.execute(REFERENCE, [last_seq, list(MONEY_TYPES), last_seq]).fetchone()
    finally:
        cursor.close()
    return None if row is None or row[0] is None else pd.Timestamp(row[0], unit="us", tz="UTC")


def _pay(product: str, when: object, currency: str = "USD") -> object:
    return ev("payment", when, "c1", product=product, value=10, currency=currency)


NOW = t("2026-06-01 12:00")


@pytest.mark.parametrize("days_back", [0, 1, 3, 20, 100, 500])
@pytest.mark.parametrize("late", [False, True])
def test_previous_last_matches_the_whole_history_query(days_back: int, late: bool) -> None:
    with Ledger() as ledger:
        older = [_pay("p1", NOW - timedelta(days=days_back, hours=1)),
                 _pay("p1", NOW - timedelta(days=days_back + 40)),
                 _pay("p2", NOW - timedelta(hours=5), "EUR"),
                 _pay("p3", NOW - timedelta(days=3))]  # fmt: skip
        ledger.append(older)
        last_seq = ledger.max_seq()
        # new: p1 (its last older one ``days_back`` ago), p2 in EUR and in USD (a new
        # pair), p4 (a new product); a late event lies before the older ones
        when = NOW - timedelta(days=days_back + 60) if late else NOW
        ledger.append([_pay("p1", when), _pay("p2", NOW, "EUR"), _pay("p2", NOW, "USD"),
                       _pay("p4", NOW)])  # fmt: skip
        view = LedgerView(ledger, MetricsSettings(), last_seq=last_seq)
        got = view.previous_last_by_currency(MONEY_TYPES)
        want = _reference(ledger, last_seq)
        assert want is not None and got == want
        assert got == min(NOW - timedelta(days=days_back, hours=1), NOW - timedelta(hours=5))


def test_no_older_money_gives_none() -> None:
    with Ledger() as ledger:
        ledger.append([_pay("p1", NOW - timedelta(days=1))])
        view = LedgerView(ledger, MetricsSettings(), last_seq=0)
        assert view.previous_last_by_currency(MONEY_TYPES) is None is _reference(ledger, 0)
        last = ledger.max_seq()
        assert LedgerView(ledger, MetricsSettings(), last_seq=last).previous_last_by_currency(
            MONEY_TYPES) is None  # nothing new
