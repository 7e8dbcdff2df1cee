"""Drill-down benchmark: ``growthwatch customers`` and ``growthwatch customer`` on a demo
ledger, against the engine's own MRR computation of the same product as the reference.

    .venv/bin/python benchmarks/bench_drilldown.py [--products 3] [--months 4] [--events-per-day 400]

The default is small (a few seconds); ``--products 12 --months 18 --events-per-day 3000``
is the demo's default portfolio (1.7M events, about a minute to build). Printed: the
ledger size, the time of each command (best of 3, in this process) and the ratio of the
``customers`` command to ``compute_mrr`` over the same product's events (read from the
ledger both times): what listing the customers costs beyond computing the numbers.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import sys
import tempfile
import time
from pathlib import Path

from _timing import best_of

from growthwatch.cli import main
from growthwatch.demo.generator import DemoSpec
from growthwatch.demo.pipeline import DEMO_METRICS, run_demo
from growthwatch.metrics.engine import read_events
from growthwatch.metrics.mrr import MRR_TYPES, compute_mrr
from growthwatch.stores.ledger import Ledger


def quiet(argv: list[str]) -> str:
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        assert main(argv) == 0, argv
    return buf.getvalue()


def run(args: argparse.Namespace) -> None:
    spec = DemoSpec(products=args.products, months=args.months,
                    events_per_day=args.events_per_day)  # fmt: skip
    with tempfile.TemporaryDirectory(prefix="bench-drilldown-") as tmp:
        folder = Path(tmp)
        began = time.perf_counter()
        result = run_demo(spec, folder)
        print(f"demo ledger: {result.generated:,} events, {spec.products} products, "
              f"built in {time.perf_counter() - began:.1f} s")  # fmt: skip
        top = result.summary.sort_values("events").iloc[-1]
        product = str(top["product"])
        print(f"largest product: {product} ({int(top['events']):,} events)")
        with Ledger(folder / "ledger.duckdb") as ledger:

            def reference() -> None:
                compute_mrr(read_events(ledger, MRR_TYPES, products=[product]), DEMO_METRICS)

            ref = best_of(reference)
        base = ["--product", product, "--format", "json", "--data-dir", str(folder)]
        month = ["--from", "2026-09", "--to", "2026-09"]
        churn = best_of(lambda: quiet(["customers", "--movement", "churn", *month, *base]))
        rows = json.loads(quiet(["customers", "--movement", "new", *base]))
        every = best_of(lambda: quiet(["customers", "--movement", "new", *base]))
        one = best_of(lambda: quiet(["customer", rows[0]["customer"], *base]))
        print(f"reference compute_mrr of {product}: {ref:.3f} s")
        print(f"customers --movement churn (one month): {churn:.3f} s")
        print(f"customers --movement new (all history, {len(rows):,} rows): {every:.3f} s")
        print(f"customer ID: {one:.3f} s")
        print(f"ratio customers (one month) / compute_mrr: {churn / ref:.2f}")


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--products", type=int, default=3, help="demo products (default 3)")
    parser.add_argument("--months", type=int, default=4, help="demo months (default 4)")
    parser.add_argument("--events-per-day", type=int, default=400,
                        help="portfolio-wide events per day (default 400)")  # fmt: skip
    return parser.parse_args(argv)


if __name__ == "__main__":
    run(parse(sys.argv[1:]))
