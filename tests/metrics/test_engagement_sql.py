"""Logo retention and funnels as SQL in the ledger (``growthwatch.metrics.sql``) against
the pandas definitions they replace (``cohorts.logo_retention``, ``funnels.funnels``, kept
as the reference), on random multi-product streams over DST changes, in full and folded
from new events through the persisted state; plus the state's checks against the ledger.
"""

from __future__ import annotations

import dataclasses
from datetime import timedelta
from typing import Any

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from metric_cases import ev, t

from growthwatch.events import GrowthEvent
from growthwatch.frames import events_to_frame
from growthwatch.metrics import cohorts, funnels
from growthwatch.metrics._frame import TIME_DTYPE
from growthwatch.metrics.reads import LedgerView, read_events
from growthwatch.metrics.settings import Funnel, MetricsSettings
from growthwatch.metrics.sql import state
from growthwatch.stores.ledger import Ledger

FUNNELS = (
    Funnel("paid", ("signup", "activation", "payment"), window_days=3),
    Funnel("short", ("signup", "trial_started"), window_days=1),
    Funnel("again", ("active_use", "pricing_view", "active_use"), window_days=2),  # a kind
    Funnel("one", ("signup",), window_days=5),
)
BASE = MetricsSettings(funnels=FUNNELS)
# Around Berlin's and New York's spring DST changes (2026-03-29, 2026-03-08) and Berlin's
# autumn one (2026-10-25), and across month ends in each zone.
STARTS = {"Europe/Berlin": [t("2026-03-20"), t("2026-10-20")],
          "America/New_York": [t("2026-02-25")], "UTC": [t("2026-01-25")]}  # fmt: skip
TYPES = ["signup", "signup", "active_use", "active_use", "activation", "payment",
         "trial_started", "refund", "session"]  # fmt: skip

event = st.tuples(
    st.sampled_from(TYPES),
    st.sampled_from(["p1", "p2", "p3"]),
    st.sampled_from(["u1", "u2", "u3", "u4", None]),
    # any minute of about 6 weeks, or one of a few shared instants (ties broken by key)
    st.one_of(st.integers(0, 42 * 24 * 60), st.sampled_from([9 * 24 * 60, 9 * 24 * 60 + 1])),
    st.booleans(),  # an active_use of kind pricing_view (a funnel step named by kind)
)


def build(raw: list[tuple[Any, ...]], start: Any, tag: str = "") -> list[GrowthEvent]:
    out = []
    for i, (type_, product, user, minute, by_kind) in enumerate(raw):
        if user is None and type_ != "session":  # only a session may have no user
            user = "u5"
        extra: dict[str, Any] = {}
        if type_ == "session":
            extra = {"channel": "web", "value": 1 if user else 3}
        elif type_ == "trial_started":
            extra = {"before": 0, "after": 0, "sid": "s1"}
        e = ev(type_, start + timedelta(minutes=minute), user, product=product,
               source_id=f"{tag}{i}", **extra)  # fmt: skip
        if by_kind and type_ == "active_use":
            e = dataclasses.replace(e, kind="pricing_view")
        out.append(e)
    return out


def reference(events: list[GrowthEvent], s: MetricsSettings, until: pd.Timestamp) -> dict[str, pd.DataFrame]:
    """The pandas definitions on the same events."""
    frame = events_to_frame(events) if events else events_to_frame([])
    steps, branches = funnels.funnels(frame, s)
    return {"cohort_retention": cohorts.logo_retention(frame, until, s.timezone),
            "funnel_steps": steps, "funnel_branches": branches}  # fmt: skip


def via_sql(view: LedgerView, start: pd.Timestamp | None, until: pd.Timestamp) -> dict[str, pd.DataFrame]:
    steps, branches = state.funnel_frames(view, start)
    return {"cohort_retention": state.logo_retention(view, start, until),
            "funnel_steps": steps, "funnel_branches": branches}  # fmt: skip


def _keys(name: str) -> list[str]:
    return {"cohort_retention": ["product", "time", "period"],
            "funnel_steps": ["funnel", "product", "time", "step"],
            "funnel_branches": ["funnel", "product", "time", "step", "next"]}[name]  # fmt: skip


def same(got: pd.DataFrame, want: pd.DataFrame, name: str, since: pd.Timestamp | None = None) -> None:
    """Equal frames, values and dtypes, in a canonical row order; ``since`` keeps the
    reference rows an update from that month rewrites."""
    if since is not None and not want.empty:
        col = "period" if name == "cohort_retention" else "time"
        want = want[want[col] >= since]
    keys = _keys(name)
    got = got.sort_values(keys).reset_index(drop=True)
    want = want.sort_values(keys).reset_index(drop=True)
    if want.empty:
        assert got.empty, (name, got)
        return
    pd.testing.assert_frame_equal(got, want, check_exact=True, obj=name)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(event, min_size=1, max_size=40),
    st.sampled_from([(tz, i) for tz, starts in STARTS.items() for i in range(len(starts))]),
)
def test_full_sql_equals_the_pandas_definitions(raw: list[tuple[Any, ...]], zone: tuple[str, int]) -> None:
    tz, i = zone
    s = dataclasses.replace(BASE, timezone=tz)
    events = build(raw, STARTS[tz][i])
    until = pd.Timestamp(max(e.timestamp for e in events)).tz_convert("UTC")
    want = reference(events, s, until)
    with Ledger() as ledger:
        ledger.append(events)
        got = via_sql(LedgerView(ledger, s), None, until)
    for name in want:
        same(got[name], want[name], name)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(event, min_size=2, max_size=40),
    st.sampled_from(["Europe/Berlin", "America/New_York", "UTC"]),
    st.randoms(use_true_random=False),
    st.integers(1, 4),
)
def test_state_folded_from_new_events_equals_the_pandas_definitions(
    raw: list[tuple[Any, ...]], tz: str, rnd: Any, chunks: int
) -> None:
    """Events arrive in chunks in any order (late ones included); after each chunk the
    cells from the earliest new event's month on, from the folded state, equal the
    reference over everything stored so far."""
    s = dataclasses.replace(BASE, timezone=tz)
    events = build(raw, STARTS[tz][0])
    rnd.shuffle(events)
    cuts = sorted(rnd.sample(range(1, len(events)), min(chunks, len(events) - 1)))
    parts = [events[a:b] for a, b in zip([0, *cuts], [*cuts, len(events)], strict=False)]
    stored: list[GrowthEvent] = []
    with Ledger() as ledger:
        last_seq = 0
        for n, part in enumerate(parts):
            ledger.append(part)
            stored += part
            until = pd.Timestamp(max(e.timestamp for e in stored)).tz_convert("UTC")
            first = pd.Timestamp(min(e.timestamp for e in part)).tz_convert("UTC")
            # the earliest month a new event can change: its own, or a funnel window before
            start = None if n == 0 else first - pd.Timedelta(days=3)
            view = LedgerView(ledger, s, last_seq=last_seq)
            got = via_sql(view, start, until)
            last_seq = ledger.max_seq()
            want = reference(stored, s, until)
            since = None if start is None else _month_start(start, tz)
            for name in want:
                same(got[name], want[name], name, since)


def _month_start(at: pd.Timestamp, tz: str) -> pd.Timestamp:
    from growthwatch.metrics._frame import local_floor_at

    return local_floor_at(at, "MS", tz)


def _events_jan() -> list[GrowthEvent]:
    return [ev("signup", "2026-01-05", "a"), ev("active_use", "2026-02-03", "a"),
            ev("signup", "2026-01-20", "b"), ev("activation", "2026-01-21", "b"),
            ev("payment", "2026-01-22", "b")]  # fmt: skip


def _retained(frame: pd.DataFrame, age: str, cohort: str = "2026-01-01") -> int:
    row = frame[(frame["product"] == "p1") & (frame["age"] == age)
                & (frame["time"] == pd.Timestamp(cohort, tz="UTC"))]  # fmt: skip
    return int(row["retained"].iloc[0])


def test_the_state_is_what_an_update_reads_and_a_mismatched_seq_rebuilds_it() -> None:
    """An update reads the state and folds into it from the state's own seq, whether it
    covers more than the engine processed or less (the engine passed the family by: a
    tampered state shows); one of another time zone, or ahead of the ledger, is rebuilt."""
    until = pd.Timestamp("2026-02-10", tz="UTC")
    with Ledger() as ledger:
        ledger.append(_events_jan())
        seq = ledger.max_seq()
        full = state.logo_retention(LedgerView(ledger, BASE), None, until)
        assert _retained(full, "1") == 1  # a is active in February
        ledger.connection.execute("UPDATE state_cohorts_cells SET users = 100 "
                                  "WHERE month IS NOT NULL")  # tamper  # fmt: skip
        ledger.append([ev("active_use", "2026-02-05", "b")])
        folded = state.logo_retention(LedgerView(ledger, BASE, last_seq=seq), until, until)
        assert _retained(folded, "1") == 101  # b's new month on the tampered state it read
        again = state.logo_retention(LedgerView(ledger, BASE, last_seq=seq), until, until)
        assert _retained(again, "1") == 101  # it covers more than the engine saw: kept
        ledger.append([ev("signup", "2026-03-01", "c")])
        behind = LedgerView(ledger, BASE, last_seq=ledger.max_seq())  # passed by
        folded = state.logo_retention(behind, until, until)
        assert _retained(folded, "1") == 101  # covering less: folded from its own seq
        sizes = state.logo_retention(behind, None, until)  # a full run rebuilds
        assert _retained(sizes, "1") == 2
        berlin = dataclasses.replace(BASE, timezone="Europe/Berlin")
        (meta,) = ledger.connection.execute("SELECT seq FROM state_cohorts_meta").fetchone()
        other = state.logo_retention(LedgerView(ledger, berlin, last_seq=meta), until, until)
        assert _retained(other, "1", "2025-12-31 23:00") == 2  # rebuilt in Berlin months


def test_funnel_state_survives_a_restart_and_rebuilds_after_a_config_change(tmp_path) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "ledger.duckdb"
    with Ledger(path) as ledger:
        ledger.append(_events_jan())
        steps, _ = state.funnel_frames(LedgerView(ledger, BASE), None)
        seq = ledger.max_seq()
    with Ledger(path) as ledger:  # a restart: the state is in the file
        (users,) = ledger.connection.execute(
            "SELECT count(*) FROM state_funnels_users WHERE funnel = 'paid'").fetchone()  # fmt: skip
        assert users == 2  # a and b entered (signups)
        ledger.append([ev("activation", "2026-01-06", "a"), ev("payment", "2026-01-07", "a")])
        later, _ = state.funnel_frames(LedgerView(ledger, BASE, last_seq=seq), t("2026-01-06"))
        paid = later[(later["funnel"] == "paid") & (later["product"] == "p1")]
        assert paid.set_index("step")["users"].to_dict() == {
            "1:signup": 2, "2:activation": 2, "3:payment": 2}  # fmt: skip
        changed = dataclasses.replace(
            BASE, funnels=(Funnel("paid", ("signup", "payment"), window_days=1),))
        (meta,) = ledger.connection.execute("SELECT seq FROM state_funnels_meta").fetchone()
        steps, _ = state.funnel_frames(LedgerView(ledger, changed, last_seq=meta), t("2026-01-06"))
        # a and b paid 2 days after signing up: outside the new 1-day window (the old
        # state, from a 3-day window, had both): the state was rebuilt
        mine = steps[steps["product"] == "p1"].set_index("step")["users"].to_dict()
        assert mine == {"1:signup": 2, "2:payment": 0}
        assert set(ledger.connection.execute(
            "SELECT DISTINCT funnel FROM state_funnels_users").fetchall()) == {("paid",)}  # fmt: skip


def test_failed_pass_leaves_the_state_as_it_was() -> None:
    with Ledger() as ledger:
        ledger.append(_events_jan())
        state.logo_retention(LedgerView(ledger, BASE), None, None)
        before = ledger.connection.execute("SELECT * FROM state_cohorts_meta").fetchall()
        ledger.append([ev("signup", "2026-01-30", "c")])
        broken = LedgerView(ledger, dataclasses.replace(BASE, timezone="Not/AZone"))
        with pytest.raises(Exception, match=r"Not/AZone|time zone|timezone"):
            state.logo_retention(broken, None, None)
        assert ledger.connection.execute("SELECT * FROM state_cohorts_meta").fetchall() == before


def test_left_out_products_are_left_out_of_the_state() -> None:
    events = [*_events_jan(), ev("signup", "2026-01-09", "z", product="p9")]
    with Ledger() as ledger:
        ledger.append(events)
        got = state.logo_retention(LedgerView(ledger, BASE, exclude=["p9"]), None, None)
        frame = read_events(ledger, ["signup", "active_use"], exclude=["p9"])
        want = cohorts.logo_retention(frame, None, "UTC")
        same(got, want, "cohort_retention")
        assert "p9" not in set(got["product"])
        assert got["time"].dtype == TIME_DTYPE


def _bulk_ledger(path: Any, n: int) -> None:
    """``n`` events straight into the events table by SQL (a Python frame of them would
    cost more than the test): signups, activations, payments and active use of n/5
    users over five months, three products."""
    kind = ("CASE WHEN i % 20 = 0 THEN 'signup' WHEN i % 20 = 1 THEN 'activation' "
            "WHEN i % 20 = 2 THEN 'payment' ELSE 'active_use' END")  # fmt: skip
    with Ledger(path) as ledger:
        ledger.connection.execute(
            "INSERT INTO events (idempotency_key, product, type, ts, value, subject, source, "
            f"source_id, kind, ingested_at) SELECT CAST(md5(CAST(i AS VARCHAR)) AS UUID), "
            f"'p' || (i % 3), {kind}, TIMESTAMPTZ '2026-01-01 00:00:00+00' "
            "+ to_seconds((i * 7919) % (86400 * 150)), 1, 'u' || ((i * 2654435761) % "
            f"{n // 5}), 't', CAST(i AS VARCHAR), {kind}, now() FROM range({n}) AS t(i)"
        )  # fmt: skip


@pytest.mark.slow
def test_a_tight_duckdb_memory_limit_spills_and_gives_identical_frames(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """500,000 events, DuckDB held to 24 MB: with DuckDB's spill directory the full run
    gives the same frames as without a limit. The state builds run in partitions of the
    users there (``state._parts``), so every funnel fits, the one over every active use
    included (in one piece it did not, even spilling; that the limit binds is
    ``test_state_memory``'s)."""
    path = tmp_path / "ledger.duckdb"
    _bulk_ledger(path, 500_000)
    s = dataclasses.replace(BASE, timezone="Europe/Berlin")

    def run(*setup: str) -> dict[str, pd.DataFrame]:
        with Ledger(path) as ledger:
            for statement in setup:
                ledger.connection.execute(statement)
            return via_sql(LedgerView(ledger, s), None, None)  # type: ignore[arg-type]

    free = run()
    assert free["funnel_steps"]["users"].sum() > 0 and len(free["cohort_retention"]) > 10
    tight = run("SET memory_limit = '24MB'")
    for name, frame in free.items():
        pd.testing.assert_frame_equal(tight[name], frame, check_exact=True, obj=name)


def test_frames_do_not_depend_on_chunk_events() -> None:
    """The issue-#15 contract: a full run's results are the same whatever
    ``MetricsSettings.chunk_events`` is; the SQL path holds no event frame at all."""
    if "chunk_events" not in {f.name for f in dataclasses.fields(MetricsSettings)}:
        pytest.skip("MetricsSettings.chunk_events comes with the engine's chunked recompute")
    events = build([(k, p, u, m * 997 % (40 * 24 * 60), False) for m, (k, p, u) in enumerate(
        (k, p, u) for k in TYPES for p in ("p1", "p2", "p3") for u in ("u1", "u2", "u3"))],
        STARTS["Europe/Berlin"][0])  # fmt: skip
    until = pd.Timestamp(max(e.timestamp for e in events)).tz_convert("UTC")
    s = dataclasses.replace(BASE, timezone="Europe/Berlin")
    with Ledger() as ledger:
        ledger.append(events)
        big = via_sql(LedgerView(ledger, s), None, until)
        tiny = via_sql(LedgerView(ledger, dataclasses.replace(s, chunk_events=50)), None, until)  # type: ignore[call-arg]
    for name, frame in big.items():
        pd.testing.assert_frame_equal(tiny[name], frame, check_exact=True, obj=name)
        same(frame, reference(events, s, until)[name], name)


def test_a_funnel_update_reads_only_the_touched_users_state() -> None:
    """The fold counts from the kept cells changed by the users its events touch: an
    untouched user's state row is never read (tampering with it shows in no count), so
    the update's cost does not grow with the users of the month; a touched user's is."""
    with Ledger() as ledger:
        ledger.append(_events_jan())  # a and b signed up in January (p1)
        state.funnel_frames(LedgerView(ledger, BASE), None)
        seq = ledger.max_seq()
        # b's row says b stalled at signup; the counts kept say b reached payment
        ledger.connection.execute("UPDATE state_funnels_users SET last_step = 0, next = 'refund' "
                                  "WHERE funnel = 'paid' AND subject = 'b'")  # fmt: skip
        ledger.append([ev("signup", "2026-01-25", "c"), ev("activation", "2026-01-26", "c")])
        steps, branches = state.funnel_frames(LedgerView(ledger, BASE, last_seq=seq),
                                              t("2026-01-25"))  # fmt: skip
        paid = steps[(steps["funnel"] == "paid") & (steps["product"] == "p1")]
        # a (signup), b (payment, as counted), c (activation): b's tampered row unread
        assert paid.set_index("step")["users"].to_dict() == {
            "1:signup": 3, "2:activation": 2, "3:payment": 1}  # fmt: skip
        assert branches.loc[branches["next"].astype(str) == "refund", "users"].sum() == 0
        seq = ledger.max_seq()
        # a touched user's row is read: a's payment within the window follows a again
        ledger.append([ev("activation", "2026-01-06", "a"), ev("payment", "2026-01-07", "a")])
        steps, _ = state.funnel_frames(LedgerView(ledger, BASE, last_seq=seq), t("2026-01-06"))
        paid = steps[(steps["funnel"] == "paid") & (steps["product"] == "p1")]
        assert paid.set_index("step")["users"].to_dict() == {
            "1:signup": 3, "2:activation": 3, "3:payment": 2}  # fmt: skip


def test_a_fold_that_follows_no_one_counts_nothing() -> None:
    """An event of a funnel's types that moves no user (a payment of a customer in no
    funnel's window) leaves the state as it was: ``changed_funnel_frames`` says so (None:
    the series written last are right) and reads no ledger events; one that moves a user,
    or a state that covers other than what the engine last processed, gives the frames."""
    with Ledger() as ledger:
        ledger.append(_events_jan())
        state.funnel_frames(LedgerView(ledger, BASE), None)
        seq = ledger.max_seq()
        before = ledger.connection.execute(
            "SELECT * FROM state_funnels_cells ORDER BY ALL").fetchall()  # fmt: skip
        ledger.append([ev("payment", "2026-02-20", "zz")])  # zz never signed up
        assert state.changed_funnel_frames(LedgerView(ledger, BASE, last_seq=seq),
                                           t("2026-02-20")) is None  # fmt: skip
        assert ledger.connection.execute(
            "SELECT * FROM state_funnels_cells ORDER BY ALL").fetchall() == before  # fmt: skip
        seq2 = ledger.max_seq()
        ledger.append([ev("payment", "2026-02-21", "zz")])
        # the engine saw less than the state covers (a failed write): the frames again
        got = state.changed_funnel_frames(LedgerView(ledger, BASE, last_seq=seq), t("2026-02-21"))
        assert got is not None
        ledger.append([ev("signup", "2026-02-22", "d")])
        got = state.changed_funnel_frames(LedgerView(ledger, BASE, last_seq=ledger.max_seq() - 1),
                                          t("2026-02-22"))  # fmt: skip
        assert got is not None and seq2 < ledger.max_seq()
        feb = got[0][(got[0]["funnel"] == "one") & (got[0]["product"] == "p1")
                     & (got[0]["time"] == pd.Timestamp("2026-02-01", tz="UTC"))]  # fmt: skip
        assert feb["users"].tolist() == [1]  # d entered the one-step funnel in February
