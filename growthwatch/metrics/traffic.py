"""Traffic: sessions and users by channel, and conversion from session to signup.

Sessions arrive as aggregates (GA4 rows: ``value`` = number of sessions, ``channel`` in
metadata), so conversion is the ratio of signups to sessions of the same product, channel
and day, which is how GA4 reports session conversion rate. ``users`` counts distinct
subjects where the source sends per-user sessions (0 for pure aggregates). Each product
also gets a ``channel = all`` row (signups without a channel count only there), and the
portfolio ``product = all`` rows sum the products.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from growthwatch.events import EventType
from growthwatch.metrics._frame import TIME_DTYPE, clean, day_floor, empty, micros, ratio, units

ALL = "all"
TYPES = (EventType.SESSION.value, EventType.SIGNUP.value)
COLUMNS = {"time": TIME_DTYPE, "product": "str", "channel": "str", "sessions": "float64",
           "users": "int64", "signups": "int64", "conversion": "float64"}  # fmt: skip


def traffic_daily(events: pd.DataFrame) -> pd.DataFrame:
    """Per (day, product, channel) plus channel and product ``all`` rows."""
    ev = clean(events, TYPES)
    if ev.empty:
        return empty(COLUMNS)
    is_session = (ev["type"] == EventType.SESSION.value).to_numpy()
    frame = pd.DataFrame(
        {
            "time": day_floor(ev["ts"]),
            "product": ev["product"],
            "channel": ev["channel"].astype(object).where(ev["channel"].notna(), None),
            "sessions": np.where(is_session, micros(ev["value"]), 0),
            "signups": (~is_session).astype("int64"),
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
            part = g[["sessions", "signups"]].sum()
            part["users"] = g["user"].nunique()
            parts.append(part.reset_index())
    out = pd.concat(parts, ignore_index=True)
    out["conversion"] = ratio(out["signups"], units(out["sessions"].to_numpy()))
    out["sessions"] = units(out["sessions"].to_numpy())
    out["users"] = out["users"].astype("int64")
    out["signups"] = out["signups"].astype("int64")
    out["time"] = out["time"].astype(TIME_DTYPE)
    return out[list(COLUMNS)].sort_values(["time", "product", "channel"]).reset_index(drop=True)
