"""The alert book: open, de-duplicate, escalate, resolve, cool down, survive a restart."""

from __future__ import annotations

import stat
from datetime import UTC, datetime, timedelta
from pathlib import Path

from detectors.alerts import AlertBook, Finding

T0 = datetime(2026, 3, 10, 14, tzinfo=UTC)


def finding(minutes: float, severity: str, product: str = "acme") -> Finding:
    return Finding(product, "customers_daily.cancellations", "all", T0 + timedelta(minutes=minutes),
                   10.0, 2.0, 0.0, 5.0, 0.9999 if severity else 0.1, severity, "counts", "x")  # fmt: skip


def book(path: Path) -> AlertBook:
    return AlertBook(path, resolve_after=timedelta(hours=1), cooldown=timedelta(hours=6))


def states(b: AlertBook, findings: list[Finding]) -> list[str]:
    return [t.state for f in findings if (t := b.observe(f)) is not None]


def test_one_incident_opens_once_escalates_once_and_resolves_once(tmp_path: Path) -> None:
    b = book(tmp_path / "detector.sqlite")
    run = [finding(m, "warning") for m in range(0, 30, 5)]
    run += [finding(30, "critical"), finding(35, "critical"), finding(40, "warning")]
    run += [finding(m, "") for m in range(45, 120, 5)]
    assert states(b, run) == ["open", "escalated", "resolved"]


def test_resolution_waits_for_resolve_after_since_the_last_anomalous_point(tmp_path: Path) -> None:
    b = book(tmp_path / "detector.sqlite")
    assert states(b, [finding(0, "warning"), finding(30, ""), finding(59, "")]) == ["open"]
    assert states(b, [finding(60, "")]) == ["resolved"]


def test_cooldown_mutes_a_flapping_series_then_lets_a_new_incident_page(tmp_path: Path) -> None:
    b = book(tmp_path / "detector.sqlite")
    assert states(b, [finding(0, "warning"), finding(60, "")]) == ["open", "resolved"]
    assert states(b, [finding(90, "warning"), finding(6 * 60 + 59, "warning")]) == []
    assert states(b, [finding(7 * 60, "warning")]) == ["open"]


def test_keys_are_independent(tmp_path: Path) -> None:
    b = book(tmp_path / "detector.sqlite")
    assert states(b, [finding(0, "warning", "acme"), finding(1, "warning", "zeta")]) == ["open", "open"]


def test_state_survives_a_restart_and_a_replay_changes_nothing(tmp_path: Path) -> None:
    path = tmp_path / "detector.sqlite"
    first = book(path)
    opened = first.observe(finding(0, "warning"))
    assert opened is not None
    first.set_annotation(opened.alert.alert_id, 17)
    first.close()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    second = book(path)
    assert states(second, [finding(0, "warning"), finding(10, "warning")]) == []  # no re-page
    assert [a.alert_id for a in second.open_alerts()] == [opened.alert.alert_id]
    assert second.annotation_of(opened.alert.alert_id) == 17
    resolved = [t for f in [finding(80, "")] if (t := second.observe(f))]
    assert resolved[0].alert.alert_id == opened.alert.alert_id


def test_a_route_paged_at_the_open_is_not_paged_again_on_escalation(tmp_path: Path) -> None:
    from detectors.scenario import CaptureServer
    from detectors.sinks.notify import Notifier, Route

    capture = CaptureServer().start()
    try:
        url = f"json://127.0.0.1:{capture.port}"
        notifier = Notifier([Route("chat", f"{url}/chat", "warning"),
                             Route("pager", f"{url}/pager", "critical")])  # fmt: skip
        b = book(tmp_path / "detector.sqlite")
        for f in [finding(0, "warning"), finding(5, "critical"), finding(70, "")]:
            t = b.observe(f)
            if t is not None:
                notifier.emit(t)
        got = [(r.path, r.body["title"].split(": ")[-1]) for r in capture.matching("POST", "/")]
    finally:
        capture.stop()
    assert got == [
        ("/chat", "customers_daily.cancellations anomaly"),
        ("/pager", "customers_daily.cancellations escalated"),
        ("/chat", "customers_daily.cancellations resolved"),
        ("/pager", "customers_daily.cancellations resolved"),
    ]
