"""The live series thread runs the ledger checkpoint an update left for idle time."""

from __future__ import annotations

import time
from pathlib import Path

from exporters.series_hook import LiveSeriesHook
from growthwatch.metrics.engine import MetricsEngine
from growthwatch.stores.ledger import Ledger


def test_the_idle_series_thread_runs_the_release_an_update_left(tmp_path: Path) -> None:
    with Ledger(tmp_path / "ledger.duckdb") as ledger:
        engine = MetricsEngine(ledger, state_path=tmp_path / "engine.json")
        calls: list[bool] = []
        real = engine.release

        def counted() -> bool:
            calls.append(engine.release_due)
            return real()

        engine.release = counted  # type: ignore[method-assign]
        engine.release_due = True  # as an update whose last family left the share full
        hook = LiveSeriesHook(engine=engine, stores=[])
        try:
            deadline = time.monotonic() + 30  # arrival, not speed: the thread waits 0.5 s
            while engine.release_due and time.monotonic() < deadline:
                time.sleep(0.05)
            assert not engine.release_due
            assert calls[0] is True  # the thread's own call found it due and ran it
        finally:
            hook.close()
