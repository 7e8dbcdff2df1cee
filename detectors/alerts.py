"""The alert book: one alert state machine per (product, metric, segment), persisted.

``observe(finding)`` turns a stream of judgements into at most one transition each:

- anomalous and nothing open: **open** (unless the key resolved less than ``cooldown``
  ago: then it stays quiet, so a flapping series does not page twice);
- anomalous and open: nothing (de-duplicated), or **escalated** when the severity rises;
- normal and open for ``resolve_after`` since the last anomalous judgement: **resolved**.

State lives in SQLite (``detector.sqlite`` in the data dir, mode 0600: alert texts can
carry customer-facing figures), written before a transition is handed to the sinks, so a
restart of ``serve`` neither forgets an open alert nor pages for it again. Findings older
than the last one seen for a key are ignored, which makes a replay idempotent.
"""

from __future__ import annotations

import hashlib
import os
import sqlite3
import threading
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

SEVERITY_RANK = {"": 0, "info": 0, "warning": 1, "critical": 2}


@dataclass(frozen=True)
class Finding:
    """One judgement of one series at one moment (``severity`` empty: normal)."""

    product: str
    metric: str
    segment: str
    time: datetime
    observed: float
    expected: float
    lower: float
    upper: float
    score: float
    severity: str
    method: str
    explanation: str

    @property
    def key(self) -> str:
        return f"{self.product}|{self.metric}|{self.segment}"


@dataclass(frozen=True)
class Alert:
    alert_id: str
    product: str
    metric: str
    segment: str
    severity: str
    state: str  # open | escalated | resolved
    started: datetime
    last_anomalous: datetime
    resolved: datetime | None = None
    annotation_id: int | None = None


@dataclass(frozen=True)
class Transition:
    state: str  # open | escalated | resolved
    alert: Alert
    finding: Finding
    previous_severity: str = ""  # for an escalation: the severity already announced


_SCHEMA = """
CREATE TABLE IF NOT EXISTS alerts (
    key TEXT PRIMARY KEY, alert_id TEXT NOT NULL, product TEXT NOT NULL, metric TEXT NOT NULL,
    segment TEXT NOT NULL, severity TEXT NOT NULL, state TEXT NOT NULL, started REAL NOT NULL,
    last_anomalous REAL NOT NULL, resolved REAL, annotation_id INTEGER, last_seen REAL NOT NULL
)
"""


def _ts(moment: datetime) -> float:
    return moment.timestamp()


def _dt(value: float | None) -> datetime | None:
    return None if value is None else datetime.fromtimestamp(value, UTC)


class AlertBook:
    def __init__(
        self,
        path: Path | str = ":memory:",
        *,
        resolve_after: timedelta = timedelta(hours=2),
        cooldown: timedelta = timedelta(hours=6),
    ) -> None:
        self.path = path
        self.resolve_after = resolve_after
        self.cooldown = cooldown
        if path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(path, os.O_CREAT | os.O_RDWR, 0o600)
            os.close(fd)
            os.chmod(path, 0o600)
        self._con = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
        if path != ":memory:":
            self._con.execute("PRAGMA journal_mode=WAL")
        self._con.execute(_SCHEMA)
        self._lock = threading.Lock()

    def close(self) -> None:
        self._con.close()

    def _row(self, key: str) -> tuple[Alert, float] | None:
        row = self._con.execute(
            "SELECT alert_id, product, metric, segment, severity, state, started, "
            "last_anomalous, resolved, annotation_id, last_seen FROM alerts WHERE key = ?",
            (key,),
        ).fetchone()
        if row is None:
            return None
        alert = Alert(row[0], row[1], row[2], row[3], row[4], row[5], _dt(row[6]),  # type: ignore[arg-type]
                      _dt(row[7]), _dt(row[8]), row[9])  # type: ignore[arg-type]  # fmt: skip
        return alert, float(row[10])

    def _save(self, key: str, alert: Alert, last_seen: datetime) -> None:
        self._con.execute(
            "INSERT OR REPLACE INTO alerts VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
            (key, alert.alert_id, alert.product, alert.metric, alert.segment, alert.severity,
             alert.state, _ts(alert.started), _ts(alert.last_anomalous),
             _ts(alert.resolved) if alert.resolved else None, alert.annotation_id,
             _ts(last_seen)),
        )  # fmt: skip

    def observe(self, finding: Finding) -> Transition | None:
        with self._lock:
            return self._observe(finding)

    def _observe(self, f: Finding) -> Transition | None:
        current = self._row(f.key)
        if current is not None and _ts(f.time) < current[1]:
            return None  # older than what this key has seen: a replay
        alert = current[0] if current else None
        is_open = alert is not None and alert.state != "resolved"
        rank = SEVERITY_RANK.get(f.severity, 0)
        transition: Transition | None = None
        if rank and not is_open:
            muted = (alert is not None and alert.resolved is not None
                     and f.time - alert.resolved < self.cooldown)  # fmt: skip
            if not muted:
                alert = Alert(_alert_id(f), f.product, f.metric, f.segment, f.severity, "open",
                              f.time, f.time)  # fmt: skip
                transition = Transition("open", alert, f)
        elif rank and alert is not None and is_open:
            alert = replace(alert, last_anomalous=f.time)
            if rank > SEVERITY_RANK[alert.severity]:
                before = alert.severity
                alert = replace(alert, severity=f.severity, state="escalated")
                transition = Transition("escalated", alert, f, before)
        elif alert is not None and is_open and f.time - alert.last_anomalous >= self.resolve_after:
            alert = replace(alert, state="resolved", resolved=f.time)
            transition = Transition("resolved", alert, f)
        if alert is not None:
            self._save(f.key, alert, f.time)
        return transition

    def set_annotation(self, alert_id: str, annotation_id: int) -> None:
        with self._lock:
            self._con.execute("UPDATE alerts SET annotation_id = ? WHERE alert_id = ?",
                              (annotation_id, alert_id))  # fmt: skip

    def annotation_of(self, alert_id: str) -> int | None:
        row = self._con.execute(
            "SELECT annotation_id FROM alerts WHERE alert_id = ?", (alert_id,)
        ).fetchone()
        return None if row is None or row[0] is None else int(row[0])

    def open_alerts(self) -> list[Alert]:
        keys = [r[0] for r in self._con.execute(
            "SELECT key FROM alerts WHERE state != 'resolved' ORDER BY key")]  # fmt: skip
        return [row[0] for k in keys if (row := self._row(k)) is not None]


def _alert_id(f: Finding) -> str:
    text = f"{f.key}|{int(_ts(f.time) * 1000)}"
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def as_dict(alert: Alert) -> dict[str, object]:
    return {k: (v.isoformat() if isinstance(v, datetime) else v) for k, v in asdict(alert).items()}
