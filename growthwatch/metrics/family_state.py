"""A family's kept totals, persisted in the ledger file so a restart does not rebuild them.

Why: the subscription and trial families keep per-product totals between runs (updated
with the customers new events touch). Without a copy on disk, the first update after a
restart (``growthwatch serve`` redeployed, the next ``growthwatch metrics update``) would
rebuild them from the whole history. One table per family, ``state_<family>_totals``,
holds one row: the ledger ``seq`` the totals cover, how many events that was (a trim or
repair below it changes the count: the copy is stale then), a fingerprint of what else
they depend on (settings, products left out), and the totals (pickled: this process wrote
them into its own private ledger file, nobody else's data).

A copy older than the engine's last run is still exact: the next update takes out and
puts back the customers touched since the copy's ``seq``, however many runs ago that
was. So a build writes its copy at once, and an update only marks the totals unsaved:
``Kept.flush`` writes them when the engine is idle (``MetricsEngine.release``: ``serve``
between bursts of webhooks, ``growthwatch metrics update`` before it exits), at most one
every ``EVERY_SECONDS`` unless forced. Why: the write (a pickle of the totals into a BLOB,
14 MB for the segments at 10M demo events) cost 0.4 to 0.6 s of a 1.9 s update, for a
restart that may never come.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import logging
import pickle
import time
from dataclasses import dataclass
from typing import Any

from growthwatch.metrics.reads import LedgerView
from growthwatch.metrics.touched import event_count

log = logging.getLogger(__name__)
EVERY_SECONDS = 30.0


@dataclass(frozen=True)
class Saved:
    seq: int
    count: int
    fingerprint: str
    totals: Any


def fingerprint(view: LedgerView) -> str:
    """What the totals depend on besides the events: the settings and the products left
    out (``repr`` of frozen dataclasses: every field, rates included), but not
    ``chunk_events`` (how a full run is cut up changes no number)."""
    settings = dataclasses.replace(view.settings, chunk_events=0)
    text = repr((settings, tuple(view.exclude)))
    return hashlib.sha256(text.encode()).hexdigest()


def _table(family: str) -> str:
    return f"state_{family}_totals"


def load(view: LedgerView, family: str) -> Saved | None:
    """The persisted totals of ``family`` (None: none, or unreadable)."""
    cursor = view.ledger.connection
    try:
        rows = cursor.execute(
            f"SELECT seq, count, fingerprint, totals FROM {_table(family)} LIMIT 1"
        ).fetchall()  # fmt: skip
    except Exception:  # no table yet (a ledger the family never ran on)
        return None
    finally:
        cursor.close()
    if not rows:
        return None
    seq, count, print_, blob = rows[0]
    try:
        totals = pickle.loads(blob)  # our own file, written by ``save`` below
    except Exception as exc:  # another version's layout: rebuild
        log.info("%s: persisted totals unreadable (%s); rebuilding", family, exc)
        return None
    return Saved(int(seq), int(count), str(print_), totals)


def save(view: LedgerView, family: str, saved: Saved) -> None:
    """Replace the persisted totals of ``family`` (a failure only costs a rebuild later)."""
    blob = pickle.dumps(saved.totals, protocol=pickle.HIGHEST_PROTOCOL)
    cursor = view.ledger.connection
    try:
        cursor.execute(
            f"CREATE TABLE IF NOT EXISTS {_table(family)} (seq BIGINT, count BIGINT, "
            "fingerprint VARCHAR, totals BLOB)"
        )  # fmt: skip
        cursor.execute("BEGIN TRANSACTION")
        cursor.execute(f"DELETE FROM {_table(family)}")
        cursor.execute(f"INSERT INTO {_table(family)} VALUES (?, ?, ?, ?)",
                       [saved.seq, saved.count, saved.fingerprint, blob])  # fmt: skip
        cursor.execute("COMMIT")
    except Exception as exc:
        log.warning("%s: could not persist its totals (%s); a restart rebuilds them", family, exc)
        with contextlib.suppress(Exception):  # no transaction open
            cursor.execute("ROLLBACK")
    finally:
        cursor.close()


class Throttle:
    """When the next save is due: always after a build, else at most every
    ``EVERY_SECONDS``."""

    def __init__(self) -> None:
        self._last = float("-inf")

    def due(self, built: bool) -> bool:
        now = time.monotonic()
        if built or now - self._last >= EVERY_SECONDS:
            self._last = now
            return True
        return False


class Kept:
    """A family's totals between runs, in memory and (throttled) in the ledger file."""

    def __init__(self, family: str) -> None:
        self.family = family
        self.saved: Saved | None = None
        self.unsaved = False  # ``saved`` is newer than the ledger file's copy
        self._throttle = Throttle()

    def current(self, view: LedgerView, upto: int) -> Saved | None:
        """The kept totals, or the persisted ones on a cold start, when they match the
        ledger (nothing lost below their ``seq``) and the settings; else None (rebuild)."""
        saved = self.saved if self.saved is not None else load(view, self.family)
        if (saved is None or saved.fingerprint != fingerprint(view) or saved.seq > upto
                or event_count(view, saved.seq) != saved.count):  # fmt: skip
            return None
        return saved

    def keep(self, view: LedgerView, upto: int, totals: Any, *, built: bool) -> None:
        """Hold ``totals`` as of ``upto``; written to the ledger file now after a build
        (``built``: a rebuild is what the copy saves), else left to ``flush``."""
        self.saved = Saved(upto, event_count(view, upto), fingerprint(view), totals)
        self.unsaved = True
        if built:
            self.flush(view, force=True)

    def flush(self, view: LedgerView, *, force: bool = False) -> bool:
        """Write the unsaved totals (``force``, or at most every ``EVERY_SECONDS``);
        True when written."""
        if not self.unsaved or self.saved is None or not self._throttle.due(force):
            return False
        save(view, self.family, self.saved)
        self.unsaved = False
        return True
