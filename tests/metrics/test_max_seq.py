"""``LedgerView.max_seq``: the ledger's last ``seq`` from its tail, whatever was removed.

Every state a run checks (the cohort and funnel states, the customers' totals) asks for
the ledger's last ``seq``. The view reads it from the rows at or after ``last_seq`` (the
last row groups) instead of the whole column; these cases check it against the column's
``max(seq)`` (the definition) on random ledgers: fresh, after appends, with ``last_seq``
before, at and beyond the tail, and after deletions that removed the tail's rows.
"""

from __future__ import annotations

import random
from datetime import timedelta

import pytest
from metric_cases import ev, t

from growthwatch.metrics.reads import LedgerView
from growthwatch.metrics.settings import MetricsSettings
from growthwatch.metrics.touched import event_count
from growthwatch.stores.ledger import Ledger

START = t("2026-03-01")


def _column_max(ledger: Ledger) -> int:
    cursor = ledger.connection
    try:
        row = cursor.execute("SELECT coalesce(max(seq), 0) FROM events").fetchone()
    finally:
        cursor.close()
    return int(row[0]) if row else 0


def _events(rng: random.Random, n: int, day: int) -> list[object]:
    return [ev(rng.choice(["signup", "active_use"]),
               START + timedelta(days=day, minutes=rng.randrange(1440)),
               f"u{rng.randrange(50)}") for _ in range(n)]  # fmt: skip


@pytest.mark.parametrize("seed", range(6))
def test_max_seq_is_the_column_max(seed: int) -> None:
    rng = random.Random(seed)
    with Ledger() as ledger:
        assert LedgerView(ledger, MetricsSettings()).max_seq() == 0  # empty
        seen: list[int] = [0]
        for day in range(4):
            ledger.append(_events(rng, rng.randrange(1, 40), day))
            seen.append(_column_max(ledger))
            # any last_seq a run may carry: none, an older one, the tail, beyond it
            for last in {0, *seen, seen[-1] + rng.randrange(1, 5)}:
                view = LedgerView(ledger, MetricsSettings(), last_seq=last)
                assert view.max_seq() == _column_max(ledger), (day, last)
        # a trim (retention) or a repair removed rows, the tail's among them
        top = _column_max(ledger)
        ledger.delete_before(START + timedelta(days=rng.randrange(2, 5)))
        cursor = ledger.connection
        try:
            cursor.execute("DELETE FROM events WHERE seq > ?", [top - rng.randrange(0, 3)])
        finally:
            cursor.close()
        for last in {0, *seen, top, top + 1}:
            view = LedgerView(ledger, MetricsSettings(), last_seq=last)
            assert view.max_seq() == _column_max(ledger), ("trimmed", last)


def test_event_count_is_asked_once_per_seq_and_follows_a_deletion() -> None:
    """``touched.event_count`` (every state's staleness check) is read from the ledger once
    per view and ``seq``, and again after a deletion, which changes it; appends do not."""
    with Ledger() as ledger:
        ledger.append([ev("signup", START + timedelta(hours=i), f"u{i}", source_id=f"s{i}")
                       for i in range(10)])  # fmt: skip
        view = LedgerView(ledger, MetricsSettings())
        asked: list[str] = []
        real = view.rows
        view.rows = lambda sql, params: asked.append(sql) or real(sql, params)  # type: ignore[method-assign]
        assert [event_count(view, 6), event_count(view, 6), event_count(view, 10)] == [6, 6, 10]
        assert len(asked) == 2
        ledger.append([ev("signup", START + timedelta(days=1), "late", source_id="late")])
        assert event_count(view, 6) == 6 and len(asked) == 2
        # the first three events (seq 1-3) go: three fewer up to any seq
        assert ledger.delete_before(START + timedelta(hours=2, minutes=30)) == 3
        assert [event_count(view, 6), event_count(view, 10)] == [3, 7] and len(asked) == 4
