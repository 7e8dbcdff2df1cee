"""The detector service: one page per incident across a restart of ``serve``."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

from detectors.alerts import AlertBook, Transition
from detectors.scenario import seed_history
from detectors.service import DetectorService
from detectors.settings import DetectorSettings
from growthwatch import EventType, GrowthEvent, Ledger, SeriesStore

DAY = datetime(2026, 3, 10, tzinfo=UTC)


class Recorder:
    def __init__(self) -> None:
        self.seen: list[Transition] = []

    def emit(self, transition: Transition) -> None:
        self.seen.append(transition)


def test_an_open_alert_is_not_paged_again_after_a_restart(tmp_path: Path) -> None:
    ledger = Ledger(tmp_path / "ledger.duckdb")
    store = SeriesStore(tmp_path / "series.duckdb")
    seed_history(ledger, "acme", DAY)
    ledger.append([GrowthEvent(
        product="acme", type=EventType.SUBSCRIPTION_CANCELLED,
        timestamp=DAY + timedelta(hours=9, minutes=i), value=Decimal(-45), currency="USD",
        subject=f"cus_r{i}", mrr_before=Decimal(45), mrr_after=Decimal(0),
        source="stripe", source_id=f"sub_r{i}", kind="subscription_cancelled",
    ) for i in range(15)])  # fmt: skip
    settings = DetectorSettings.from_section({"metrics": ["customers_daily.cancellations"]})
    sinks = Recorder()

    def service() -> DetectorService:
        book = AlertBook(tmp_path / "detector.sqlite", resolve_after=settings.resolve_after,
                         cooldown=settings.cooldown)  # fmt: skip
        return DetectorService(settings, ledger=ledger, reader=store, book=book, sinks=[sinks])

    first = service()
    assert [t.state for t in first.evaluate("acme", DAY + timedelta(hours=10))] == ["open"]
    first.book.close()
    second = service()  # serve restarted
    assert second.evaluate("acme", DAY + timedelta(hours=11)) == []
    assert [t.state for t in sinks.seen] == ["open"]
    second.book.close()
    store.close()
    ledger.close()
