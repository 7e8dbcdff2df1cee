"""The cohort and funnel state builds keep to DuckDB's ``memory_limit``
(``growthwatch.metrics.sql.state``): under a tight limit they run in partitions of the
users (a hash of ``subject``) on one thread and checkpoint what they built, and a full
recompute then writes exactly the stores an unlimited one writes; in one piece, as
before, the same recompute runs out of memory (so the limit really binds).

At 100M demo events a 512 MB DuckDB share ran out of memory in the cohort state and 1 GB
in the funnel state; the same happens at a tenth of the limit per tenth of the events,
so a 500,000-event ledger at 24 MB reproduces it in seconds.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from metric_cases import store_contents
from test_engagement_sql import BASE, FUNNELS, STARTS, build, event, reference, same

from growthwatch.metrics.engine import MetricsEngine
from growthwatch.metrics.reads import LedgerView
from growthwatch.metrics.sql import state
from growthwatch.stores.ledger import Ledger
from growthwatch.stores.series import SeriesStore

TIGHT = "24MB"
SQL_FAMILIES = ("cohorts", "funnels")


def bulk_ledger(path: Path, n: int) -> None:
    """``n`` events straight into the events table by SQL: signups, activations,
    payments, active use (some of kind ``pricing_view``) and sessions (per visitor, and
    GA4-style aggregates without a subject) of n/5 users over five months, three
    products, four channels."""
    kind = ("CASE WHEN i % 20 = 0 THEN 'signup' WHEN i % 20 = 1 THEN 'activation' "
            "WHEN i % 20 = 2 THEN 'payment' WHEN i % 20 IN (3, 4) THEN 'session' "
            "ELSE 'active_use' END")  # fmt: skip
    with Ledger(path) as ledger:
        ledger.connection.execute(
            "INSERT INTO events (idempotency_key, product, type, ts, value, subject, channel, "
            "source, source_id, kind, ingested_at) SELECT CAST(md5(CAST(i AS VARCHAR)) AS UUID), "
            f"'p' || (i % 3), {kind}, TIMESTAMPTZ '2026-01-01 00:00:00+00' "
            "+ to_seconds((i * 7919) % (86400 * 150)), CASE WHEN i % 97 = 4 THEN 5 ELSE 1 END, "
            "CASE WHEN i % 97 = 4 THEN NULL ELSE 'u' || ((i * 2654435761) % "
            f"{n // 5}) END, CASE WHEN i % 7 = 0 THEN NULL ELSE 'c' || (i % 4) END, 't', "
            f"CAST(i AS VARCHAR), CASE WHEN i % 20 = 9 THEN 'pricing_view' ELSE {kind} END, "
            "now() FROM range(?) AS t(i)", [n],
        )  # fmt: skip


@pytest.fixture(scope="module")
def big(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("state-memory") / "ledger.duckdb"
    bulk_ledger(path, 500_000)
    return path


def recompute(ledger_file: Path, work: Path, name: str, limit: str | None,
              families: tuple[str, ...] = SQL_FAMILIES) -> dict[str, pd.DataFrame]:  # fmt: skip
    """A full recompute of ``families`` on a fresh copy of the ledger (no state left by an
    earlier run), DuckDB held to ``limit``: the stores it writes."""
    copy = work / f"ledger-{name}.duckdb"
    copy.write_bytes(ledger_file.read_bytes())
    s = dataclasses.replace(BASE, timezone="Europe/Berlin")
    with Ledger(copy) as ledger:
        engine = MetricsEngine(ledger, s)
        engine.families = tuple(f for f in engine.families if f.name in families)
        if limit is not None:  # below the engine's own floor (64 MB): set on the ledger
            ledger.connection.execute(f"SET memory_limit = '{limit}'")
        store = SeriesStore(work / f"series-{name}.duckdb")
        try:
            result = engine.recompute([store])
            assert set(result.timings) == set(families)
            if result.errors:  # the engine goes on without a failing family: raise it here
                assert all("OutOfMemoryException" in e for e in result.errors.values()), (
                    result.errors
                )
                raise duckdb.OutOfMemoryException("; ".join(result.errors.values()))
            return store_contents(store)
        finally:
            store.close()


@pytest.mark.slow
def test_a_recompute_under_a_tight_duckdb_limit_writes_the_same_stores(
    big: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    free = recompute(big, tmp_path, "free", None)
    assert {"cohort_retention", "funnel_steps", "funnel_branches"} <= free.keys()
    assert len(free["cohort_retention"]) > 50 and free["funnel_steps"]["users"].sum() > 10_000
    tight = recompute(big, tmp_path, "tight", TIGHT)
    assert tight.keys() == free.keys()
    for name, frame in free.items():
        pd.testing.assert_frame_equal(tight[name], frame, check_exact=True, obj=name)
    # the same builds in one piece (what the state did before) do not fit the limit
    monkeypatch.setattr(state, "_COHORT_ROWS_PER_MIB", 10**12)
    monkeypatch.setattr(state, "_FUNNEL_ROWS_PER_MIB", 10**12)
    with pytest.raises(duckdb.OutOfMemoryException):
        recompute(big, tmp_path, "one-piece", TIGHT)


def test_partitions_follow_the_limit_and_the_threads_come_back(big: Path) -> None:
    with Ledger(big) as ledger:
        con = ledger.connection
        before = con.execute("SELECT current_setting('threads')").fetchone()
        con.execute(f"SET memory_limit = '{TIGHT}'")
        assert state._limit_mib(con) == pytest.approx(24e6 / 2**20, rel=0.01)
        run = state._Run(LedgerView(ledger, BASE), "cohorts", state._COHORT_TABLES, {}, True)
        try:
            condition = "type IN ('signup', 'active_use') AND subject IS NOT NULL"
            rows = con.execute(f"SELECT count(*) FROM events WHERE {condition}").fetchone()
            assert rows is not None
            rate, floor = state._COHORT_ROWS_PER_MIB, state._COHORT_FLOOR_MIB
            # ceil(rows / ((22.9 MiB - floor) x rows per MiB)): 400,000 events in 3
            assert state._parts(run, condition, rate, None, floor) == -(
                -rows[0] // int((24e6 / 2**20 - floor) * rate)
            )
            assert state._parts(run, condition, rate, None, floor) >= 2
            con.execute("SET memory_limit = '8GB'")
            assert state._parts(run, condition, rate, None, floor) == 1
        finally:
            run.close()
        con = ledger.connection
        with state._one_thread(con, True):
            assert con.execute("SELECT current_setting('threads')").fetchone() == (1,)
        assert con.execute("SELECT current_setting('threads')").fetchone() == before


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(event, min_size=1, max_size=40),
    st.sampled_from([(tz, i) for tz, starts in STARTS.items() for i in range(len(starts))]),
    st.integers(2, 7),
)
def test_any_number_of_partitions_gives_the_pandas_definitions(
    raw: list[tuple[Any, ...]], zone: tuple[str, int], parts: int
) -> None:
    """Random streams (DST, ties, several products) built in 2 to 7 partitions of the
    users: the frames of one piece, i.e. of the pandas reference."""
    tz, i = zone
    s = dataclasses.replace(BASE, timezone=tz, funnels=FUNNELS)
    events = build(raw, STARTS[tz][i])
    until = pd.Timestamp(max(e.timestamp for e in events)).tz_convert("UTC")
    want = reference(events, s, until)
    real = state._parts
    state._parts = lambda *args: parts  # type: ignore[assignment]
    try:
        with Ledger() as ledger:
            ledger.append(events)
            view = LedgerView(ledger, s)
            steps, branches = state.funnel_frames(view, None)
            got = {"cohort_retention": state.logo_retention(view, None, until),
                   "funnel_steps": steps, "funnel_branches": branches}  # fmt: skip
    finally:
        state._parts = real  # type: ignore[assignment]
    for name in want:
        same(got[name], want[name], name)


def test_the_cohort_partitions_follow_the_floor_and_the_rate(big: Path) -> None:
    """The cohorts' rule (``parts_for`` with a floor): rows per partition are the rate
    times the MiB above the floor, counted here by hand."""
    with Ledger(big) as ledger:
        con = ledger.connection
        con.execute(f"SET memory_limit = '{TIGHT}'")  # 24e6 B = 22.888 MiB
        # some 6.8 MiB above a 16 MiB floor (DuckDB shows the limit rounded to 22.8 or
        # 22.9 MiB) at 20,000 a MiB: 136,000 to 137,760 rows a partition
        assert state.parts_for(con, 400_000, 20_000, 16.0) == 3
        assert state.parts_for(con, 130_000, 20_000, 16.0) == 1
        assert state.parts_for(con, 140_000, 20_000, 16.0) == 2
        assert state.parts_for(con, 400_000, 20_000) == 1  # no floor: 457,763 a partition
        con.execute("SET memory_limit = '10MB'")  # below the floor: a MiB's worth each
        assert state.parts_for(con, 400_000, 20_000, 16.0) == 20
        con.execute("SET memory_limit = '8GB'")
        assert state.parts_for(con, 400_000, 20_000, 16.0) == 1


def _cohort_state(ledger_file: Path, work: Path, parts: int) -> dict[str, list[Any]]:
    """The cohort state tables a full build in ``parts`` partitions leaves (sorted rows)."""
    copy = work / f"ledger-{parts}.duckdb"
    copy.write_bytes(ledger_file.read_bytes())
    real = state._parts
    state._parts = lambda *args: parts  # type: ignore[assignment]
    try:
        with Ledger(copy) as ledger:
            state.logo_retention(LedgerView(ledger, BASE), None, None)
            con = ledger.connection
            return {t: sorted(con.execute(f"SELECT * FROM {t}").fetchall(), key=repr)
                    for t in ("state_cohorts_members", "state_cohorts_active",
                              "state_cohorts_cells")}  # fmt: skip
    finally:
        state._parts = real  # type: ignore[assignment]


@pytest.mark.parametrize("parts", [2, 9, 25])
def test_any_number_of_cohort_partitions_leaves_the_one_piece_state(
    big: Path, tmp_path: Path, parts: int
) -> None:
    """The partition counts the cohorts' rule gives (and the old one gave) build the same
    members, active months and cells as one piece, row for row."""
    whole = _cohort_state(big, tmp_path, 1)
    assert len(whole["state_cohorts_members"]) > 10_000
    assert len(whole["state_cohorts_active"]) > len(whole["state_cohorts_members"])
    assert _cohort_state(big, tmp_path, parts) == whole
