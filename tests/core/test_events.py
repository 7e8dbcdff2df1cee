"""GrowthEvent: validation errors name the field and the value; keys are deterministic."""

from __future__ import annotations

import dataclasses
import hashlib
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import pytest

from growthwatch.currency import from_minor
from growthwatch.events import EventType, EventValidationError, GrowthEvent, idempotency_key

T0 = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)


def payment(**overrides: Any) -> GrowthEvent:
    fields: dict[str, Any] = dict(
        product="acme-crm",
        type=EventType.PAYMENT,
        timestamp=T0,
        value=Decimal("49.00"),
        currency="USD",
        subject="cus_1",
        source="stripe",
        source_id="evt_1",
    )
    fields.update(overrides)
    return GrowthEvent(**fields)


def subscription(**overrides: Any) -> GrowthEvent:
    fields: dict[str, Any] = dict(
        type=EventType.SUBSCRIPTION_CHANGED,
        value=Decimal("30"),
        mrr_before=Decimal("20"),
        mrr_after=Decimal("50"),
        metadata={"subscription": "sub_1", "plan": "pro"},
    )
    fields.update(overrides)
    return payment(**fields)


@pytest.mark.parametrize(
    ("overrides", "field", "fragment"),
    [
        ({"timestamp": datetime(2025, 3, 1, 12, 0)}, "timestamp", "naive"),
        ({"timestamp": "2025-03-01"}, "timestamp", "must be a datetime"),
        ({"currency": "usd"}, "currency", "ISO 4217"),
        ({"currency": "XYZ"}, "currency", "ISO 4217"),
        ({"currency": None}, "currency", "ISO 4217"),
        ({"value": 49.0}, "value", "floats are not exact"),
        ({"value": "abc"}, "value", "not a number"),
        ({"value": Decimal("NaN")}, "value", "finite"),
        ({"value": Decimal("1.0000001")}, "value", "6 decimal places"),
        ({"value": Decimal("-5")}, "value", "positive"),
        ({"value": Decimal("1e13")}, "value", "magnitude"),
        ({"product": "Acme CRM"}, "product", "must match"),
        ({"type": "purchase"}, "type", "must be one of"),
        ({"subject": ""}, "subject", "non-empty"),
        ({"subject": None}, "subject", "non-empty"),
        ({"source_id": ""}, "source_id", "non-empty"),
        ({"mrr_after": Decimal("5")}, "mrr_after", "only subscription events"),
        ({"metadata": {"nested": {"a": 1}}}, "metadata.nested", "values must be"),
    ],
)
def test_invalid_payment_names_field_and_value(
    overrides: dict[str, Any], field: str, fragment: str
) -> None:
    with pytest.raises(EventValidationError) as info:
        payment(**overrides)
    assert info.value.field == field
    assert fragment in str(info.value)
    bad_value = next(iter(overrides.values()))
    if not isinstance(bad_value, dict):
        assert repr(bad_value) in str(info.value)


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"mrr_before": None}, "mrr_before"),
        ({"mrr_after": Decimal("-1"), "value": Decimal("-21")}, "mrr_after"),
        ({"value": Decimal("25")}, "value"),  # 50 - 20 is 30
    ],
)
def test_invalid_subscription_event(overrides: dict[str, Any], field: str) -> None:
    with pytest.raises(EventValidationError) as info:
        subscription(**overrides)
    assert info.value.field == field


def test_type_specific_rules() -> None:
    base = dict(product="p", timestamp=T0, source="mixpanel", source_id="i1")
    with pytest.raises(EventValidationError, match="signup events count 1"):
        GrowthEvent(type=EventType.SIGNUP, value=Decimal(2), subject="u1", **base)  # type: ignore[arg-type]
    with pytest.raises(EventValidationError, match="signup events carry no currency"):
        GrowthEvent(type="signup", value=Decimal(1), subject="u", currency="USD", **base)  # type: ignore[arg-type]
    with pytest.raises(EventValidationError) as info:
        GrowthEvent(type="session", value=Decimal(3), **base)  # type: ignore[arg-type]
    assert info.value.field == "metadata.channel"
    with pytest.raises(EventValidationError) as info:
        GrowthEvent(type="kpi", value=Decimal(3), **base)  # type: ignore[arg-type]
    assert info.value.field == "metadata.kpi"
    session = GrowthEvent(type="session", value=Decimal(3), metadata={"channel": "organic"}, **base)  # type: ignore[arg-type]
    assert session.subject is None and session.type is EventType.SESSION


def test_timestamp_normalised_to_utc() -> None:
    cest = timezone(timedelta(hours=2))
    event = payment(timestamp=datetime(2025, 3, 1, 14, 0, tzinfo=cest))
    assert event.timestamp == T0
    assert event.timestamp.utcoffset() == timedelta(0)


def test_immutable() -> None:
    event = subscription()
    with pytest.raises(dataclasses.FrozenInstanceError):
        event.value = Decimal(1)  # type: ignore[misc]
    with pytest.raises(TypeError):
        event.metadata["plan"] = "enterprise"  # type: ignore[index]


def test_idempotency_key_from_source_ids_only() -> None:
    expected = hashlib.sha256(b"stripe\x1fpayment\x1fevt_1").hexdigest()[:32]
    assert payment().idempotency_key == expected
    assert idempotency_key("stripe", "evt_1", "payment") == expected
    # Other fields do not change the key: the same source fact is the same event.
    assert payment(value=Decimal("1"), timestamp=T0 + timedelta(days=1)).idempotency_key == expected
    assert payment(kind="invoice.paid").idempotency_key != expected
    assert payment(source="csv").idempotency_key != expected
    assert payment(source_id="evt_2").idempotency_key != expected
    # The separator may not appear in source or kind, so no two id triples share a key.
    with pytest.raises(EventValidationError):
        idempotency_key("a", "y", "k\x1fx")
    assert idempotency_key("a", "x\x1fy", "k") != idempotency_key("a", "y", "k")


def test_with_metadata_keeps_key() -> None:
    event = subscription()
    richer = event.with_metadata(country="DE")
    assert richer.metadata["country"] == "DE" and richer.metadata["plan"] == "pro"
    assert richer.idempotency_key == event.idempotency_key


def test_minor_units() -> None:
    assert from_minor(1999, "usd") == Decimal("19.99")
    assert from_minor(1999, "JPY") == Decimal("1999")
    assert from_minor(1999, "KWD") == Decimal("1.999")
