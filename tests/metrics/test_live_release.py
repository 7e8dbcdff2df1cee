"""The ledger checkpoint (``MetricsEngine._release``) stays off a webhook's live update.

At 10M events the checkpoint cost 0.93 s of a 1.55 s live cancellation, for the few KiB a
live update folds. A live update checkpoints only after a failure or when the resident
part is over half the DuckDB share; an update that is not live still checkpoints at an
eighth after each family (what keeps a tight limit from running out of memory,
``test_activity_memory.py``)."""

from __future__ import annotations

import dataclasses
from datetime import timedelta

import pandas as pd
import pytest
from metric_cases import ev, sub
from test_properties import SETTINGS, START, MemoryStore
from test_subscription_state import _portfolio

from growthwatch.metrics import engine as engine_mod
from growthwatch.metrics import trials
from growthwatch.metrics.engine import LIVE_FULL, MetricsEngine
from growthwatch.metrics.families.subscriptions import Subscriptions
from growthwatch.metrics.families.trials import Trials
from growthwatch.metrics.mrr import MRR_TYPES
from growthwatch.metrics.reads import LedgerView
from growthwatch.metrics.touched import touched
from growthwatch.stores.ledger import Ledger

LIMITED = dataclasses.replace(SETTINGS, memory_limit_mb=1024)


def _checkpoints(monkeypatch: pytest.MonkeyPatch, resident_share: float, *, live: bool) -> int:
    """How many ledger checkpoints one update of a cancellation runs when the resident
    part of the DuckDB share is ``resident_share`` of it."""
    share = LIMITED.duckdb_memory_mb
    assert share is not None
    with Ledger() as ledger:
        ledger.append(_portfolio())
        engine = MetricsEngine(ledger, LIMITED)
        engine.recompute([MemoryStore()])
        calls: list[bool] = []
        real = Ledger.checkpoint
        monkeypatch.setattr(Ledger, "checkpoint", lambda self: calls.append(True) or real(self))
        monkeypatch.setattr(engine_mod, "_resident_mib", lambda ledger: share * resident_share)
        ledger.append([sub(START + timedelta(days=25), 15, 0, "p2-c5", product="p2", sid="s5")])
        result = engine.update([MemoryStore()], live=live)
        assert not result.errors and result.timings  # the live families ran
        monkeypatch.undo()
        return len(calls)


def test_a_live_update_leaves_a_part_full_share_to_the_next_update(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    quarter = 0.25
    assert 1 / 8 < quarter < 1 / LIVE_FULL
    assert _checkpoints(monkeypatch, quarter, live=True) == 0
    # the same share after an update that is not live: released after each family
    assert _checkpoints(monkeypatch, quarter, live=False) >= 3


def test_a_live_update_releases_a_truly_full_share(monkeypatch: pytest.MonkeyPatch) -> None:
    assert _checkpoints(monkeypatch, 0.75, live=True) >= 1
    assert _checkpoints(monkeypatch, 0.01, live=True) == 0


def test_the_trials_lookup_after_the_subscriptions_is_what_its_own_lookup_reads() -> None:
    """``touched`` shares one indexed lookup per run (``touched._customers_events``): the
    trial family's call after the subscription family's (fewer customers: a payment is
    no trial event, other columns) gives what a lookup of its own gives."""
    with Ledger() as ledger:
        ledger.append(_portfolio())
        since = ledger.max_seq()
        ledger.append([
            sub(START + timedelta(days=25), 15, 0, "p2-c5", product="p2", sid="s5"),
            ev("payment", START + timedelta(days=25), "p1-c3", product="p1", value="13",
               sid="s3", source_id="late-pay"),
        ])  # fmt: skip
        upto = ledger.max_seq()
        shared = LedgerView(ledger, SETTINGS, [], since)
        subs = touched(shared, MRR_TYPES, Subscriptions.columns, since, upto)
        trial = touched(shared, trials.TYPES, Trials.columns, since, upto, with_subject=True)
        assert subs.pairs is not None and trial.pairs is not None
        assert set(subs.pairs["subject"]) == {"p2-c5", "p1-c3"}
        assert set(trial.pairs["subject"]) == {"p2-c5"}
        for got, (types, columns, kw) in ((trial, (trials.TYPES, Trials.columns, True)),
                                          (subs, (MRR_TYPES, Subscriptions.columns, False))):
            own = touched(LedgerView(ledger, SETTINGS, [], since), types, columns, since, upto,
                          with_subject=kw)  # fmt: skip
            for mine, theirs in ((got.before, own.before), (got.after, own.after)):
                assert len(mine) > 0
                pd.testing.assert_frame_equal(mine[list(theirs.columns)], theirs)
                assert mine.attrs == theirs.attrs
