"""The ledger checkpoint (``MetricsEngine._release``) stays off an update's path.

At 10M events the checkpoint cost 0.93 s of a 1.55 s live cancellation, for the few KiB a
live update folds, and at 101.5M events the ones after the cohort and rollup folds 2.9 s of
a 1,000-event update: a checkpoint writes every changed ART index in whole. An update,
live or not, checkpoints only after a failure or when the resident part is over half the
DuckDB share, and leaves a part-full share to ``MetricsEngine.release`` (idle time); a
full run still checkpoints at an eighth after each family (what keeps a tight limit from
running out of memory, ``test_activity_memory.py``)."""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

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


def _resident(monkeypatch: pytest.MonkeyPatch, resident_share: float) -> None:
    """The resident part of the DuckDB share, as ``_release`` reads it, set to
    ``resident_share`` of the share."""
    share = LIMITED.duckdb_memory_mb
    assert share is not None
    monkeypatch.setattr(engine_mod, "_resident_mib", lambda ledger: share * resident_share)


@contextlib.contextmanager
def _counted(
    monkeypatch: pytest.MonkeyPatch, resident_share: float
) -> Iterator[tuple[Ledger, MetricsEngine, list[bool]]]:
    """A recomputed portfolio under ``LIMITED``, its ledger checkpoints counted in the
    list (one entry each) from here on, the resident part at ``resident_share``, and one
    cancellation appended for the next update."""
    with Ledger() as ledger:
        ledger.append(_portfolio())
        engine = MetricsEngine(ledger, LIMITED)
        engine.recompute([MemoryStore()])
        calls: list[bool] = []
        real = Ledger.checkpoint
        monkeypatch.setattr(Ledger, "checkpoint", lambda self: calls.append(True) or real(self))
        _resident(monkeypatch, resident_share)
        ledger.append([sub(START + timedelta(days=25), 15, 0, "p2-c5", product="p2", sid="s5")])
        yield ledger, engine, calls


def _checkpoints(monkeypatch: pytest.MonkeyPatch, resident_share: float, *, live: bool) -> int:
    """How many ledger checkpoints one update of a cancellation runs when the resident
    part of the DuckDB share is ``resident_share`` of it."""
    with _counted(monkeypatch, resident_share) as (_, engine, calls):
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
    # nor an update that is not live: the checkpoint waits for idle time
    assert _checkpoints(monkeypatch, quarter, live=False) == 0


def test_a_full_run_releases_a_part_full_share_after_each_family(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with _counted(monkeypatch, 0.25) as (_, engine, calls):
        result = engine.recompute([MemoryStore()])
        assert not result.errors and len(calls) == len(result.timings) >= 9


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


def test_an_update_leaves_its_last_release_to_idle_time(monkeypatch: pytest.MonkeyPatch) -> None:
    """A share over an eighth (but not over half) resident after an update's families is
    checkpointed by ``release`` (idle time), not by the update; the next update that is
    not live runs it first when no one has, so its families still find the share free."""
    with _counted(monkeypatch, 0.25) as (ledger, engine, calls):
        result = engine.update([MemoryStore()])
        assert not result.errors and len(result.timings) >= 3
        assert calls == [] and engine.release_due  # no checkpoint; one is due
        assert engine.release() and len(calls) == 1
        assert not engine.release_due and not engine.release() and len(calls) == 1
        # not released by an idle caller: the next update checkpoints before its families
        ledger.append([sub(START + timedelta(days=26), 0, 20, "p2-c6", product="p2", sid="s6")])
        calls.clear()
        seen: list[int] = []
        for family in engine.families:
            monkeypatch.setattr(family, "run", _counting(family.run, calls, seen))
        assert engine.release_due is False
        engine.release_due = True
        result = engine.update([MemoryStore()])
        assert not result.errors and seen and seen[0] == 1  # released before the first family
        assert engine.release_due  # and its own last release is due again


def test_a_full_share_or_a_failure_is_released_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """The deferral is only for a part-full share: over half resident, each family's
    checkpoint runs in the update, as does the one after a failing family (which leaves
    none due)."""
    with _counted(monkeypatch, 0.75) as (ledger, engine, calls):
        result = engine.update([MemoryStore()])
        assert not result.errors and len(calls) == len(result.timings)
        assert not engine.release_due
        # a part-full share, the last family failing: released at once all the same
        _resident(monkeypatch, 0.25)
        name = list(result.timings)[-1]  # the last family an update of a subscription runs
        last = next(f for f in engine.families if f.name == name)
        monkeypatch.setattr(last, "run", _failing)
        ledger.append([sub(START + timedelta(days=26), 0, 20, "p2-c7", product="p2", sid="s7")])
        calls.clear()
        result = engine.update([MemoryStore()])
        assert list(result.errors) == [name] and list(result.timings)[-1] == name
        assert len(calls) == 1 and not engine.release_due


def _counting(run: Any, calls: list[bool], seen: list[int]) -> Any:
    """``run`` noting how many checkpoints had run when it was called."""

    def counted(*args: Any, **kwargs: Any) -> Any:
        seen.append(len(calls))
        return run(*args, **kwargs)

    return counted


def _failing(*args: Any, **kwargs: Any) -> Any:
    raise RuntimeError("the family failed")
