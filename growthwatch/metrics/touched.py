"""The customers new events touch, and their events before and after them.

The subscription and trial families keep per-product totals that are sums over customers
(every number of theirs is built per customer and then added up). An update therefore
needs only the customers whose events arrived: their contribution as the ledger was (the
events up to the ``seq`` the totals cover) comes out, their contribution as it is now goes
in. This module does the reads for that, race-free against concurrent appends: the
snapshot bound ``upto`` is read first and every read is cut at it (by ``seq``), so the
totals always cover exactly ``seq <= upto``. The touched customers' events come from an
indexed copy (``customer_events``): a lookup, not a scan of the ledger.
"""

from __future__ import annotations

import weakref
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from growthwatch.frames import EVENT_COLUMNS
from growthwatch.metrics.reads import LedgerView
from growthwatch.stores.ledger import SELECT_EXPR


@dataclass(frozen=True)
class Touched:
    """Events of the customers touched by the events in ``(since, upto]``: ``before`` (as
    the ledger was at ``since``) and ``after`` (at ``upto``), both in ledger order.
    ``pairs`` is None when a touched event has no subject (no customer to isolate: the
    caller rebuilds instead)."""

    upto: int
    pairs: pd.DataFrame | None
    before: pd.DataFrame
    after: pd.DataFrame


def _rows(view: LedgerView, sql: str, params: list[object]) -> list[tuple[object, ...]]:
    """Plain rows (no DataFrame: building one costs more than these small queries)."""
    return view.rows(sql, params)


def max_seq(view: LedgerView) -> int:
    """The ledger's last ``seq`` now (0 when empty): ``LedgerView.max_seq``."""
    return view.max_seq()


def event_count(view: LedgerView, upto: int) -> int:
    """Events with ``seq <= upto`` (a trim or a deletion below it changes this: a total
    built over them is stale then)."""
    # the table's count is metadata and the tail above ``upto`` is a few row groups: no
    # scan of the history; asked once per view, ``seq`` and deletion (``LedgerView.counted``)
    key = (view.ledger.deletions, upto)
    if key not in view.counted:
        got = _rows(view, "SELECT (SELECT count(*) FROM events) - (SELECT count(*) FROM "
                    "events WHERE seq > ?)", [upto])  # fmt: skip
        view.counted[key] = int(got[0][0])  # type: ignore[call-overload]
    return view.counted[key]


def product_counts(view: LedgerView, types: Sequence[str], upto: int) -> pd.Series:
    """Events of ``types`` per product up to ``upto`` (what a full build groups by)."""
    got = _rows(view, "SELECT product, count(*) AS n FROM events WHERE seq <= ? AND type IN "
                "(SELECT unnest(?)) AND product NOT IN (SELECT unnest(?)) GROUP BY product "
                "ORDER BY product", [upto, list(types), list(view.exclude)])  # fmt: skip
    return pd.Series([int(n) for _p, n in got], index=[p for p, _n in got], dtype="int64")  # type: ignore[call-overload]


@dataclass(frozen=True)
class Group:
    """What one step of a full build reads: some products, or a part of one product's
    customers (``part``: index and parts, by a hash of the subject)."""

    products: list[str]
    part: tuple[int, int] | None = None


def product_groups(counts: pd.Series, chunk_events: int) -> list[Group]:
    """Products in groups of at most ``chunk_events`` events; a bigger product alone, its
    customers split in as many parts as it needs to keep to that (totals that are sums
    over customers add up the same: at 100M demo events the biggest products' segment
    events were three times a group's, and their build set the run's peak)."""
    groups: list[Group] = []
    size = 0
    for product, n in counts.items():
        if int(n) > chunk_events:
            parts = -(-int(n) // max(1, chunk_events))
            groups += [Group([str(product)], (i, parts)) for i in range(parts)]
            continue
        if not groups or groups[-1].part is not None or size + int(n) > chunk_events:
            groups.append(Group([]))
            size = 0
        groups[-1].products.append(str(product))
        size += int(n)
    return groups


def read_upto(
    view: LedgerView,
    types: Sequence[str],
    columns: Sequence[str],
    group: Group,
    upto: int,
    source: str = "events",
) -> pd.DataFrame:
    """Every event of ``types`` of ``group`` with ``seq <= upto``, in ledger order.
    ``source``: as ``reads.read_events``; a full build passes the indexed copy of its
    types (``customer_events``, ``segment_events``, synced to ``upto`` first), which holds
    some 5-10% of the ledger: each group's read is then a scan of the copy, not of the
    history (at 10M demo events 0.06 s a group, where the ledger took 0.58)."""
    events = view.events(types, columns=columns, products=group.products, part=group.part,
                         source=source)  # fmt: skip
    later = _rows(view, f"SELECT {SELECT_EXPR['idempotency_key']} FROM events WHERE seq > ?",
                  [upto])  # fmt: skip
    if not later:
        return events
    keep = ~events["idempotency_key"].astype(object).isin({k for (k,) in later}).to_numpy()
    return _ordered(events[keep], events)


def touched(
    view: LedgerView,
    types: Sequence[str],
    columns: Sequence[str],
    since: int,
    upto: int,
    *,
    with_subject: bool = False,
) -> Touched:
    """The (product, subject) pairs with an event of ``types`` in ``(since, upto]`` and
    all their events of ``types`` before and after (``view``'s excluded products left
    out). ``with_subject``: events without a subject count for nothing (the caller
    ignores them), so they touch no one."""
    exclude = list(view.exclude)
    rows = _rows(
        view,
        "SELECT DISTINCT product, subject FROM events WHERE seq > ? AND seq <= ? "
        "AND type IN (SELECT unnest(?)) AND product NOT IN (SELECT unnest(?))",
        [since, upto, list(types), exclude],
    )
    new = pd.DataFrame(rows, columns=["product", "subject"], dtype=object)
    if with_subject:
        new = new[new["subject"].notna()].reset_index(drop=True)
    if new.empty or new["subject"].isna().any():
        empty = view.events(types, columns=columns, products=[])
        return Touched(upto, None if len(new) else new, empty, empty)
    events = _customers_events(view, types, columns, upto, set(new["subject"]))
    pair = pd.MultiIndex.from_frame(new[["product", "subject"]].astype(object))
    mine = pd.MultiIndex.from_arrays([events["product"].astype(object),
                                      events["subject"].astype(object)]).isin(pair)  # fmt: skip
    events = events[mine]
    seq = events.pop("seq").to_numpy()
    before = _ordered(events[seq <= since], events)
    after = _ordered(events[seq <= upto], events)
    return Touched(upto, new, before, after)


@dataclass(frozen=True)
class _Read:
    """One lookup of customers' events in the indexed copy: what it covers."""

    view: weakref.ref[LedgerView]  # (not the view itself: the ledger is not kept alive)
    upto: int
    subjects: frozenset[str]
    columns: frozenset[str]
    events: pd.DataFrame  # every ``customer_events.TYPES`` event of ``subjects``, with seq


_last: list[_Read] = []  # the last lookup (one entry): the next family's, in the same run


def _customers_events(
    view: LedgerView, types: Sequence[str], columns: Sequence[str], upto: int,
    subjects: set[str],
) -> pd.DataFrame:
    """The events of ``types`` of ``subjects`` with ``seq <= upto`` and their ``seq``, in
    ledger order: one indexed lookup per engine run shared by the families that ask for
    the same customers (the subscriptions' and then the trials' update of a webhook's
    cancellation: 23 ms each at 10M events, most of it the lookup's fixed cost).

    The lookup reads every type of the copy and the subscription family's columns too,
    so the next family's call is a filter of it. It is reused only by a call with the
    same ``view`` object (one engine run: the ledger as the run sees it), the same
    ``upto`` and a subset of its customers and columns."""
    from growthwatch.metrics import customer_events  # it counts events with this module

    assert set(types) <= set(customer_events.TYPES), types
    wanted = set(columns)
    got = _last[0] if _last else None
    if (got is None or got.view() is not view or got.upto != upto
            or not subjects <= got.subjects or not wanted <= got.columns):  # fmt: skip
        customer_events.sync(view, upto)
        read_columns = wanted | set(_SHARED_COLUMNS)
        events = customer_events.read(view, customer_events.TYPES, sorted(read_columns),
                                      sorted(subjects))  # fmt: skip
        got = _Read(weakref.ref(view), upto, frozenset(subjects), frozenset(read_columns), events)
        _last[:] = [got]
    events = got.events
    keep = events["type"].isin(list(types)).to_numpy()
    if len(subjects) < len(got.subjects):
        keep = keep & events["subject"].astype(object).isin(subjects).to_numpy()
    out = _ordered(events[keep], events)
    for col in got.columns - wanted:  # the layout of a read of ``columns``: the others NA
        dtype = EVENT_COLUMNS[col]
        out[col] = pd.Series(pd.NA if dtype == "str" else np.nan, index=out.index, dtype=dtype)
    return out


# the columns a lookup reads besides those asked for: the subscription family's, a
# superset of the trials' (so the trials' lookup after it is a filter)
_SHARED_COLUMNS = ("idempotency_key", "product", "type", "ts", "currency", "subject",
                   "mrr_before", "mrr_after", "metadata")  # fmt: skip


def _ordered(part: pd.DataFrame, source: pd.DataFrame) -> pd.DataFrame:
    """A row subset of a ledger read, keeping the read's order flags (``clean`` trusts
    them)."""
    out = part.reset_index(drop=True)
    out.attrs.update(source.attrs)
    return out
