"""p50/p95 latency of every dashboard panel query on a real InfluxDB loaded with demo data.

Runs the demo pipeline into a private influxd (default 3 products x 6 months; the issue's
figure is ``--products 12 --months 24``), expands each panel's InfluxQL the way Grafana
does (Product detail etc. for the first product, ``$period`` 1d, ``$__interval`` as Grafana
computes it from the range and the panel's max data points and min interval) over the last 90 days and
over the whole 2 years (``--ranges``), and times ``--repeat`` runs of each after one warm
pass over all of them (so InfluxDB's compaction after the load is not measured). The
reference is a single-point query on the same server (``SELECT "mrr" FROM mrr_daily WHERE
product = ... AND time = <a day>``): the ratio says how much a panel costs over InfluxDB's
own floor on this machine. Fixture anomalies (3 transitions per incident, 20 incidents per
product) are written so that the anomaly panels read real rows.

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
from dashboards.macros import annotation_queries, auto_interval_ms, expand, panel_targets
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


def anomaly_lines(products: list[str], end: datetime) -> list[str]:
    """Contract-shaped anomaly transitions: per product 20 incidents (open, escalated,
    resolved; the last one still open) over the last 200 days."""
    lines = []
    metrics = ("customers_daily.cancellations", "revenue_daily.net_rc", "product_daily.signups")
    for p, product in enumerate(products):
        for i in range(20):
            t0 = int((end - timedelta(days=200 - 10 * i, hours=p)).timestamp() * 1000)
            for k, (state, sev, open_) in enumerate((("open", "warning", 1),
                                                     ("escalated", "critical", 1),
                                                     ("resolved", "critical", 0))):  # fmt: skip
                if i == 19 and state == "resolved":
                    continue
                metric = metrics[i % 3]
                lines.append(
                    f"anomalies,method=seasonal_mad,metric={metric},product={product},"
                    f"segment=all,severity={sev} alert_id=\"{product}-{i}\",expected=8,"
                    f"explanation=\"{metric} 41 vs 8 expected (3-14)\",lower=3,observed=41,"
                    f"open={open_}i,score=0.9,started_ms={t0}i,state=\"{state}\",upper=14 "
                    f"{(t0 + k * 3_600_000) * 1_000_000}"
                )
    return lines


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--products", type=int, default=3, help="demo products (12 for the issue's figure)")
    ap.add_argument("--months", type=int, default=6, help="demo months (24 = 2 years)")
    ap.add_argument("--events-per-day", type=int, default=3000, help="demo volume")
    ap.add_argument("--repeat", type=int, default=10, help="timed runs per query")
    ap.add_argument("--ranges", default="90,730", help="dashboard time ranges in days")
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
        influx.write_lines(anomaly_lines(products, end))
        values: dict[str, Any] = {"product": products[0], "segment": ".*", "period": "1d",
                                  "funnel": "signup-to-activation"}  # fmt: skip
        day = (end - timedelta(days=30)).strftime("%Y-%m-%dT00:00:00Z")
        ref_q = f"SELECT \"mrr\" FROM \"mrr_daily\" WHERE \"product\" = '{products[0]}' AND time = '{day}'"
        assert influx.query(ref_q), "reference point exists"
        for days in (int(d) for d in args.ranges.split(",")):
            start = end - timedelta(days=days)
            sent_all = []
            for name, model in dashboards():
                vars_ = {v["name"]: ([values[v["name"]]] if v.get("multi") and values[v["name"]] != ".*"
                                     else values[v["name"]])
                         for v in model["templating"].get("list", [])}  # fmt: skip
                items = [(w, t["query"], p) for w, t, p in panel_targets(model)]
                items += [(w, q, {}) for w, q in annotation_queries(model)]
                for where, q, panel in items:
                    interval = auto_interval_ms(  # as Grafana: range / max points, >= min
                        start, end, max_data_points=int(panel.get("maxDataPoints", 1000)),
                        min_interval=panel.get("interval", "10s"))  # fmt: skip
                    sent = expand(q, variables=vars_, start=start, end=end, interval_ms=interval)
                    sent_all.append((f"{name.removesuffix('.json')}: {where}", sent))
            for _, sent in sent_all:  # warm pass
                influx.query(sent)
            ref = timed(influx, ref_q, args.repeat * 3)
            ref_p50 = statistics.median(ref)
            rows = []
            for where, sent in sent_all:
                ms = timed(influx, sent, args.repeat)
                rows.append((pct(ms, 0.5), pct(ms, 0.95), where))
            print(f"\n== time range: last {days} days ==")
            print(f"reference single-point query: p50 {ref_p50:.2f} ms, p95 {pct(ref, 0.95):.2f} ms")
            print(f"{'p50 ms':>8} {'p95 ms':>8} {'x ref':>6}  query")
            for p50, p95, where in sorted(rows, reverse=True):
                print(f"{p50:8.2f} {p95:8.2f} {p50 / ref_p50:6.1f}  {where}")
            slowest = ", ".join(r[2] for r in sorted(rows, reverse=True)[:3])
            print(f"{len(rows)} queries: median p50 {statistics.median([r[0] for r in rows]):.2f} ms, "
                  f"worst p50 {max(r[0] for r in rows):.2f} ms, worst p95 {max(r[1] for r in rows):.2f} ms;"
                  f" slowest: {slowest}")  # fmt: skip
    finally:
        server.cleanup()


if __name__ == "__main__":
    main()
