"""The cohort fold finds its users' members by index or by scan, with the same cells.

``state._fold_cohorts`` looks up the members of the users whose events arrived by the
subject index where the members table is large for them (an ``IN`` list), else by a hash
semi-join; the index is built once the table reaches ``_INDEXED_MEMBERS``. Small ledgers
always scan, so these cases force each way (thresholds patched to 0 or out of reach) and
check the folded cells, after every chunk of randomly ordered events, against the pandas
definition (``cohorts.logo_retention``) over everything stored, as
``test_engagement_sql`` does for the default way.
"""

from __future__ import annotations

import random
from datetime import timedelta
from unittest import mock

import pandas as pd
import pytest
from metric_cases import ev, t
from test_engagement_sql import reference, same

from growthwatch.events import GrowthEvent
from growthwatch.metrics.reads import LedgerView
from growthwatch.metrics.settings import MetricsSettings
from growthwatch.metrics.sql import state
from growthwatch.stores.ledger import Ledger

START = t("2026-01-03")


def _events(rng: random.Random, n: int) -> list[GrowthEvent]:
    """Signups (some users sign up twice, some late) and active uses over five months."""
    out = []
    for i in range(n):
        kind = rng.choice(["signup", "active_use", "active_use"])
        when = START + timedelta(days=rng.randrange(150), minutes=rng.randrange(1440))
        out.append(ev(kind, when, f"u{rng.randrange(25)}", product=rng.choice(["p1", "p2"]),
                      source_id=f"e{i}"))  # fmt: skip
    return out


def _index_exists(ledger: Ledger) -> bool:
    cursor = ledger.connection
    try:
        row = cursor.execute("SELECT count(*) FROM duckdb_indexes() WHERE index_name = "
                             "'state_cohorts_members_subject'").fetchone()  # fmt: skip
    finally:
        cursor.close()
    return bool(row and row[0])


@pytest.mark.parametrize("indexed", [True, False])
@pytest.mark.parametrize("seed", range(5))
def test_fold_by_index_or_scan_equals_the_pandas_definition(indexed: bool, seed: int) -> None:
    rng = random.Random(seed)
    events = _events(rng, 120)
    rng.shuffle(events)
    cuts = sorted(rng.sample(range(1, len(events)), 4))
    parts = [events[a:b] for a, b in zip([0, *cuts], [*cuts, len(events)], strict=False)]
    settings = MetricsSettings()
    big = 10**12
    with mock.patch.object(state, "_INDEXED_MEMBERS", 0 if indexed else big), \
            mock.patch.object(state, "_SCAN_PER_LOOKUP", 0 if indexed else big), \
            Ledger() as ledger:  # fmt: skip
        stored: list[GrowthEvent] = []
        last_seq = 0
        for n, part in enumerate(parts):
            ledger.append(part)
            stored += part
            until = pd.Timestamp(max(e.timestamp for e in stored)).tz_convert("UTC")
            first = pd.Timestamp(min(e.timestamp for e in part)).tz_convert("UTC")
            start = None if n == 0 else first
            view = LedgerView(ledger, settings, last_seq=last_seq)
            got = state.logo_retention(view, start, until)
            last_seq = ledger.max_seq()
            want = reference(stored, settings, until)["cohort_retention"]
            since = None if start is None else pd.Timestamp(first.strftime("%Y-%m-01"), tz="UTC")
            same(got, want, "cohort_retention", since)
        assert _index_exists(ledger) is indexed
