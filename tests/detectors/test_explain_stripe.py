"""The explanation names Stripe's cancellation reason (``cancellation_details.reason``).

The cancellations go through the real Stripe mapping (``subscription_transition`` on a
``customer.subscription.deleted`` object in Stripe's shape), so the test breaks if the
mapping's metadata key and the detector's default dimensions drift apart.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from detectors.evaluate import intraday_findings
from detectors.scenario import seed_history, subscription
from detectors.settings import DetectorSettings
from exporters.stripe_mapping import subscription_transition
from growthwatch import Ledger

DAY = datetime(2026, 3, 10, tzinfo=UTC)


def test_a_spike_of_payment_failed_cancellations_is_explained_by_the_stripe_reason(
    tmp_path: Path,
) -> None:
    ledger = Ledger(tmp_path / "ledger.duckdb")
    seed_history(ledger, "acme", DAY)  # ~2 a day, metadata reason=voluntary, no cancel_reason
    events = []
    for i in range(12):  # 12 cancellations between 09:00 and 10:50
        ended = int((DAY + timedelta(hours=9, minutes=10 * i)).timestamp())
        sub = subscription(f"sub_x{i:04d}", ended - 90 * 86_400, ended)
        events += subscription_transition(None, sub, product="acme", observed=ended,
                                          event_type="customer.subscription.deleted").events  # fmt: skip
    assert any(e.metadata.get("cancel_reason") == "payment_failed" for e in events)
    ledger.append(events)
    settings = DetectorSettings.from_section({"metrics": ["customers_daily.cancellations"]})
    [found] = intraday_findings(ledger, settings.metrics[0], settings, "acme",
                                [DAY + timedelta(hours=11)])  # fmt: skip
    ledger.close()
    assert found.severity
    # every one of the 12 carries cancel_reason=payment_failed and none of the baseline does
    assert "cancel_reason=payment_failed" in found.explanation, found.explanation
    assert "100 % of the excess" in found.explanation
