"""p50/p95 latency of every dashboard panel query on a real InfluxDB loaded with demo data.

Runs the demo pipeline into a private influxd (default 3 products x 6 months; the issue's
figure is ``--products 12 --months 24``), expands each panel's InfluxQL the way Grafana
does (Product detail etc. for the first product, the last 90 days, $__interval 1d) and
times ``--repeat`` runs of each. The reference is a single-point query on the same server
(``SELECT last("mrr") FROM mrr_daily WHERE product = ...``): the ratio says how much a panel
costs over InfluxDB's own floor on this machine.

    .venv/bin/python benchmarks/bench_dashboards.py [--products 12 --months 24] [--repeat 20]
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from dashboards.build import dashboards
from dashboards.macros import annotation_queries, expand, panel_queries
from growthwatch import InfluxStore
from growthwatch.demo.pipeline import run_demo
from growthwatch.demo.spec import DemoSpec
from growthwatch.testing.servers import InfluxServer


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def timed(influx: InfluxStore, q: str, repeat: int) -> list[float]:
    influx.query(q)  # warm
    out = []
    for _ in range(repeat):
        t = time.perf_counter()
        influx.query(q)
        out.append((time.perf_counter() - t) * 1000)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--products", type=int, default=3, help="demo products (12 for the issue's figure)")
    ap.add_argument("--months", type=int, default=6, help="demo months (24 = 2 years)")
    ap.add_argument("--events-per-day", type=int, default=3000, help="demo volume")
    ap.add_argument("--repeat", type=int, default=10, help="timed runs per query")
    ap.add_argument("--days", type=int, default=90, help="dashboard time range in days")
    args = ap.parse_args()
    spec = DemoSpec(products=args.products, months=args.months, events_per_day=args.events_per_day)
    server = InfluxServer().start()
    try:
        influx = InfluxStore(server.url, "bench_dashboards")
        with tempfile.TemporaryDirectory() as tmp:
            t = time.perf_counter()
            run_demo(spec, Path(tmp), influx=influx, raw_events=False)
            products = [p["id"] for p in json.loads((Path(tmp) / "products.json").read_text())]
            print(f"demo: {spec.products} products, {spec.start}..{spec.end} loaded in "
                  f"{time.perf_counter() - t:.1f}s")  # fmt: skip
        end = datetime.combine(spec.end, datetime.min.time(), UTC)
        start = end - timedelta(days=args.days)
        values: dict[str, Any] = {"product": products[0], "segment": ".*", "period": "1d",
                                  "funnel": "signup-to-activation"}  # fmt: skip
        ref_q = f"SELECT last(\"mrr\") FROM \"mrr_daily\" WHERE \"product\" = '{products[0]}'"
        ref = timed(influx, ref_q, args.repeat * 3)
        ref_p50 = statistics.median(ref)
        rows = []
        for name, model in dashboards():
            vars_ = {v["name"]: ([values[v["name"]]] if v.get("multi") and values[v["name"]] != ".*"
                                 else values[v["name"]])
                     for v in model["templating"].get("list", [])}  # fmt: skip
            items = [(w, t["query"]) for w, t in panel_queries(model)] + list(annotation_queries(model))
            for where, q in items:
                sent = expand(q, variables=vars_, start=start, end=end, interval_ms=86_400_000)
                ms = timed(influx, sent, args.repeat)
                rows.append((pct(ms, 0.5), pct(ms, 0.95), f"{name.removesuffix('.json')}: {where}"))
        print(f"reference single-point query: p50 {ref_p50:.2f} ms, p95 {pct(ref, 0.95):.2f} ms")
        print(f"{'p50 ms':>8} {'p95 ms':>8} {'x ref':>6}  query")
        for p50, p95, where in sorted(rows, reverse=True):
            print(f"{p50:8.2f} {p95:8.2f} {p50 / ref_p50:6.1f}  {where}")
        all_p95 = [r[1] for r in rows]
        print(f"\n{len(rows)} queries: median p50 {statistics.median([r[0] for r in rows]):.2f} ms, "
              f"worst p95 {max(all_p95):.2f} ms; slowest: {', '.join(r[2] for r in sorted(rows, reverse=True)[:3])}")  # fmt: skip
    finally:
        server.cleanup()


if __name__ == "__main__":
    main()
