"""Product analytics per day: signups, activations, activation rate, DAU/WAU/MAU, stickiness.

Definitions (METRICS.md, as Mixpanel and Amplitude use them):

* DAU / WAU / MAU on day d: distinct users with at least one ``active_use`` event in the
  rolling 1 / 7 / 30 days ending with d. Stickiness = DAU / MAU.
* signups on day d: distinct users with a ``signup`` event that day.
* activation rate of the day-d signup cohort: those users with an ``activation`` event
  within N days (``activation_window_days``) after their signup / the cohort. A cohort
  whose window has not closed by ``until`` is still maturing: ``maturing`` = 1 on its rows
  (a dashboard greys them out); they are rewritten as activations come.
* Days are days of the reporting timezone (``settings.timezone``).

Rolling distinct counts are computed without a per-day loop: each user-day of activity
covers the window's days from it that the user's previous active day did not already
cover; +1/-1 at the ends of those intervals and a cumulative sum give every day's count in
one pass (O(events), not O(days x users)). Looking only back, an interval never changes
when later days arrive: the engine's rollup stores each day's previous one and counts in
SQL (``growthwatch.metrics.sql.activity``).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from growthwatch.events import EventType
from growthwatch.metrics._frame import (
    TIME_DTYPE,
    clean,
    day_starts,
    empty,
    local_day_numbers,
    naive_utc,
    ratio,
    with_portfolio,
)
from growthwatch.metrics.settings import MetricsSettings

TYPES = (EventType.ACTIVE_USE.value, EventType.SIGNUP.value, EventType.ACTIVATION.value)
WINDOWS = {"dau": 1, "wau": 7, "mau": 30}
COUNTS = ("signups", "activations", "activated", "dau", "wau", "mau")
COLUMNS = {"time": TIME_DTYPE, "product": "str", **dict.fromkeys(COUNTS, "int64"),
           "maturing": "int64", "activation_rate": "float64",
           "stickiness": "float64"}  # fmt: skip


def product_daily(
    events: pd.DataFrame,
    settings: MetricsSettings,
    until: pd.Timestamp | None = None,
    first_days: pd.Series | None = None,
    edges: pd.DataFrame | None = None,
    counts: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """Per product (and ``all``) and day, from the product's first such event to ``until``.

    ``first_days`` (product -> first day with such events in the whole history) lets a
    caller that passes only recent events still get every product's full day grid.
    ``edges`` (``rolling_edges``' columns), when given, are the active users' interval
    edges computed elsewhere (the engine's SQL over the rollup, ``sql/activity.py``)
    and ``events`` then need no ``active_use`` rows: the volume stays in DuckDB.
    ``counts`` (``sql.signup_counts.COLUMNS``), when given, are the signups',
    activations' and activated signups' counts per product and day computed there too,
    and ``events`` need no ``signup`` or ``activation`` rows either.
    """
    tz = settings.timezone

    def _day_numbers(ts: pd.Series) -> np.ndarray:
        return local_day_numbers(ts.astype(TIME_DTYPE), tz)

    ev = clean(events, TYPES, ordered=False)  # distinct users per day: order is irrelevant
    ev = ev[ev["subject"].notna()]
    known = [] if first_days is None else list(first_days.index)
    active_days = None if edges is None else edges.loc[edges["dau"] > 0, ["product", "day"]]
    if counts is not None:  # the signups' and activations' days, from their counts
        ev = ev[ev["type"] == EventType.ACTIVE_USE.value]
        days_of_counts = counts[["product", "day"]]
        active_days = (days_of_counts if active_days is None
                       else pd.concat([days_of_counts, active_days], ignore_index=True))  # fmt: skip
    if ev.empty and not known and (active_days is None or active_days.empty):
        return empty(COLUMNS)
    day = _day_numbers(ev["ts"])
    names = ev["product"].to_numpy(dtype=object)
    if active_days is not None:  # the active users' days, from their edges
        day = np.concatenate([day, active_days["day"].to_numpy(dtype="int64")])
        names = np.concatenate([names, active_days["product"].to_numpy(dtype=object)])
    products = pd.Index(sorted({*pd.unique(names), *known}))
    codes = products.get_indexer(names)
    last_days = [int(day.max())] if len(day) else []
    if until is not None:
        last_days.append(int(_day_numbers(pd.Series([until]))[0]))
    end_day = max(last_days)
    seen = pd.Series(day).groupby(codes).min()
    n_ev = len(ev)  # the events' own rows of ``day`` and ``codes`` (the rest: active days)
    day, codes = day[:n_ev], codes[:n_ev]
    # A product's grid starts at its first day; one whose first day (from ``first_days``,
    # which may hold the whole history) lies after ``end_day`` has no row at all. Clamping
    # it to ``end_day`` would invent a row before the product existed: a time chunk ending
    # inside a local day (UTC-day chunks in a zone east of UTC) then writes it, and no
    # later chunk rewrites it, where the one-piece run has no such row.
    first = np.full(len(products), end_day + 1, dtype="int64")
    first[seen.index.to_numpy()] = seen.to_numpy()
    if first_days is not None:
        given = _day_numbers(pd.Series(first_days.to_numpy()).astype(TIME_DTYPE))
        pos = products.get_indexer(first_days.index)
        first[pos] = np.minimum(first[pos], given)
    start_day = min(int(first.min()), end_day)
    n_days = end_day - start_day + 1
    grid = np.zeros((len(products), n_days, len(COUNTS)), dtype="int64")
    kind = ev["type"].to_numpy()
    user = pd.factorize(ev["subject"])[0]  # ints: cheaper to sort, merge and de-duplicate

    if edges is None:
        active = kind == EventType.ACTIVE_USE.value
        edges = rolling_edges(ev["product"].to_numpy()[active], user[active], day[active])
    if not edges.empty:
        at = edges["day"].to_numpy(dtype="int64") - start_day
        p = products.get_indexer(edges["product"])
        reach = n_days + max(WINDOWS.values()) + 1  # a stop edge lies up to 30 days on
        for name in WINDOWS:
            delta = np.zeros((len(products), reach), dtype="int64")
            np.add.at(delta, (p, at), edges[name].to_numpy(dtype="int64"))
            grid[:, :, COUNTS.index(name)] = np.cumsum(delta, axis=1)[:, :n_days]

    if counts is not None and len(counts):
        at = (products.get_indexer(counts["product"].to_numpy(dtype=object)),
              counts["day"].to_numpy(dtype="int64") - start_day)
        for name in ("signups", "activations", "activated"):
            np.add.at(grid[:, :, COUNTS.index(name)], at, counts[name].to_numpy(dtype="int64"))
    signup = kind == EventType.SIGNUP.value
    s = pd.DataFrame({"p": codes[signup], "u": user[signup],
                      "d": day[signup], "ts": naive_utc(ev["ts"])[signup]})  # fmt: skip
    cohort = s.drop_duplicates(["p", "u", "d"])
    np.add.at(grid[:, :, COUNTS.index("signups")], (cohort["p"], cohort["d"] - start_day), 1)
    act = kind == EventType.ACTIVATION.value
    a = pd.DataFrame({"p": codes[act], "u": user[act], "d": day[act],
                      "ts": naive_utc(ev["ts"])[act]})  # fmt: skip
    a_users = a.drop_duplicates(["p", "u", "d"])
    np.add.at(grid[:, :, COUNTS.index("activations")], (a_users["p"], a_users["d"] - start_day), 1)
    if len(s) and len(a):
        pairs = s.merge(a[["p", "u", "ts"]], on=["p", "u"], suffixes=("", "_act"))
        lag = pairs["ts_act"] - pairs["ts"]
        window = pd.Timedelta(days=settings.activation_window_days)
        ok = pairs[(lag >= pd.Timedelta(0)) & (lag <= window)].drop_duplicates(["p", "u", "d"])
        np.add.at(grid[:, :, COUNTS.index("activated")], (ok["p"], ok["d"] - start_day), 1)

    days = day_starts(np.arange(start_day, end_day + 1), tz)
    out = pd.DataFrame(
        grid.reshape(-1, len(COUNTS)), columns=list(COUNTS)
    ).assign(
        time=np.tile(naive_utc(days), len(products)),
        product=np.repeat(np.asarray(products, dtype=object), n_days),
        _day=np.tile(np.arange(start_day, end_day + 1), len(products)),
        _first=np.repeat(first, n_days),
    )
    out = out[out["_day"] >= out["_first"]].drop(columns=["_day", "_first"])
    out["time"] = pd.to_datetime(out["time"], utc=True).astype(TIME_DTYPE)
    out = with_portfolio(out, ["time"], list(COUNTS))
    # A day-d cohort is final once day d + N has ended (its last signup's window closed).
    closes = day_starts(_day_numbers(out["time"]) + settings.activation_window_days + 1, tz)
    horizon = day_starts(np.array([end_day + 1]), tz).iloc[0] if until is None else until
    out["maturing"] = (naive_utc(closes) > naive_utc(pd.Series([horizon]).astype(TIME_DTYPE))[0]
                       ).astype("int64")  # fmt: skip
    out["activation_rate"] = ratio(out["activated"], out["signups"])
    out["stickiness"] = ratio(out["dau"], out["mau"])
    return out[list(COLUMNS)].reset_index(drop=True)


def rolling_edges(products: np.ndarray, users: np.ndarray, days: np.ndarray) -> pd.DataFrame:
    """The +1/-1 edges of every active user-day's intervals, summed per (product, day):
    columns product, day (local day number), dau, wau, mau (the change of each count on
    that day). A user counts on day x for a window of w days when one of their active days
    is in [x - w + 1, x]: the union of the intervals [d, d + w) of their days, summed as the
    disjoint pieces [max(d, prev + w), d + w), ``prev`` being the user's active day before
    d. The rollup's SQL (``growthwatch.metrics.sql.activity_queries.rolling_edges``) is the
    same, with ``prev`` stored on each day's row."""
    user_days = pd.DataFrame({"product": products, "u": users, "d": days}).drop_duplicates()
    if user_days.empty:
        return pd.DataFrame({"product": pd.Series(dtype=object),
                             **{c: pd.Series(dtype="int64") for c in ("day", *WINDOWS)}})  # fmt: skip
    user_days = user_days.sort_values(["product", "u", "d"], kind="stable")
    p, u = user_days["product"].to_numpy(), user_days["u"].to_numpy()
    same_user = (p[1:] == p[:-1]) & (u[1:] == u[:-1])
    d = user_days["d"].to_numpy(dtype="int64")
    has_prev = np.zeros(len(d), dtype=bool)
    has_prev[1:] = same_user
    prev = np.zeros(len(d), dtype="int64")
    prev[1:][same_user] = d[:-1][same_user]
    parts = []
    for name, width in WINDOWS.items():
        begin = np.where(has_prev, np.maximum(d, prev + width), d)
        start = pd.DataFrame({"product": p, "day": begin, **dict.fromkeys(WINDOWS, 0)})
        start[name] = 1
        stop = pd.DataFrame({"product": p, "day": d + width, **dict.fromkeys(WINDOWS, 0)})
        stop[name] = -1
        parts += [start, stop]
    return pd.concat(parts, ignore_index=True).groupby(["product", "day"], as_index=False).sum()
