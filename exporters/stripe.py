"""Stripe: scheduled pulls (Events API, list-endpoint backfills) through the official SDK.

Two ways in, one processor. Recent history (Stripe keeps events for 30 days) is read from
``GET /v1/events`` in chronological order; each event goes through the same inbox as a
webhook of that ``evt_`` id, so a pulled event that a webhook already delivered is skipped
and vice versa. Older history comes from the list endpoints (subscriptions, charges,
refunds, invoices, customers), window by window, with cursor pagination; a list object
is the *current* state, so the backfill produces the facts that state proves (started,
cancelled, payments, refunds, failed attempts) with the same ids the webhook path uses.

Subscription events need the previous MRR, and deliveries come in any order: the last
applied state of every subscription (status, MRR, the ``created`` time of the observation)
lives in the state file; an observation older than it changes nothing. All of one
product's Stripe processing goes through one lock, so the chain of before/after values
never forks between the webhook worker and a pull.

Rate limits: the SDK does not retry a plain 429, so every request (each list page) is
retried here with exponential backoff; 5xx and network errors too. Authentication
errors stop the run with a message naming the key and the account.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar, TypeVar

import stripe

from exporters import telemetry
from exporters.base import (
    Batch,
    Rejection,
    RetriesExhausted,
    Retryable,
    RetryPolicy,
    SourceAuthError,
    SourceError,
    SourceUnavailable,
    Stream,
    invalid_reason,
)
from exporters.state import StateStore
from exporters.stripe_history import Rebuild, pending_invoice, rebuild_subscription
from exporters.stripe_mapping import (
    MappingError,
    charge_payment,
    credit_note_event,
    customer_signup,
    ident,
    invoice_payment_failed,
    refund_event,
    subscription_transition,
)
from growthwatch import clock
from growthwatch.config import SourceConfig
from growthwatch.config.schema import SECRET
from growthwatch.events import EventValidationError, GrowthEvent
from growthwatch.frames import events_to_frame

log = logging.getLogger(__name__)

T = TypeVar("T")
EVENTS_RETENTION = timedelta(days=30)
SUBSCRIPTION_EVENTS = frozenset(
    {
        "customer.subscription.created",
        "customer.subscription.updated",
        "customer.subscription.deleted",
        "customer.subscription.paused",
        "customer.subscription.resumed",
    }
)
CHARGE_EVENTS = frozenset({"charge.succeeded", "charge.captured"})
REFUND_EVENTS = frozenset({"refund.created", "refund.updated", "charge.refund.updated"})
HANDLED_EVENTS = (
    SUBSCRIPTION_EVENTS
    | CHARGE_EVENTS
    | REFUND_EVENTS
    | {"charge.refunded", "invoice.payment_failed", "customer.created", "credit_note.created"}
)
HISTORY_PREFIX = "hist:"  # per-subscription outcome of the invoice rebuild (state objects)


class StripeApi:
    """The SDK client plus what it lacks: 429 backoff, page-level retries, clear auth errors."""

    def __init__(
        self,
        api_key: str,
        *,
        api_base: str | None = None,
        api_version: str | None = None,
        account: str | None = None,
        policy: RetryPolicy | None = None,
    ) -> None:
        self.client = stripe.StripeClient(
            api_key,
            base_addresses={"api": api_base} if api_base else None,
            stripe_version=api_version,
            stripe_account=account,
            max_network_retries=0,  # retried here, with one policy for 429, 5xx and network
        )
        self.account = account
        self.key_hint = f"{api_key[:8]}..." if len(api_key) > 12 else "the configured key"
        self.policy = policy or RetryPolicy()

    def call(self, fn: Callable[[], T]) -> T:
        def attempt() -> T:
            try:
                return fn()
            except (stripe.AuthenticationError, stripe.PermissionError) as exc:
                telemetry.api_error("stripe", exc.http_status)
                who = f" for account {self.account}" if self.account else ""
                raise SourceAuthError(
                    f"stripe: the API refused key {self.key_hint}{who} "
                    f"(HTTP {exc.http_status}: {exc.user_message}); check api_key (a secret "
                    "or restricted key with read access to events, subscriptions, invoices, "
                    "charges, refunds and customers)"
                ) from exc
            except (stripe.RateLimitError, stripe.APIConnectionError, stripe.APIError) as exc:
                status = exc.http_status
                telemetry.api_error("stripe", status)
                last = f"HTTP {status}: {exc.user_message}" if status else str(exc)
                retry_after = (exc.headers or {}).get("Retry-After") if exc.headers else None
                raise Retryable(last, retry_after=retry_after) from exc
            except stripe.StripeError as exc:
                telemetry.api_error("stripe", exc.http_status)
                if exc.http_status == 429 or (exc.http_status or 0) >= 500:
                    raise Retryable(f"HTTP {exc.http_status}: {exc.user_message}") from exc
                raise SourceError(f"stripe: {exc.user_message or exc}") from exc

        try:
            return self.policy.call(attempt, what="stripe")
        except RetriesExhausted as exc:
            raise SourceUnavailable(str(exc)) from exc

    def pages(self, resource: str, params: dict[str, Any]) -> Iterator[list[dict[str, Any]]]:
        """Every page of a list endpoint as plain dicts (cursor pagination, 100 a page).

        The SDK's ``auto_paging_iter`` would raise out of the middle of an iteration on a
        429; fetching page by page with ``starting_after`` lets each page be retried. Pages
        come through the SDK's ``raw_request`` (same auth, version, encoding and errors),
        parsed as JSON only: building StripeObjects for thousands of invoices and events
        only to turn them back into dicts cost most of a backfill's time.
        """
        path = resource if resource.startswith("/") else f"/v1/{resource}"
        query = {"limit": 100, **params}

        def fetch(q: dict[str, Any]) -> Callable[[], Any]:
            return lambda: self.client.raw_request("get", path, **q)

        while True:
            page = self.call(fetch(dict(query)))
            body = page.data if isinstance(page.data, dict) else {}
            data = [obj for obj in body.get("data") or [] if isinstance(obj, dict)]
            yield data
            if not body.get("has_more") or not data:
                return
            query["starting_after"] = data[-1]["id"]

    def refunds_of(self, charge_id: str) -> list[dict[str, Any]]:
        return [r for page in self.pages("refunds", {"charge": charge_id}) for r in page]

    def invoices_of(self, sub_id: str) -> list[dict[str, Any]]:
        """Every invoice of a subscription with all its lines and its discounts expanded."""
        params = {"subscription": sub_id, "expand": ["data.discounts"]}
        invoices = [i for page in self.pages("invoices", params) for i in page]
        for invoice in invoices:
            lines = invoice.get("lines")
            if isinstance(lines, dict) and lines.get("has_more") and invoice.get("id"):
                invoice["lines"] = {**lines, "has_more": False,
                                    "data": self.lines_of(str(invoice["id"]))}  # fmt: skip
        return invoices

    def pending_items(self) -> dict[str, list[dict[str, Any]]]:
        """The account's pending (not yet invoiced) invoice items, by subscription id."""
        found: dict[str, list[dict[str, Any]]] = {}
        for page in self.pages("invoiceitems", {"pending": True}):
            for item in page:
                parent = item.get("parent") or {}
                details = parent.get("subscription_details") or {}
                sub = ident(details.get("subscription")) or ident(item.get("subscription"))
                if sub:
                    found.setdefault(sub, []).append(item)
        return found

    def lines_of(self, invoice_id: str) -> list[dict[str, Any]]:
        """All line items of one invoice (``GET /v1/invoices/{id}/lines``, paginated)."""
        return [x for page in self.pages(f"/v1/invoices/{invoice_id}/lines", {}) for x in page]

    def price(self, price_id: str) -> dict[str, Any]:
        found = self.call(lambda: self.client.raw_request("get", f"/v1/prices/{price_id}"))
        return found.data if isinstance(found.data, dict) else {}


@dataclass
class _Work:
    """One batch being mapped: events, rejections, and the state to commit with it."""

    events: list[GrowthEvent] = field(default_factory=list)
    rejected: list[Rejection] = field(default_factory=list)
    subs: dict[str, dict[str, Any] | None] = field(default_factory=dict)
    changed_subs: set[str] = field(default_factory=set)
    processed: list[tuple[str, str]] = field(default_factory=list)  # (event id, outcome)
    history: dict[str, dict[str, Any]] = field(default_factory=dict)  # sub id -> outcome


class StripeProcessor:
    """Maps Stripe events and objects of one product, with per-subscription state."""

    def __init__(
        self,
        stream_id: str,
        product: str,
        state: StateStore,
        *,
        api: StripeApi | None = None,
        customer_signups: bool = False,
    ) -> None:
        self.stream_id = stream_id
        self.product = product
        self.state = state
        self.api = api
        self.customer_signups = customer_signups
        self.lock = threading.RLock()
        self._prices: dict[str, dict[str, Any]] = {}

    def new_work(self) -> _Work:
        return _Work()

    def _sub_state(self, work: _Work, sub_id: str) -> dict[str, Any] | None:
        if sub_id not in work.subs:
            work.subs[sub_id] = self.state.get_object(self.stream_id, f"sub:{sub_id}")
        return work.subs[sub_id]

    def _guard(self, work: _Work, record: Any, fn: Callable[[], None]) -> bool:
        """Run one record's mapping; a bad record becomes a rejection, never an exception."""
        try:
            fn()
            return True
        except MappingError as exc:
            work.rejected.append(Rejection(exc.reason, exc.detail, _dump(record)))
        except EventValidationError as exc:
            work.rejected.append(Rejection(invalid_reason(exc.field), str(exc), _dump(record)))
        except (KeyError, TypeError, ValueError, AttributeError, ArithmeticError, OSError) as exc:
            # ArithmeticError: Decimal("NaN") arithmetic, OverflowError of a timestamp like
            # 1e20; OSError: datetime.fromtimestamp out of the platform's range.
            work.rejected.append(
                Rejection("malformed_record", f"{type(exc).__name__}: {exc}", _dump(record))
            )
        return False

    def _subscription(
        self, work: _Work, sub: dict[str, Any], observed: int, event_id: str | None,
        event_type: str | None,
    ) -> None:  # fmt: skip
        sub_id = ident(sub.get("id"))
        if not sub_id:
            raise MappingError("missing_id", "subscription without an id")
        self._resolve_discounts(sub)
        step = subscription_transition(
            self._sub_state(work, sub_id), sub, product=self.product, observed=observed,
            event_id=event_id, event_type=event_type,
        )  # fmt: skip
        if step.state is not None:
            work.subs[sub_id] = step.state
            work.changed_subs.add(sub_id)
        work.events.extend(step.events)

    def _resolve_discounts(self, sub: dict[str, Any]) -> None:
        """Newer API versions send discount ids only; expand them when we have a client."""
        discounts = sub.get("discounts")
        if self.api is None or not isinstance(discounts, list):
            return
        if not any(isinstance(d, str) for d in discounts) or not sub.get("id"):
            return
        try:
            fresh = self.api.call(
                lambda: self.api.client.v1.subscriptions.retrieve(  # type: ignore[union-attr]
                    sub["id"], {"expand": ["discounts"]}
                )
            ).to_dict()
        except SourceError as exc:
            log.warning("stripe: could not expand discounts of %s: %s", sub["id"], exc)
            return
        sub["discounts"] = fresh.get("discounts", discounts)

    def add_event(self, work: _Work, event: dict[str, Any]) -> None:
        """One Stripe event (webhook or Events API) into the batch."""
        if not isinstance(event, dict):
            work.rejected.append(Rejection("malformed_record", "an event that is no JSON object",
                                           _dump(event)))  # fmt: skip
            return
        event_id = ident(event.get("id"))
        if not event_id:
            work.rejected.append(Rejection("missing_id", "event without an id", _dump(event)))
            return
        etype = str(event.get("type"))
        data = event.get("data")
        obj = data.get("object") if isinstance(data, dict) else None
        if etype not in HANDLED_EVENTS:
            work.processed.append((event_id, "ignored"))
            return
        if not isinstance(obj, dict):
            work.rejected.append(Rejection("malformed_record", f"{event_id}: no data.object"))
            work.processed.append((event_id, "rejected"))
            return
        created = event.get("created")
        observed = int(created) if isinstance(created, int | float) else int(time.time())

        def handle() -> None:
            if etype in SUBSCRIPTION_EVENTS:
                self._subscription(work, obj, observed, event_id, etype)
            elif etype in CHARGE_EVENTS:
                self._append(work, charge_payment(obj, self.product))
            elif etype == "charge.refunded":
                refunds = (obj.get("refunds") or {}).get("data")
                if not refunds and self.api is not None and obj.get("id"):
                    refunds = self.api.refunds_of(obj["id"])
                for refund in refunds or []:
                    self._append(work, refund_event(refund, self.product, obj.get("customer")))
            elif etype in REFUND_EVENTS:
                self._append(work, refund_event(obj, self.product))
            elif etype == "invoice.payment_failed":
                self._append(work, invoice_payment_failed(obj, self.product, at=observed))
            elif etype == "customer.created" and self.customer_signups:
                self._append(work, customer_signup(obj, self.product))
            elif etype == "credit_note.created":
                self._append(work, credit_note_event(obj, self.product))

        ok = self._guard(work, event, handle)
        work.processed.append((event_id, "ok" if ok else "rejected"))

    def add_object(self, work: _Work, resource: str, obj: dict[str, Any], observed: int) -> None:
        """One list-endpoint object (its current state, fetched at ``observed``)."""

        def handle() -> None:
            if resource == "subscriptions":
                self._subscription(work, obj, observed, None, None)
            elif resource == "charges":
                self._append(work, charge_payment(obj, self.product))
            elif resource == "refunds":
                self._append(work, refund_event(obj, self.product))
            elif resource == "invoices":
                self._append(work, invoice_payment_failed(obj, self.product))
            elif resource == "customers" and self.customer_signups:
                self._append(work, customer_signup(obj, self.product))
            elif resource == "credit_notes":
                self._append(work, credit_note_event(obj, self.product))

        self._guard(work, obj, handle)

    def price(self, price_id: str) -> dict[str, Any]:
        """A price object by id (invoice lines carry ids), fetched once per run."""
        if price_id not in self._prices:
            if self.api is None:
                raise MappingError("missing_price", f"price {price_id} cannot be fetched")
            self._prices[price_id] = self.api.price(price_id)
        return self._prices[price_id]

    def add_history(
        self, work: _Work, sub: dict[str, Any], invoices: list[dict[str, Any]], now: int
    ) -> Rebuild | None:
        """One subscription's past, rebuilt from its invoices, as lifecycle events.

        The chain of snapshots is mapped from an empty state, so a re-run yields the same
        events (duplicates in the ledger) and facts the webhook path already stored keep
        their one event. The subscription's saved state is replaced only when the rebuild
        reaches later than it (a webhook may already have applied a newer observation).
        """
        sub_id = ident(sub.get("id"))
        if not sub_id:
            work.rejected.append(Rejection("missing_id", "subscription without an id",
                                           _dump(sub)))  # fmt: skip
            return None
        self._resolve_discounts(sub)
        found: list[Rebuild] = []

        def handle() -> None:
            rebuild = rebuild_subscription(sub, invoices, self.price, now=now)
            prev: dict[str, Any] | None = None
            events: list[GrowthEvent] = []
            for observed, snap in rebuild.snapshots:
                step = subscription_transition(prev, snap, product=self.product,
                                               observed=observed)  # fmt: skip
                if step.state is not None:
                    prev = step.state
                events.extend(step.events)
            work.events.extend(events)
            found.append(rebuild)
            saved = self._sub_state(work, sub_id)
            if prev is not None and (saved is None or int(saved["observed"]) <= prev["observed"]):
                work.subs[sub_id] = prev
                work.changed_subs.add(sub_id)

        if self._guard(work, sub, handle):
            rebuild = found[0]
            work.history[sub_id] = {
                "outcome": rebuild.outcome,
                "assumptions": [{"reason": a.reason, "detail": a.detail}
                                for a in rebuild.assumptions],
            }  # fmt: skip
            return rebuild
        reason = work.rejected[-1].reason if work.rejected else "rejected"
        work.history[sub_id] = {"outcome": "failed", "assumptions": [],
                                "reason": reason}  # fmt: skip
        return None

    @staticmethod
    def _append(work: _Work, event: GrowthEvent | None) -> None:
        if event is not None:
            work.events.append(event)

    def batch(self, work: _Work, **extra: Any) -> Batch:
        """The work as a batch whose commit saves subscription states and marks events done."""

        def commit() -> None:
            with self.state.transaction() as con:
                for sub_id in work.changed_subs:
                    value = work.subs[sub_id]
                    con.execute(
                        "INSERT OR REPLACE INTO objects VALUES (?, ?, ?, ?)",
                        (self.stream_id, f"sub:{sub_id}", json.dumps(value, sort_keys=True),
                         datetime.now(UTC).isoformat()),
                    )  # fmt: skip
                for event_id, outcome in work.processed:
                    con.execute(
                        "UPDATE inbox SET processed_at = ?, outcome = ? "
                        "WHERE stream = ? AND event_id = ?",
                        (datetime.now(UTC).isoformat(), outcome, self.stream_id, event_id),
                    )
                for sub_id, found in work.history.items():
                    con.execute(
                        "INSERT OR REPLACE INTO objects VALUES (?, ?, ?, ?)",
                        (self.stream_id, f"{HISTORY_PREFIX}{sub_id}",
                         json.dumps(found, sort_keys=True), datetime.now(UTC).isoformat()),
                    )  # fmt: skip

        # More than a handful of events go to the ledger as one frame (one INSERT ... SELECT)
        # rather than as parameter rows, which cost a few ms each (a backfill window holds
        # dozens).
        events = events_to_frame(work.events) if len(work.events) > 5 else work.events
        return Batch(events=events, rejected=work.rejected, on_commit=commit, **extra)


def _dump(record: Any) -> str:
    return json.dumps(record, default=str)[:20000]


class StripeStream(Stream):
    """Subscriptions, charges, refunds, invoices and customers of one Stripe account."""

    source_type: ClassVar[str] = "stripe"
    options: ClassVar[Mapping[str, Any]] = {
        "api_key": SECRET,
        "webhook_secret": SECRET,
        "api_base": {"type": "string", "format": "uri"},
        "api_version": {"type": "string"},
        "account": {"type": "string"},
        "customer_signups": {
            "type": "boolean",
            "x-hint": "true: each new Stripe customer is also a signup event",
        },
    }
    required: ClassVar[tuple[str, ...]] = ("api_key",)
    replication_key: ClassVar[str] = "created"
    schema: ClassVar[dict[str, str]] = {
        "id": "string (evt_...)",
        "type": "string (event type)",
        "created": "integer (unix seconds; the replication key)",
        "data.object": "object (subscription, charge, refund, invoice, customer)",
        "data.previous_attributes": "object (changed fields, .updated events)",
    }
    backfill_window: ClassVar[timedelta] = timedelta(days=7)
    list_resources: ClassVar[tuple[str, ...]] = (
        "customers", "subscriptions", "charges", "refunds", "invoices", "credit_notes",
    )  # fmt: skip

    def __init__(
        self,
        config: SourceConfig,
        state: StateStore,
        *,
        api: StripeApi | None = None,
        policy: RetryPolicy | None = None,
    ) -> None:
        super().__init__(config, state)
        options = config.options
        self.api = api or StripeApi(
            config.secret("api_key"),
            api_base=options.get("api_base"),
            api_version=options.get("api_version"),
            account=options.get("account"),
            policy=policy,
        )
        self.processor = StripeProcessor(
            self.stream_id, self.product, state, api=self.api,
            customer_signups=bool(options.get("customer_signups", False)),
        )  # fmt: skip
        # When the list endpoints' current state is read (unix seconds); tests inject it.
        # seconds since the epoch; growthwatch.clock by default, so a frozen "now" holds here
        self.clock: Callable[[], float] = lambda: clock.now().timestamp()

    def webhook_secret(self) -> str | None:
        """The signing secret of this account's webhook endpoint, if one is configured."""
        if not self.config.options.get("webhook_secret"):
            return None
        return self.config.secret("webhook_secret")

    def default_start(self, now: datetime) -> datetime:
        return self.start_date or (now - EVENTS_RETENTION + timedelta(hours=1))

    def run(self, since: datetime, until: datetime) -> Iterator[Batch]:
        now = datetime.fromtimestamp(self.clock(), UTC)
        if since < now - EVENTS_RETENTION + timedelta(minutes=5):
            yield from self.run_lists(since, until)
        else:
            yield from self.run_events(since, until)

    # -- Events API ---------------------------------------------------------------------

    def run_events(self, since: datetime, until: datetime) -> Iterator[Batch]:
        """All handled events in [since, until), oldest first, 100 to a batch."""
        params: dict[str, Any] = {
            "created": {"gte": int(since.timestamp()), "lt": int(until.timestamp())},
            "types": sorted(HANDLED_EVENTS),
        }
        events = [e for page in self.api.pages("events", params) for e in page]
        events.reverse()  # the API lists newest first
        events.sort(key=lambda e: int(e.get("created") or 0))
        total = max(len(events), 1)
        for start in range(0, len(events), 100):
            chunk = events[start : start + 100]
            with self.processor.lock:
                work = self.processor.new_work()
                fresh = []
                with self.state.transaction():  # one fsync for the chunk, not one per event
                    for event in chunk:
                        event_id = ident(event.get("id"))
                        if event_id and self.state.inbox_is_processed(self.stream_id, event_id):
                            continue
                        if event_id:
                            self.state.inbox_put(self.stream_id, event_id, _dump(event),
                                                 "events_api")  # fmt: skip
                        fresh.append(event)
                for event in fresh:
                    self.processor.add_event(work, event)
                last = chunk[-1].get("created")
                cursor = datetime.fromtimestamp(last, UTC) if isinstance(last, int) else None
                yield self.processor.batch(
                    work, cursor=cursor, progress=min((start + len(chunk)) / total, 1.0)
                )
        yield Batch(events=[], cursor=until, progress=1.0)

    # -- list endpoints (backfill) ------------------------------------------------------

    def run_lists(self, since: datetime, until: datetime) -> Iterator[Batch]:
        """Window by window (oldest first), every resource's objects created in it.

        A window is read first and mapped in one batch, whose commit moves the backfill's
        resume point past it: few ledger appends, and the processor lock is held only
        while mapping, never while waiting for Stripe. Subscriptions created in the window
        are rebuilt from all their invoices (``stripe_history``).
        """
        span = max((until - since).total_seconds(), 1.0)
        resources = [
            r for r in self.list_resources
            if r != "customers" or self.processor.customer_signups
        ]  # fmt: skip
        pending: dict[str, list[dict[str, Any]]] | None = None  # read once, when needed
        start = since
        while start < until:
            end = min(start + self.backfill_window, until)
            created = {"gte": int(start.timestamp()), "lt": int(end.timestamp())}
            found: list[tuple[str, dict[str, Any]]] = []
            invoices: dict[str, list[dict[str, Any]]] = {}
            for resource, params in self._list_queries(resources, created):
                for page in self.api.pages(resource, params):
                    found.extend((resource, obj) for obj in page)
                    if resource == "subscriptions":
                        if pending is None and page:
                            pending = self.api.pending_items()
                        for sub in page:
                            if not sub.get("id"):
                                continue
                            sub_id = str(sub["id"])
                            invoices[sub_id] = self.api.invoices_of(sub_id)
                            extra = pending_invoice(sub_id, (pending or {}).get(sub_id, []))
                            if extra is not None:
                                invoices[sub_id].append(extra)
            observed = int(self.clock())  # the current state is as of now, whatever until
            with self.processor.lock:
                work = self.processor.new_work()
                for resource, obj in found:
                    if resource == "subscriptions":
                        self.processor.add_history(work, obj, invoices.get(str(obj.get("id")),
                                                                           []), observed)
                    else:
                        self.processor.add_object(work, resource, obj, observed)
                done = (end - since).total_seconds() / span
                yield self.processor.batch(work, cursor=end, progress=min(done, 1.0))
            start = end

    @staticmethod
    def _list_queries(
        resources: list[str], created: dict[str, int]
    ) -> Iterator[tuple[str, dict[str, Any]]]:
        """The list requests of one window. Invoices: only those that can hold a failed
        attempt (open, uncollectible); the rebuild reads each subscription's own."""
        for resource in resources:
            if resource == "subscriptions":
                yield resource, {"created": created, "status": "all",
                                 "expand": ["data.discounts"]}  # fmt: skip
            elif resource == "invoices":
                for status in ("open", "uncollectible"):
                    yield resource, {"created": created, "status": status}
            else:
                yield resource, {"created": created}

    def backfill_summary(self) -> HistorySummary:
        """What the invoice rebuild made of every subscription it has seen (all runs)."""
        return HistorySummary.from_state(self.state.objects_with_prefix(self.stream_id,
                                                                        HISTORY_PREFIX))


@dataclass(frozen=True)
class HistorySummary:
    """Subscriptions rebuilt exactly, with assumptions, from current state only, or not."""

    outcomes: dict[str, dict[str, Any]]  # sub id -> {"outcome", "assumptions"[, "reason"]}

    LABELS: ClassVar[dict[str, str]] = {
        "exact": "rebuilt exactly",
        "assumed": "rebuilt with assumptions",
        "current_only": "not rebuilt (no invoices: current state only)",
        "failed": "not rebuilt (rejected)",
    }

    @classmethod
    def from_state(cls, objects: dict[str, dict[str, Any]]) -> HistorySummary:
        return cls({key[len(HISTORY_PREFIX):]: value for key, value in objects.items()})

    def count(self, outcome: str) -> int:
        return sum(1 for v in self.outcomes.values() if v.get("outcome") == outcome)

    def assumed(self) -> dict[str, list[dict[str, str]]]:
        """Subscription id -> its assumptions (reason, detail), for the assumed ones."""
        return {k: list(v.get("assumptions") or []) for k, v in sorted(self.outcomes.items())
                if v.get("assumptions")}  # fmt: skip

    def by_reason(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for items in self.assumed().values():
            for reason in sorted({a["reason"] for a in items}):
                counts[reason] = counts.get(reason, 0) + 1
        return dict(sorted(counts.items()))

    def rows(self) -> list[tuple[str, int]]:
        return [(label, self.count(key)) for key, label in self.LABELS.items()]

    def to_json(self) -> dict[str, Any]:
        return {
            "subscriptions": len(self.outcomes),
            **{key: self.count(key) for key in self.LABELS},
            "assumptions_by_reason": self.by_reason(),
            "assumptions": self.assumed(),
            "not_rebuilt": sorted(k for k, v in self.outcomes.items()
                                  if v.get("outcome") in ("current_only", "failed")),
        }  # fmt: skip
