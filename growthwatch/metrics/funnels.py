"""Ordered funnels with a conversion window, step conversion, drop-off and branches.

Definition (METRICS.md, as Mixpanel's and Amplitude's ordered funnels): a user enters at
their first step-1 event ever (a user counts once per funnel); step k is reached at the
first step-k event at or after the time step k-1 was reached and within ``window_days`` of
entry. Other events may happen between steps. Users are grouped by entry month, so each
month's funnel is final once its window has passed.

Branches answer "where did they go instead": for users who reached step k but not k+1,
the first event of a branch type (``settings.branch_types`` plus the funnel's own steps)
after step k and within the window, or ``(none)``. Every (step, branch) cell in the grid
is written, zeros included, so a recompute always overwrites what it wrote before.

Steps name event types (``signup``) or event kinds (a source's own finer names). Events
without a subject (aggregate sessions) cannot be followed per user and are ignored here;
the traffic metrics cover them.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from growthwatch.metrics._frame import TIME_DTYPE, clean, empty, local_floor, ratio, with_portfolio
from growthwatch.metrics.settings import Funnel, MetricsSettings

NONE = "(none)"
STEP_COLUMNS = {
    "time": TIME_DTYPE,  # entry month
    "product": "str",
    "funnel": "str",
    "step": "str",  # "1:visit" ... (ordered, low cardinality)
    "users": "int64",
    "conversion": "float64",  # from step 1
    "step_conversion": "float64",  # from the previous step
    "dropoff": "int64",  # users of the previous step who did not reach this one
}
BRANCH_COLUMNS = {
    "time": TIME_DTYPE,
    "product": "str",
    "funnel": "str",
    "step": "str",  # the step users reached before leaving
    "next": "str",  # what they did instead
    "users": "int64",
}


def funnel_types(funnel: Funnel, settings: MetricsSettings) -> tuple[str, ...]:
    """Event types (or kinds) whose events a funnel needs, for reading only those."""
    return tuple(dict.fromkeys([*funnel.steps, *settings.branch_types]))


def _label(funnel: Funnel, k: int) -> str:
    return f"{k + 1}:{funnel.steps[k]}"


def funnel_steps(
    events: pd.DataFrame, funnel: Funnel, settings: MetricsSettings
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(steps, branches) frames for one funnel, per product (and ``all``) and entry month."""
    wanted = set(funnel_types(funnel, settings))
    ev = clean(events)
    ev = ev[ev["subject"].notna() & (ev["type"].isin(wanted) | ev["kind"].isin(wanted))]
    if ev.empty:
        return empty(STEP_COLUMNS), empty(BRANCH_COLUMNS)
    ev = ev[["product", "subject", "ts", "type", "kind", "idempotency_key"]]
    window = pd.Timedelta(days=funnel.window_days)

    def step_events(name: str) -> pd.DataFrame:
        return ev[(ev["type"] == name) | (ev["kind"] == name)][["product", "subject", "ts"]]

    entry = step_events(funnel.steps[0]).groupby(["product", "subject"], as_index=False)["ts"].min()
    entry = entry.rename(columns={"ts": "t0"})
    entry["reached"] = entry["t0"]
    entry["last_step"] = 0
    users = entry.set_index(["product", "subject"])
    for k in range(1, len(funnel.steps)):
        cand = step_events(funnel.steps[k]).merge(
            users[users["last_step"] == k - 1].reset_index()[["product", "subject", "t0",
                                                             "reached"]],
            on=["product", "subject"],
        )  # fmt: skip
        cand = cand[(cand["ts"] >= cand["reached"]) & (cand["ts"] <= cand["t0"] + window)]
        hit = cand.groupby(["product", "subject"])["ts"].min()
        users.loc[hit.index, "reached"] = hit.to_numpy()
        users.loc[hit.index, "last_step"] = k
    users = users.reset_index()
    users["month"] = local_floor(users["t0"].astype(TIME_DTYPE), "MS", settings.timezone)

    counts = users.groupby(["product", "month"])["last_step"].value_counts().unstack(fill_value=0)
    steps = step_cells(counts, funnel)
    branches = _branches(ev, users, funnel, settings, window)
    return steps, branches


def step_cells(counts: pd.DataFrame, funnel: Funnel) -> pd.DataFrame:
    """The steps frame from the users per (product, entry month) and last step reached
    (one column per step index), which the pandas definition and the SQL one
    (``growthwatch.metrics.sql``) both produce."""
    n = len(funnel.steps)
    if counts.empty:
        return empty(STEP_COLUMNS)
    counts = counts.reindex(columns=range(n), fill_value=0)
    reached = counts.iloc[:, ::-1].cumsum(axis=1).iloc[:, ::-1]  # users reaching >= k
    rows = []
    for k in range(n):
        part = reached[k].rename("users").reset_index()
        part["step"] = _label(funnel, k)
        part["_k"] = k
        rows.append(part)
    steps = pd.concat(rows, ignore_index=True).rename(columns={"month": "time"})
    steps["funnel"] = funnel.name
    steps = with_portfolio(steps, ["time", "step", "_k", "funnel"], ["users"])
    steps = steps.sort_values(["product", "time", "_k"], kind="stable").reset_index(drop=True)
    grp = steps.groupby(["product", "time"], sort=False)["users"]
    first = grp.transform("first")
    prev = grp.shift(1)
    steps["conversion"] = ratio(steps["users"], first)
    steps["step_conversion"] = np.where(steps["_k"] == 0, np.nan, ratio(steps["users"], prev))
    steps["dropoff"] = (prev.fillna(steps["users"]) - steps["users"]).astype("int64")
    steps["users"] = steps["users"].astype("int64")
    steps = steps[list(STEP_COLUMNS)]
    steps["time"] = steps["time"].astype(TIME_DTYPE)
    return steps


def _branches(
    ev: pd.DataFrame,
    users: pd.DataFrame,
    funnel: Funnel,
    settings: MetricsSettings,
    window: pd.Timedelta,
) -> pd.DataFrame:
    n = len(funnel.steps)
    stalled = users[users["last_step"] < n - 1]
    if n < 2 or users.empty:
        return empty(BRANCH_COLUMNS)
    cand = ev.merge(stalled[["product", "subject", "t0", "reached", "last_step"]],
                    on=["product", "subject"])  # fmt: skip
    step_name = np.asarray(funnel.steps, dtype=object)[cand["last_step"].to_numpy()]
    cand = cand[
        (cand["ts"] > cand["reached"])
        & (cand["ts"] <= cand["t0"] + window)
        & (cand["type"].to_numpy() != step_name)
    ]
    cand = cand.sort_values(["ts", "idempotency_key"], kind="stable")
    nxt = cand.groupby(["product", "subject"])["type"].first()
    stalled = stalled.set_index(["product", "subject"])
    stalled["next"] = nxt.reindex(stalled.index).fillna(NONE).astype(str)
    stalled = stalled.reset_index()
    counts = stalled.groupby(["product", "month", "last_step", "next"]).size()
    have = users.groupby(["product", "month"]).size().index
    return branch_cells(counts, have, funnel, settings)


def branch_cells(
    counts: pd.Series, have: pd.MultiIndex, funnel: Funnel, settings: MetricsSettings
) -> pd.DataFrame:
    """The branches frame from the stalled users per (product, entry month, last step,
    next type) and the (product, entry month) pairs with entries (``have``)."""
    n = len(funnel.steps)
    if n < 2 or not len(have):
        return empty(BRANCH_COLUMNS)
    options = sorted({*settings.branch_types, *funnel.steps} | {NONE})
    # Every cell, zeros included, even when nobody stalled: a recompute must be able to
    # overwrite a branch count that has dropped to 0.
    cells = pd.MultiIndex.from_product(
        [sorted(have.get_level_values(0).unique()), sorted(have.get_level_values(1).unique()),
         range(n - 1), options],
        names=["product", "month", "last_step", "next"],
    )  # fmt: skip
    grid = counts.reindex(cells, fill_value=0).rename("users").reset_index()
    grid = grid[pd.MultiIndex.from_frame(grid[["product", "month"]]).isin(have)]
    grid["step"] = [_label(funnel, k) for k in grid["last_step"]]
    grid = grid.rename(columns={"month": "time"})
    grid["funnel"] = funnel.name
    grid = with_portfolio(grid, ["time", "step", "next", "funnel"], ["users"])
    grid["users"] = grid["users"].astype("int64")
    grid["time"] = grid["time"].astype(TIME_DTYPE)
    return grid[list(BRANCH_COLUMNS)].reset_index(drop=True)


def funnels(
    events: pd.DataFrame, settings: MetricsSettings
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """All configured funnels: (steps, branches), concatenated."""
    parts = [funnel_steps(events, f, settings) for f in settings.funnels]
    if not parts:
        return empty(STEP_COLUMNS), empty(BRANCH_COLUMNS)
    return (
        pd.concat([p[0] for p in parts], ignore_index=True),
        pd.concat([p[1] for p in parts], ignore_index=True),
    )
