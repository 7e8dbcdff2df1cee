"""User lifecycle: hand-computed new / returning / resurrected / dormant per day and week."""

from __future__ import annotations

import pandas as pd
import pytest
from metric_cases import ev, frame

from growthwatch.metrics.lifecycle import COUNTS, lifecycle
from growthwatch.metrics.settings import MetricsSettings

S = MetricsSettings()


def active(*pairs: tuple[str, str], product: str = "p1") -> list[object]:
    return [ev("active_use", when, user, product=product) for user, when in pairs]


def daily_cases() -> pd.DataFrame:
    """u1 on Jan 1, 2, 4, 5; u2 on Jan 2, 3; u3 on Jan 1 and twice on Jan 5."""
    return frame(*active(
        ("u1", "2026-01-01 09:00"), ("u1", "2026-01-02 09:00"), ("u1", "2026-01-04 09:00"),
        ("u1", "2026-01-05 09:00"), ("u2", "2026-01-02 10:00"), ("u2", "2026-01-03 10:00"),
        ("u3", "2026-01-01 11:00"), ("u3", "2026-01-05 11:00"), ("u3", "2026-01-05 12:00"),
    ))  # fmt: skip


def rows(out: pd.DataFrame, product: str = "p1") -> dict[str, tuple[int, ...]]:
    mine = out[out["product"] == product]
    return {
        when.strftime("%m-%d"): tuple(int(r[c]) for c in COUNTS)
        for when, (_, r) in zip(mine["time"], mine.iterrows(), strict=True)
    }


# (active, new, returning, resurrected, dormant), worked out day by day:
DAILY = {
    "01-01": (2, 2, 0, 0, 0),  # u1, u3 first seen
    "01-02": (2, 1, 1, 0, 1),  # u2 new, u1 returning; u3 went dormant
    "01-03": (1, 0, 1, 0, 1),  # u2 returning; u1 dormant
    "01-04": (1, 0, 0, 1, 1),  # u1 back after a gap: resurrected; u2 dormant
    "01-05": (2, 0, 1, 1, 0),  # u1 returning, u3 resurrected (twice that day: once)
    "01-06": (0, 0, 0, 0, 2),  # nobody: u1 and u3 dormant
}


def test_daily_lifecycle_by_hand() -> None:
    out = lifecycle(daily_cases(), S, "day", pd.Timestamp("2026-01-06 12:00", tz="UTC"))
    assert rows(out) == DAILY


def test_identities_hold_on_every_day() -> None:
    out = lifecycle(daily_cases(), S, "day", pd.Timestamp("2026-01-06", tz="UTC"))
    mine = out[out["product"] == "p1"].reset_index(drop=True)
    parts = mine["new"] + mine["returning"] + mine["resurrected"]
    assert parts.equals(mine["active"])
    expected_dormant = mine["active"].shift(1, fill_value=0) - mine["returning"]
    assert mine["dormant"].equals(expected_dormant)


def test_weekly_lifecycle_uses_iso_weeks_starting_monday() -> None:
    # Jan 1 2026 is a Thursday: ISO weeks start Dec 29, Jan 5, Jan 12, Jan 19, Jan 26.
    events = frame(*active(
        ("u1", "2026-01-01 09:00"), ("u1", "2026-01-06 09:00"), ("u1", "2026-01-20 09:00"),
        ("u2", "2026-01-04 23:00"), ("u2", "2026-01-13 09:00"), ("u3", "2026-01-12 00:00"),
    ))  # fmt: skip
    out = lifecycle(events, S, "week", pd.Timestamp("2026-01-26 08:00", tz="UTC"))
    assert rows(out) == {
        "12-29": (2, 2, 0, 0, 0),  # u1 (Thu) and u2 (Sun) in the same week
        "01-05": (1, 0, 1, 0, 1),  # u1 returning, u2 dormant
        "01-12": (2, 1, 0, 1, 1),  # u3 new, u2 resurrected, u1 dormant
        "01-19": (1, 0, 0, 1, 2),  # u1 resurrected; u2, u3 dormant
        "01-26": (0, 0, 0, 0, 1),  # u1 dormant
    }
    assert out["time"].iloc[0] == pd.Timestamp("2025-12-29", tz="UTC")


def test_weeks_and_days_follow_the_reporting_timezone() -> None:
    berlin = MetricsSettings(timezone="Europe/Berlin")
    # Sunday 23:30 UTC is Monday 00:30 in Berlin: the week of Jan 5
    out = lifecycle(frame(*active(("u1", "2026-01-04 23:30"))), berlin, "week")
    assert list(out["time"].unique()) == [pd.Timestamp("2026-01-04 23:00", tz="UTC")]


def test_firsts_make_a_recent_slice_agree_with_the_full_history() -> None:
    full = lifecycle(daily_cases(), S, "day", pd.Timestamp("2026-01-06", tz="UTC"))
    events = daily_cases()
    firsts = events.groupby(["product", "subject"], as_index=False)["ts"].min()
    recent = events[events["ts"] >= pd.Timestamp("2026-01-04", tz="UTC")]
    part = lifecycle(recent, S, "day", pd.Timestamp("2026-01-06", tz="UTC"),
                     firsts.rename(columns={"ts": "first"}))  # fmt: skip
    # the slice starts one period before the rows it gets right (Jan 4 lacks Jan 3)
    want = {k: v for k, v in rows(full).items() if k >= "01-05"}
    assert {k: v for k, v in rows(part).items() if k >= "01-05"} == want
    # without firsts u3 would look new on Jan 5
    naive = rows(lifecycle(recent, S, "day", pd.Timestamp("2026-01-06", tz="UTC")))
    assert naive["01-05"][1] == 1


def test_portfolio_sums_products() -> None:
    events = pd.concat([daily_cases(), frame(*active(("u1", "2026-01-03 09:00"), product="p2"))])
    out = rows(lifecycle(events, S, "day", pd.Timestamp("2026-01-06", tz="UTC")), "all")
    assert out["01-03"] == (2, 1, 1, 0, 1)  # p1's u2 returning + p2's u1 new; p1's u1 dormant
    assert out["01-04"] == (1, 0, 0, 1, 2)  # p2's u1 dormant too


def test_no_activity_gives_an_empty_frame_and_bad_period_is_named() -> None:
    assert lifecycle(frame(ev("signup", "2026-01-01", "u1")), S, "day").empty
    with pytest.raises(ValueError, match="month"):
        lifecycle(daily_cases(), S, "month")


def test_a_trimmed_ledger_keeps_each_users_first_activity() -> None:
    """Retention deletes old ``active_use`` but keeps each user's first one, so a user
    back after the trim boundary is resurrected, not new."""
    from growthwatch.stores.ledger import Ledger

    def trimmed(keep_first: bool) -> dict[str, tuple[int, ...]]:
        with Ledger() as ledger:
            ledger.append(active(("u1", "2026-01-02 09:00"), ("u1", "2026-01-03 09:00"),
                                 ("u1", "2026-03-05 09:00"), ("u2", "2026-01-10 09:00")))  # fmt: skip
            cut = pd.Timestamp("2026-03-01", tz="UTC").to_pydatetime()
            gone = ledger.delete_before(cut, keep_first_of=["active_use"] if keep_first else ())
            assert gone == (1 if keep_first else 3)  # u1's Jan 3 (or every old one)
            return rows(lifecycle(ledger.read(), S, "day"))

    assert trimmed(True)["03-05"] == (1, 0, 0, 1, 0)  # resurrected
    assert trimmed(False)["03-05"] == (1, 1, 0, 0, 0)  # what a plain trim would make of it
