"""Queries over the detector's ``anomalies`` measurement (contracts.md), shared by the
Portfolio overview, the Anomalies board and the open-anomalies alert rule.

One incident is one (product, metric, segment): its points are its state transitions
(open, escalated, resolved), so its *current* state is its last point. Severity is a tag
and changes on escalation, so the grouping leaves it out and selects it with the last point.
"""

from __future__ import annotations

from collections.abc import Sequence

from dashboards.queries import ANOMALIES, tag_matches

INCIDENT = ('"product"', '"metric"', '"segment"')


def _where(filters: Sequence[str]) -> str:
    return " AND ".join([*filters, "$timeFilter"])


def latest_state(filters: Sequence[str] = ()) -> str:
    """One row per incident: its last transition (state, open flag, severity, sentence)."""
    return (
        'SELECT last("open") AS "open", "state", "severity", "score", "observed", "expected", '
        f'"explanation", "alert_id", "started_ms" FROM "{ANOMALIES}" WHERE {_where(filters)} '
        f"GROUP BY {', '.join(INCIDENT)}"
    )


def open_count(filters: Sequence[str] = (), by: Sequence[str] = ()) -> str:
    """How many incidents are open now (their last point has open = 1)."""
    inner = (f'SELECT last("open") AS "open" FROM "{ANOMALIES}" WHERE {_where(filters)} '
             f"GROUP BY {', '.join(INCIDENT)}")  # fmt: skip
    q = f'SELECT sum("open") AS "open" FROM ({inner})'
    if by:
        q += " GROUP BY " + ", ".join(f'"{t}"' for t in by)
    return q


def board_filters() -> list[str]:
    """The Anomalies board's product and segment variables (multi-value, All = .*)."""
    return [tag_matches(ANOMALIES, "product", "product"), tag_matches(ANOMALIES, "segment", "segment")]
