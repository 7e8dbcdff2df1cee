"""The active-user rollup keeps to DuckDB's ``memory_limit``, and one family's failure
leaves the next family the whole share (``growthwatch.metrics.sql.activity._input``,
``MetricsEngine._release``).

At 101.5M demo events the rollup's build ran out of its 832 MB share in one piece, and
every family after it failed too: the fresh ART indexes of the cohort, funnel and rollup
states stayed resident (a state build's ``CHECKPOINT`` from a cursor is refused while the
ledger's own connection has a transaction open), so DuckDB still had its whole share in
use. A 10x-smaller ledger at a 10x-smaller limit reproduces both in seconds.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import duckdb
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from metric_cases import store_contents
from test_activity_rollup import ZONES, build, event, expected_days, snapshot
from test_state_memory import bulk_ledger

from growthwatch.metrics.engine import MetricsEngine
from growthwatch.metrics.families.base import Family
from growthwatch.metrics.reads import LedgerView
from growthwatch.metrics.settings import MetricsSettings
from growthwatch.metrics.sql import activity, state
from growthwatch.stores.ledger import Ledger
from growthwatch.stores.series import SeriesStore

ROLLUP = ("lifecycle", "product")


def _order_by_day(ledger: Ledger) -> bool:
    """The day table is stored in day order (an update's range on ``day`` relies on it)."""
    con = ledger.connection
    try:
        days = [r[0] for r in con.execute("SELECT day FROM state_activity_days ORDER BY rowid")
                .fetchall()]  # fmt: skip
    finally:
        con.close()
    return days == sorted(days)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(event, min_size=1, max_size=60), st.sampled_from(ZONES), st.integers(2, 7))
def test_a_build_in_any_number_of_partitions_is_the_one_piece_build(
    raw: list[tuple[Any, ...]], tz: str, parts: int
) -> None:
    """Random streams (DST, several products and users) built in 2 to 7 partitions of the
    users: the rollup's tables of one piece, and the user-days pandas computes."""
    real = state.parts_for
    with Ledger() as ledger:
        ledger.append(build(raw, "r"))
        view = LedgerView(ledger, MetricsSettings(timezone=tz))
        assert activity.sync(view).built
        whole = snapshot(ledger)
        state.parts_for = lambda *args: parts  # type: ignore[assignment]
        try:
            assert activity.sync(view, rebuild=True).built
        finally:
            state.parts_for = real  # type: ignore[assignment]
        pieces = snapshot(ledger)
        assert _order_by_day(ledger)
        want = expected_days(ledger, tz)
    for name in whole:
        pd.testing.assert_frame_equal(pieces[name], whole[name], obj=name)
    pd.testing.assert_frame_equal(pieces["days"].reset_index(drop=True), want, check_dtype=False)


def test_the_day_ranges_keep_to_the_budget() -> None:
    per_day = [(1, 3), (2, 3), (3, 1), (5, 9), (6, 1), (7, 1)]
    assert activity._ranges(per_day, 4) == [(1, 1), (2, 3), (5, 5), (6, 7)]
    assert activity._ranges(per_day, 100) == [(1, 7)]
    assert activity._ranges([], 4) == []


@pytest.fixture(scope="module")
def bulk(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("activity-memory") / "ledger.duckdb"
    bulk_ledger(path, 400_000)
    return path


def _recompute(ledger_file: Path, work: Path, name: str, limit: str | None,
               spy: Any = None) -> tuple[dict[str, pd.DataFrame], dict[str, str]]:  # fmt: skip
    """A full recompute of the rollup's families on a fresh copy of the ledger, DuckDB held
    to ``limit`` (``spy`` runs first, as a family): the stores and the errors."""
    copy = work / f"ledger-{name}.duckdb"
    copy.write_bytes(ledger_file.read_bytes())
    s = MetricsSettings(timezone="Europe/Berlin")
    with Ledger(copy) as ledger:
        engine = MetricsEngine(ledger, s)
        engine.families = tuple(f for f in engine.families if f.name in ROLLUP)
        if spy is not None:
            engine.families = (spy(ledger), *engine.families)
        if limit is not None:  # below the engine's own floor (64 MB): set on the ledger
            con = ledger.connection
            con.execute(f"SET memory_limit = '{limit}'")
            con.close()
        store = SeriesStore(work / f"series-{name}.duckdb")
        try:
            result = engine.recompute([store])
            return store_contents(store), result.errors
        finally:
            store.close()


@pytest.mark.slow
def test_the_rollup_builds_within_a_tight_limit_and_writes_the_same_stores(
    bulk: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    free, errors = _recompute(bulk, tmp_path, "free", None)
    assert not errors and {"lifecycle_daily", "product_daily"} <= free.keys()
    counted: list[int] = []
    real = state.parts_for
    monkeypatch.setattr(state, "parts_for", lambda *a: counted.append(real(*a)) or counted[-1])
    tight, errors = _recompute(bulk, tmp_path, "tight", "24MB")
    assert not errors
    assert counted and counted[0] >= 2  # the limit forced several partitions
    assert tight.keys() == free.keys()
    for name, frame in free.items():
        pd.testing.assert_frame_equal(tight[name], frame, check_exact=True, obj=name)
    # in one piece (what the build did before) it does not fit the limit
    monkeypatch.setattr(state, "parts_for", lambda *a: 1)
    _, errors = _recompute(bulk, tmp_path, "one-piece", "24MB")
    assert "lifecycle" in errors and "Out of Memory" in errors["lifecycle"]


class _Poison(Family):
    """A family that leaves what a state build leaves (a committed table with a fresh ART
    index, resident until a checkpoint) and then runs out of memory in a statement that
    cannot spill (a ``string_agg`` of every key)."""

    name = "poison"
    columns = ("product", "type", "ts")
    measurements = ()

    def __init__(self, ledger: Ledger) -> None:
        self.ledger = ledger

    def types(self, settings: MetricsSettings) -> tuple[str, ...]:
        return ("signup",)

    def run(self, *args: Any) -> Any:
        con = self.ledger.connection
        try:
            con.execute("BEGIN TRANSACTION")
            con.execute("CREATE OR REPLACE TABLE state_poison_keys AS SELECT "
                        "md5(CAST(i AS VARCHAR)) AS subject FROM range(150000) AS t(i)")  # fmt: skip
            con.execute("CREATE INDEX state_poison_keys_subject ON state_poison_keys (subject)")
            con.execute("COMMIT")
            con.execute("SELECT length(string_agg(subject || subject || subject, ',')) "
                        "FROM state_poison_keys").fetchall()  # fmt: skip
        finally:
            con.close()
        raise AssertionError("the poison's statement fitted the limit")


@pytest.mark.slow
def test_one_family_out_of_memory_leaves_the_next_ones_the_whole_share(
    bulk: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    free, errors = _recompute(bulk, tmp_path, "free", None)
    assert not errors
    got, errors = _recompute(bulk, tmp_path, "poisoned", "24MB", _Poison)
    assert list(errors) == ["poison"] and "Out of Memory" in errors["poison"]
    assert got.keys() == free.keys()
    for name, frame in free.items():
        pd.testing.assert_frame_equal(got[name], frame, check_exact=True, obj=name)
    # without the engine's release the poison's index keeps the share, and the families
    # after it run out of memory
    monkeypatch.setattr(MetricsEngine, "_release", lambda self, **kwargs: None)
    _, errors = _recompute(bulk, tmp_path, "poisoned-kept", "24MB", _Poison)
    assert "poison" in errors and set(errors) & set(ROLLUP), errors


def test_a_ledger_checkpoint_frees_a_fresh_index(tmp_path: Path) -> None:
    """``Ledger.checkpoint`` runs where a cursor's ``CHECKPOINT`` is refused (the ledger's
    connection has a transaction open after a read), and the fresh index's memory goes."""
    with Ledger(tmp_path / "ledger.duckdb") as ledger:
        ledger.count()  # a read on the ledger's own connection
        con = ledger.connection
        con.execute("BEGIN TRANSACTION")
        con.execute("CREATE TABLE keys AS SELECT md5(CAST(i AS VARCHAR)) AS k FROM range(100000) "
                    "AS t(i)")  # fmt: skip
        con.execute("CREATE INDEX keys_k ON keys (k)")
        con.execute("COMMIT")
        art = ("SELECT coalesce(sum(memory_usage_bytes), 0) FROM duckdb_memory() "
               "WHERE tag = 'ART_INDEX'")  # fmt: skip
        assert con.execute(art).fetchone()[0] > 2**20  # type: ignore[index]
        with pytest.raises(duckdb.TransactionException):
            con.execute("CHECKPOINT")
        assert ledger.checkpoint()
        assert con.execute(art).fetchone()[0] == 0  # type: ignore[index]
        con.close()
