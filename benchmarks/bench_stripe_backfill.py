"""Stripe history backfill: a generated account rebuilt from its invoices, against references.

The account is the test suite's generated one (``tests/exporters/stripe_account.py``:
two years, trials, prorations, pauses, cancellations, several currencies), served by the
test suite's fake Stripe on loopback. Three timings in the same run:

- backfill: ``growthwatch backfill``'s path (list windows + every subscription's invoices,
  rebuilt into lifecycle events, stored in a DuckDB ledger);
- events:   the same account's full event stream through the Events API path (the
            reference: what replaying webhooks costs);
- objects:  the backfill's invoice pages parsed into the SDK's StripeObjects (what the
            pages cost before ``raw_request``), against the same pages as JSON.

    .venv/bin/python benchmarks/bench_stripe_backfill.py [--subscriptions 100]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "exporters"))

from exporter_fakes import FAST, FakeStripe, running, source
from stripe_account import HORIZON, T0, generate

from exporters.base import Batch, Ingestor
from exporters.state import StateStore
from exporters.stripe import StripeStream
from growthwatch.stores.ledger import Ledger


class EventsOnly(StripeStream):
    def run(self, since: datetime, until: datetime) -> Iterator[Batch]:
        return self.run_events(since, until)


def stream(cls: type[StripeStream], fake: FakeStripe, state: StateStore) -> StripeStream:
    config = source("stripe", "bench", api_key="${GW_BENCH_STRIPE_KEY}", api_base=fake.url)
    found = cls(config, state, policy=FAST)
    found.clock = lambda: float(HORIZON)
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--subscriptions", type=int, default=100, help="first subscriptions")
    parser.add_argument("--seed", type=int, default=11)
    args = parser.parse_args()
    os.environ["GW_BENCH_STRIPE_KEY"] = FakeStripe.api_key
    account = generate(args.seed, args.subscriptions)
    subs = len(account.customer_of)
    since, until = datetime.fromtimestamp(T0, UTC), datetime.fromtimestamp(HORIZON, UTC)
    with tempfile.TemporaryDirectory() as tmp:
        lists = FakeStripe()
        for resource, objects in account.objects.items():
            lists.add(resource, *objects, copy_objects=False)
        lists.lines.update(account.lines)
        with running(lists), Ledger(Path(tmp) / "b.duckdb") as ledger:
            state = StateStore(Path(tmp) / "b.sqlite")
            s = stream(StripeStream, lists, state)
            started = time.perf_counter()
            result = Ingestor(ledger, state).sync(s, since=since, until=until, backfill=True)
            backfill = time.perf_counter() - started
            summary = s.backfill_summary()
            # objects: the invoice pages as StripeObjects vs as JSON
            started = time.perf_counter()
            pages = list(s.api.pages("invoices", {}))
            raw = time.perf_counter() - started
            started = time.perf_counter()
            query: dict[str, object] = {"limit": 100}
            while True:
                page = s.api.client.v1.invoices.list(query)  # type: ignore[arg-type]
                data = [obj.to_dict() for obj in page.data]
                if not page.has_more or not data:
                    break
                query["starting_after"] = data[-1]["id"]
            objects = time.perf_counter() - started
            state.close()
        events_fake = FakeStripe()
        events_fake.add("events", *account.events, copy_objects=False)
        with running(events_fake), Ledger(Path(tmp) / "a.duckdb") as ledger:
            state = StateStore(Path(tmp) / "a.sqlite")
            started = time.perf_counter()
            Ingestor(ledger, state).sync(stream(EventsOnly, events_fake, state), since=since,
                                         until=until + timedelta(days=1))  # fmt: skip
            events = time.perf_counter() - started
            state.close()
    invoices = sum(len(p) for p in pages)
    print(f"account: {subs} subscriptions, {invoices} invoices, {len(account.events)} events")
    print(f"backfill: {backfill:.2f} s ({subs / backfill:.1f} subscriptions/s, "
          f"{result.inserted} events stored); exact {summary.count('exact')}, "
          f"assumed {summary.count('assumed')}")  # fmt: skip
    print(f"events (reference): {events:.2f} s; backfill / events = {backfill / events:.2f}")
    print(f"invoice pages: JSON {raw:.2f} s, StripeObjects {objects:.2f} s "
          f"(ratio {objects / raw:.1f}x)")  # fmt: skip


if __name__ == "__main__":
    main()
