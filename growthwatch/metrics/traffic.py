"""Traffic: sessions and users by channel, signups attributed to channels, conversion.

Sessions arrive as ``session`` events (``value`` = number of sessions, ``channel`` in
metadata): per visitor (a subject, one session per event, as the demo and per-visitor
sources send them) or as aggregates (GA4 rows without a subject).

* A signup is attributed to the channel of **its session**: the latest session event of the
  same user and product at most ``SESSION_MINUTES`` before the signup (a session event is
  the session's first touch, so its channel is the session's channel). A signup without
  such a session keeps its own ``channel`` metadata if it has one, else counts only in
  ``channel = all``.
* **Conversion** is in one unit, sessions: ``converting_sessions`` (sessions that led to at
  least one signup, counted on the session's day and channel) / ``sessions``. Aggregate
  sessions cannot be followed to a signup, so they only add to the denominator.

Each product also gets a ``channel = all`` row and the portfolio ``product = all`` rows sum
the products. Days are days of the reporting timezone.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from growthwatch.events import EventType
from growthwatch.metrics._frame import TIME_DTYPE, clean, empty, local_floor, micros, ratio, units

ALL = "all"
TYPES = (EventType.SESSION.value, EventType.SIGNUP.value)
SESSION_MINUTES = 30  # how far before a signup its session may have started (GA4's timeout)
COLUMNS = {"time": TIME_DTYPE, "product": "str", "channel": "str", "sessions": "float64",
           "users": "int64", "signups": "int64", "converting_sessions": "int64",
           "conversion": "float64"}  # fmt: skip


def _attribute(ev: pd.DataFrame, is_session: np.ndarray) -> tuple[pd.Series, pd.Series]:
    """Per signup row: the channel of its session (NA if none); per session row: 1 if it led
    to a signup."""
    sessions = ev[is_session & ev["subject"].notna().to_numpy()]
    signups = ev[~is_session & ev["subject"].notna().to_numpy()]
    channel = pd.Series(pd.NA, index=ev.index, dtype="object")
    converted = pd.Series(0, index=ev.index, dtype="int64")
    if sessions.empty or signups.empty:
        return channel, converted
    left = pd.DataFrame({"ts": signups["ts"].astype(TIME_DTYPE), "product": signups["product"],
                         "subject": signups["subject"], "row": signups.index})  # fmt: skip
    right = pd.DataFrame({"ts": sessions["ts"].astype(TIME_DTYPE),
                          "product": sessions["product"], "subject": sessions["subject"],
                          "session_row": sessions.index,
                          "session_channel": sessions["channel"].astype(object)})  # fmt: skip
    for frame in (left, right):
        frame["product"] = frame["product"].astype(object)
        frame["subject"] = frame["subject"].astype(object)
    left = left.sort_values("ts", kind="stable")
    right = right.sort_values("ts", kind="stable")
    hit = pd.merge_asof(
        left, right, on="ts", by=["product", "subject"], direction="backward",
        tolerance=pd.Timedelta(minutes=SESSION_MINUTES), allow_exact_matches=True,
    )  # fmt: skip
    hit = hit[hit["session_row"].notna()]
    channel.loc[hit["row"].to_numpy()] = hit["session_channel"].to_numpy()
    converted.loc[pd.unique(hit["session_row"].astype("int64"))] = 1
    return channel, converted


def traffic_daily(events: pd.DataFrame, tz: str = "UTC") -> pd.DataFrame:
    """Per (day, product, channel) plus channel and product ``all`` rows."""
    ev = clean(events, TYPES)
    if ev.empty:
        return empty(COLUMNS)
    is_session = (ev["type"] == EventType.SESSION.value).to_numpy()
    own = ev["channel"].astype(object).where(ev["channel"].notna(), None)
    session_channel, converted = _attribute(ev, is_session)
    channel = own.where(is_session | session_channel.isna(), session_channel)
    frame = pd.DataFrame(
        {
            "time": local_floor(ev["ts"], "D", tz),
            "product": ev["product"],
            "channel": channel.where(channel.notna(), None),
            "sessions": np.where(is_session, micros(ev["value"]), 0),
            "signups": (~is_session).astype("int64"),
            "converting_sessions": converted.to_numpy(),
            "user": ev["subject"].astype(object).where(is_session & ev["subject"].notna(), None),
        }
    )
    parts = []
    for product_all in (False, True):
        for channel_all in (False, True):
            f = frame.assign(channel=ALL) if channel_all else frame
            if product_all:
                qualified = f["product"] + "\x1f" + f["user"].astype(str)
                f = f.assign(user=qualified.where(f["user"].notna(), None), product=ALL)
            f = f[f["channel"].notna()]
            g = f.groupby(["time", "product", "channel"], sort=True)
            part = g[["sessions", "signups", "converting_sessions"]].sum()
            part["users"] = g["user"].nunique()
            parts.append(part.reset_index())
    out = pd.concat(parts, ignore_index=True)
    out["conversion"] = ratio(out["converting_sessions"], units(out["sessions"].to_numpy()))
    out["sessions"] = units(out["sessions"].to_numpy())
    for col in ("users", "signups", "converting_sessions"):
        out[col] = out[col].astype("int64")
    out["time"] = out["time"].astype(TIME_DTYPE)
    return out[list(COLUMNS)].sort_values(["time", "product", "channel"]).reset_index(drop=True)
