"""The segment family's per-customer reads: the touched customers' events of its types as
the ledger was at the state's ``seq`` and as it is now, from indexed copies.

Why: an update of the segment totals (``growthwatch.metrics.segment_totals``) recomputes
the customers new events touch, which needs all their events of the segment types: the
subscription-side ones (held by ``customer_events``' indexed copy) plus refunds and
signups (a customer's first known country or channel is often on its signup). The ledger's
``events`` table has no index on the customer, so this module keeps those two types in its
own indexed table, ``state_segments_events`` (with ``state_segments_events_seq``: the
``seq`` it covers and the ledger's event count then), in step with the ledger the same way
(append the events after its ``seq``; rebuild when the ledger lost events below it), and
reads a customer's events from both copies: two index lookups, no scan of the history.
"""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd
import pyarrow as pa

from growthwatch.metrics import customer_events
from growthwatch.metrics._frame import LEDGER_ORDER
from growthwatch.metrics.reads import LedgerView, events_frame, select_list
from growthwatch.metrics.segments import TYPES
from growthwatch.metrics.touched import Touched, _ordered, _rows

TABLE = "state_segments_events"
# the segment types the subscription copy does not hold (refunds, signups)
EXTRA = tuple(t for t in TYPES if t not in customer_events.TYPES)
_EXTRA_SQL = ", ".join(f"'{t}'" for t in EXTRA)  # our own constants: safe to inline
# both copies as one relation shaped as ``events`` (a full build's group reads: ``sync``
# first)
SOURCE = f"(SELECT * FROM {customer_events.TABLE} UNION ALL SELECT * FROM {TABLE})"


def sync(view: LedgerView, upto: int) -> None:
    """Bring both copies to ``seq <= upto`` (each rebuilt when the ledger lost events it
    holds)."""
    customer_events.sync_copies(view, upto, [(customer_events.TABLE, customer_events.TYPES_SQL),
                                             (TABLE, _EXTRA_SQL)])  # fmt: skip


def _read_extra(view: LedgerView, columns: Sequence[str], subjects: Sequence[str]) -> pd.DataFrame:
    """This module's copy's events of ``subjects`` (an index lookup) with their ``seq``."""
    wanted = set(columns)
    marks = ", ".join("?" for _ in subjects)
    sql = f"SELECT {select_list(wanted)}, seq FROM {TABLE} WHERE subject IN ({marks})"
    cursor = view.ledger.connection
    try:
        result = cursor.execute(sql, list(subjects)).arrow()
        table = result if isinstance(result, pa.Table) else result.read_all()
    finally:
        cursor.close()
    frame = events_frame(table, wanted)
    if view.exclude:
        frame = frame[~frame["product"].isin(list(view.exclude)).to_numpy()]
    return frame


def read(view: LedgerView, columns: Sequence[str], subjects: Sequence[str]) -> pd.DataFrame:
    """Every event of the segment types of ``subjects`` (both copies), in ledger order,
    with its ``seq``; the view's excluded products left out. Call ``sync`` first."""
    core = customer_events.read(view, [t for t in TYPES if t in customer_events.TYPES],
                                columns, subjects)  # fmt: skip
    extra = _read_extra(view, columns, subjects)
    frame = pd.concat([core, extra], ignore_index=True) if len(extra) else core
    if len(extra):
        frame = frame.sort_values(["ts", "idempotency_key"], kind="stable").reset_index(drop=True)
    frame.attrs[LEDGER_ORDER] = True
    return frame


def touched(view: LedgerView, columns: Sequence[str], since: int, upto: int) -> Touched:
    """The (product, subject) pairs with a segment-type event in ``(since, upto]`` and all
    their events of those types before (``seq <= since``) and after (``<= upto``).
    ``pairs`` is None when a touched event has no subject (no customer to isolate it by:
    the caller rebuilds)."""
    rows = _rows(
        view,
        "SELECT DISTINCT product, subject FROM events WHERE seq > ? AND seq <= ? "
        "AND type IN (SELECT unnest(?)) AND product NOT IN (SELECT unnest(?))",
        [since, upto, list(TYPES), list(view.exclude)],
    )
    new = pd.DataFrame(rows, columns=["product", "subject"], dtype=object)
    if new.empty or new["subject"].isna().any():
        empty = view.events(TYPES, columns=columns, products=[])
        return Touched(upto, None if len(new) else new, empty, empty)
    sync(view, upto)
    events = read(view, columns, sorted(set(new["subject"])))
    pair = pd.MultiIndex.from_frame(new[["product", "subject"]].astype(object))
    mine = pd.MultiIndex.from_arrays([events["product"].astype(object),
                                      events["subject"].astype(object)]).isin(pair)  # fmt: skip
    events = events[mine]
    seq = events.pop("seq").to_numpy()
    return Touched(upto, new, _ordered(events[seq <= since], events),
                   _ordered(events[seq <= upto], events))  # fmt: skip
