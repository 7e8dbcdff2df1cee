"""The growth event: the one shape every source is turned into.

Metrics are functions of these events and nothing else, so the rules that make a metric
trustworthy live here: money is a ``Decimal`` with an ISO 4217 currency, time is aware
UTC, subscription lifecycle events carry the customer's MRR before and after (movements
become sums, not guesses), and every event has an idempotency key derived only from the
source's own identifiers, so a replayed webhook or a re-run pull produces the same key and
is stored once.
"""

from __future__ import annotations

import dataclasses
import hashlib
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from enum import StrEnum
from types import MappingProxyType
from typing import Any, Final

from growthwatch import currency as iso4217

MetadataValue = str | int | float | bool | None


class EventType(StrEnum):
    """What happened. The value is what the ledger and InfluxDB tags store."""

    PAYMENT = "payment"  # money received (invoice paid, charge succeeded)
    PAYMENT_FAILED = "payment_failed"  # an attempted charge failed (value: amount attempted)
    REFUND = "refund"  # money returned; value is the positive amount refunded
    TRIAL_STARTED = "trial_started"  # a trial began; MRR stays 0 until the first paid period
    SUBSCRIPTION_STARTED = "subscription_started"
    SUBSCRIPTION_CHANGED = "subscription_changed"  # plan, seats, discount, trial conversion
    SUBSCRIPTION_CANCELLED = "subscription_cancelled"  # recognised churn (MRR -> lower/0)
    SUBSCRIPTION_REACTIVATED = "subscription_reactivated"
    SIGNUP = "signup"
    ACTIVATION = "activation"
    ACTIVE_USE = "active_use"  # engagement: one "user was active" signal
    SESSION = "session"  # traffic: value = number of sessions, metadata["channel"] required
    KPI = "kpi"  # a custom KPI value from a product database, metadata["kpi"] names it
    # (Appended, so the demo's compact type codes stay stable.)
    # A pause (Stripe ``pause_collection`` or status ``paused``): MRR -> 0 without churn;
    # the resume brings it back. Neither is churn nor reactivation (METRICS.md).
    SUBSCRIPTION_PAUSED = "subscription_paused"
    SUBSCRIPTION_RESUMED = "subscription_resumed"


MONETARY_TYPES: Final = frozenset(
    {
        EventType.PAYMENT,
        EventType.PAYMENT_FAILED,
        EventType.REFUND,
        EventType.TRIAL_STARTED,
        EventType.SUBSCRIPTION_STARTED,
        EventType.SUBSCRIPTION_CHANGED,
        EventType.SUBSCRIPTION_CANCELLED,
        EventType.SUBSCRIPTION_REACTIVATED,
        EventType.SUBSCRIPTION_PAUSED,
        EventType.SUBSCRIPTION_RESUMED,
    }
)
SUBSCRIPTION_TYPES: Final = frozenset(
    {
        EventType.TRIAL_STARTED,
        EventType.SUBSCRIPTION_STARTED,
        EventType.SUBSCRIPTION_CHANGED,
        EventType.SUBSCRIPTION_CANCELLED,
        EventType.SUBSCRIPTION_REACTIVATED,
        EventType.SUBSCRIPTION_PAUSED,
        EventType.SUBSCRIPTION_RESUMED,
    }
)
# Events about one person: a customer (money) or a user (product analytics).
SUBJECT_TYPES: Final = frozenset(EventType) - {EventType.SESSION, EventType.KPI}
# One event = one occurrence; value must be exactly 1.
UNIT_TYPES: Final = frozenset({EventType.SIGNUP, EventType.ACTIVATION, EventType.ACTIVE_USE})
# Metadata keys that must be present for a type (they become low-cardinality tags).
REQUIRED_METADATA: Final[Mapping[EventType, tuple[str, ...]]] = MappingProxyType(
    {EventType.SESSION: ("channel",), EventType.KPI: ("kpi",)}
)

PRODUCT_ID = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")
# DuckDB DECIMAL(18, 6): the ledger's money type. Values outside it cannot be stored exactly.
MAX_ABS_VALUE: Final = Decimal("999999999999.999999")
VALUE_EXPONENT: Final = -6


class EventValidationError(ValueError):
    """An event field is invalid. ``field`` and ``value`` say which and what."""

    def __init__(self, field_name: str, value: object, reason: str) -> None:
        self.field = field_name
        self.value = value
        self.reason = reason
        super().__init__(f"invalid growth event: {field_name}={value!r}: {reason}")


def idempotency_key(source: str, source_id: str, kind: str) -> str:
    """Derive an event's idempotency key from the source's own identifiers.

    32 lowercase hex digits (the first 128 bits of SHA-256 over the three parts joined by
    the ASCII unit separator), so the ledger can store it as a 16-byte UUID. Deterministic
    across processes and machines: the Stripe webhook and the Stripe backfill that see the
    same ``evt_...`` object produce the same key.
    """
    if "\x1f" in source or "\x1f" in kind:
        # With both leading parts free of the separator, the split is unambiguous even when
        # source_id contains it.
        raise EventValidationError("source/kind", f"{source}/{kind}", "contains \\x1f")
    raw = f"{source}\x1f{kind}\x1f{source_id}".encode()
    return hashlib.sha256(raw).hexdigest()[:32]


def _decimal(field_name: str, value: object) -> Decimal:
    if isinstance(value, float):
        raise EventValidationError(
            field_name, value, "floats are not exact; pass a Decimal, int or numeric string"
        )
    if isinstance(value, bool):
        raise EventValidationError(field_name, value, "a boolean is not an amount")
    try:
        number = value if isinstance(value, Decimal) else Decimal(str(value))
    except (InvalidOperation, ValueError) as exc:
        raise EventValidationError(field_name, value, "not a number") from exc
    if not number.is_finite():
        raise EventValidationError(field_name, value, "must be finite")
    if abs(number) > MAX_ABS_VALUE:
        raise EventValidationError(field_name, value, f"magnitude exceeds {MAX_ABS_VALUE}")
    if number != number.quantize(Decimal(1).scaleb(VALUE_EXPONENT)):
        raise EventValidationError(field_name, value, "more than 6 decimal places")
    return number


def _text(field_name: str, value: object, *, max_len: int = 256) -> str:
    if not isinstance(value, str) or not value.strip():
        raise EventValidationError(field_name, value, "must be a non-empty string")
    if len(value) > max_len:
        raise EventValidationError(field_name, value, f"longer than {max_len} characters")
    return value


@dataclass(frozen=True, slots=True, kw_only=True)
class GrowthEvent:
    """One immutable growth event.

    ``value`` by type: payment/refund/payment_failed: the amount (positive); subscription
    types: the MRR change (``mrr_after - mrr_before``, per month, in ``currency``);
    signup/activation/active_use: 1; session: the number of sessions; kpi: the KPI value.
    """

    product: str
    type: EventType
    timestamp: datetime
    value: Decimal
    source: str
    source_id: str
    kind: str = ""
    currency: str | None = None
    subject: str | None = None
    mrr_before: Decimal | None = None
    mrr_after: Decimal | None = None
    metadata: Mapping[str, MetadataValue] = field(default_factory=dict)
    idempotency_key: str = field(init=False)

    def __post_init__(self) -> None:
        setter = object.__setattr__
        if not isinstance(self.product, str) or not PRODUCT_ID.match(self.product):
            raise EventValidationError(
                "product", self.product, "must match [a-z0-9][a-z0-9_-]* (max 63 chars)"
            )
        try:
            etype = EventType(self.type)
        except ValueError as exc:
            allowed = ", ".join(t.value for t in EventType)
            raise EventValidationError("type", self.type, f"must be one of: {allowed}") from exc
        setter(self, "type", etype)
        setter(self, "timestamp", _utc("timestamp", self.timestamp))
        setter(self, "source", _text("source", self.source, max_len=64))
        setter(self, "source_id", _text("source_id", self.source_id))
        setter(self, "kind", self.kind or etype.value)
        setter(self, "value", _decimal("value", self.value))
        self._check_currency(etype)
        self._check_subject(etype)
        self._check_mrr(etype)
        self._check_value(etype)
        setter(self, "metadata", _frozen_metadata(self.metadata, etype))
        setter(self, "idempotency_key", idempotency_key(self.source, self.source_id, self.kind))

    def _check_currency(self, etype: EventType) -> None:
        if etype in MONETARY_TYPES:
            if not iso4217.is_currency(self.currency):
                raise EventValidationError(
                    "currency", self.currency, "must be an upper-case ISO 4217 code, e.g. USD"
                )
        elif self.currency is not None:
            raise EventValidationError(
                "currency", self.currency, f"{etype.value} events carry no currency"
            )

    def _check_subject(self, etype: EventType) -> None:
        if etype in SUBJECT_TYPES or self.subject is not None:
            _text("subject", self.subject)

    def _check_mrr(self, etype: EventType) -> None:
        if etype not in SUBSCRIPTION_TYPES:
            for name in ("mrr_before", "mrr_after"):
                if getattr(self, name) is not None:
                    raise EventValidationError(
                        name, getattr(self, name), "only subscription events carry MRR"
                    )
            return
        for name in ("mrr_before", "mrr_after"):
            raw = getattr(self, name)
            if raw is None:
                raise EventValidationError(name, raw, f"required for {etype.value} events")
            amount = _decimal(name, raw)
            if amount < 0:
                raise EventValidationError(name, raw, "MRR cannot be negative")
            object.__setattr__(self, name, amount)
        assert self.mrr_before is not None and self.mrr_after is not None
        if etype == EventType.SUBSCRIPTION_PAUSED and self.mrr_after != 0:
            raise EventValidationError("mrr_after", self.mrr_after, "a paused subscription has MRR 0")
        if etype == EventType.SUBSCRIPTION_RESUMED and self.mrr_before != 0:
            raise EventValidationError("mrr_before", self.mrr_before, "a resume starts from MRR 0")
        if self.value != self.mrr_after - self.mrr_before:
            raise EventValidationError(
                "value",
                self.value,
                f"must equal mrr_after - mrr_before = {self.mrr_after - self.mrr_before}",
            )

    def _check_value(self, etype: EventType) -> None:
        if etype in UNIT_TYPES and self.value != 1:
            raise EventValidationError("value", self.value, f"{etype.value} events count 1")
        if etype in (EventType.PAYMENT, EventType.REFUND) and self.value <= 0:
            raise EventValidationError("value", self.value, "must be a positive amount")
        if etype in (EventType.PAYMENT_FAILED, EventType.SESSION) and self.value < 0:
            raise EventValidationError("value", self.value, "cannot be negative")

    def with_metadata(self, **extra: MetadataValue) -> GrowthEvent:
        """A copy with more metadata; the idempotency key is unchanged by design."""
        return dataclasses.replace(self, metadata={**self.metadata, **extra})

    def to_record(self) -> dict[str, Any]:
        """A plain dict in the ledger's column layout (see ``growthwatch.frames``)."""
        return {
            "idempotency_key": self.idempotency_key,
            "product": self.product,
            "type": self.type.value,
            "ts": self.timestamp,
            "value": self.value,
            "currency": self.currency,
            "subject": self.subject,
            "mrr_before": self.mrr_before,
            "mrr_after": self.mrr_after,
            "plan": _opt_str(self.metadata.get("plan")),
            "channel": _opt_str(self.metadata.get("channel")),
            "metadata": dict(self.metadata),
            "source": self.source,
            "source_id": self.source_id,
            "kind": self.kind,
        }


def _opt_str(value: MetadataValue) -> str | None:
    return None if value is None else str(value)


def _utc(field_name: str, value: object) -> datetime:
    if not isinstance(value, datetime):
        raise EventValidationError(field_name, value, "must be a datetime")
    if value.tzinfo is None or value.tzinfo.utcoffset(value) is None:
        raise EventValidationError(
            field_name, value, "naive datetime: give a timezone (sources report UTC)"
        )
    return value.astimezone(UTC)


def _frozen_metadata(
    metadata: Mapping[str, MetadataValue], etype: EventType
) -> Mapping[str, MetadataValue]:
    if not isinstance(metadata, Mapping):
        raise EventValidationError("metadata", metadata, "must be a mapping")
    for key, value in metadata.items():
        if not isinstance(key, str) or not key:
            raise EventValidationError("metadata", key, "keys must be non-empty strings")
        if value is not None and not isinstance(value, str | int | float | bool):
            raise EventValidationError(
                f"metadata.{key}", value, "values must be str, int, float, bool or None"
            )
        if isinstance(value, float) and not math.isfinite(value):
            raise EventValidationError(f"metadata.{key}", value, "must be finite")
    for key in REQUIRED_METADATA.get(etype, ()):
        value = metadata.get(key)
        if not isinstance(value, str) or not value:
            raise EventValidationError(
                f"metadata.{key}", value, f"required for {etype.value} events"
            )
    return MappingProxyType(dict(metadata))
