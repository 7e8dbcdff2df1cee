"""Signups and activations counted in the ledger's DuckDB: one row per product and day.

The product family used to read every signup and activation into a frame (in time chunks
of ``metrics.memory_limit_mb`` on a full run, and 30 days of them on every update: 1.0 s of
an update at 100M demo events) for ``engagement.product_daily`` to de-duplicate and join.
``queries.signup_counts`` is the same definition where the events are; pandas only lays the
counts on the day grid (``product_daily(counts=...)``). The pandas path stays: the pure
``compute`` and the reference the tests compare with.
"""

from __future__ import annotations

import pandas as pd

from growthwatch.metrics.reads import LedgerView
from growthwatch.metrics.sql import queries as q

__all__ = ["COLUMNS", "signup_counts"]

COLUMNS = {"product": object, "day": "int64", "signups": "int64", "activations": "int64",
           "activated": "int64"}  # fmt: skip


def signup_counts(view: LedgerView, since: pd.Timestamp | None) -> pd.DataFrame:
    """``COLUMNS`` per (product, local day) of the view's signups and activations from
    ``since`` (all with None; before the view's ``end``), the excluded products left out."""
    settings = view.settings
    where = q.ledger_where(
        view.exclude, since=None if since is None else since.isoformat(),
        before=None if view.end is None else view.end.isoformat(),
    )  # fmt: skip
    sql = q.signup_counts(q.Source(where=where), settings.timezone,
                          settings.activation_window_days)  # fmt: skip
    cursor = view.ledger.connection
    try:
        frame = cursor.execute(sql).df()
    finally:
        cursor.close()
    return frame.reindex(columns=list(COLUMNS)).astype(COLUMNS)
