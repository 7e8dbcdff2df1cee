"""Board report for 12 products: the time from the series store to the PDF (target: seconds).

Times each stage on a 12-product demo portfolio: collect (every number, through the
``SeriesReader``), the charts and HTML, and the PDF (WeasyPrint). The reference, measured
in the same run, is rendering the HTML alone: the ratio says how much of the total the PDF
engine and the reads add on top of drawing the 52 charts.

    .venv/bin/python benchmarks/bench_report.py [--data-dir growthwatch-data] [--repeat 3]

Without ``--data-dir`` it first generates a small 12-product demo (14 months, 1,000 events
a day) in a temporary folder; with it, it reports on that folder's series store (e.g. the
default ``growthwatch demo`` output).
"""

from __future__ import annotations

import argparse
import re
import statistics
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from growthwatch import SeriesStore
from growthwatch.demo.generator import DemoSpec
from growthwatch.demo.pipeline import run_demo
from reports.build import product_names
from reports.collect import available_products, collect
from reports.period import Month
from reports.render import render_html, render_pdf


def _pages(pdf: bytes) -> int:
    """Page count: poppler's pdfinfo (the PDF's objects are compressed, so no regex)."""
    import shutil
    import subprocess

    if shutil.which("pdfinfo"):
        out = subprocess.run(["pdfinfo", "-"], input=pdf, capture_output=True).stdout.decode()
        for line in out.splitlines():
            if line.startswith("Pages:"):
                return int(line.split()[1])
    return len(re.findall(rb"/Type\s*/Page(?!s)", pdf))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data-dir", type=Path, default=None, help="an existing demo folder")
    parser.add_argument("--month", default="2026-10", help="month to report (YYYY-MM)")
    parser.add_argument("--repeat", type=int, default=3, help="median of N runs")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        data_dir = args.data_dir
        if data_dir is None:
            data_dir = Path(tmp)
            started = time.perf_counter()
            run_demo(DemoSpec(products=12, months=14, events_per_day=1_000), data_dir)
            print(f"generated a 12-product demo in {time.perf_counter() - started:.1f} s")
        store = SeriesStore(data_dir / "series.duckdb")
        month = Month.parse(args.month)
        now = datetime.combine(month.shift(1).first_day, datetime.min.time(), UTC)
        names = product_names(data_dir)
        print(f"{len(available_products(store))} products, report month {month}")
        runs: dict[str, list[float]] = {"collect": [], "html": [], "pdf": [], "total": []}
        pages = size = 0
        for _ in range(args.repeat):
            t0 = time.perf_counter()
            data = collect(store, month, now=now, names=names)
            t1 = time.perf_counter()
            html = render_html(data)
            t2 = time.perf_counter()
            pdf = render_pdf(html)
            t3 = time.perf_counter()
            runs["collect"].append(t1 - t0)
            runs["html"].append(t2 - t1)
            runs["pdf"].append(t3 - t2)
            runs["total"].append(t3 - t0)
            pages, size = _pages(pdf), len(pdf)
        store.close()
    med = {k: statistics.median(v) for k, v in runs.items()}
    print(f"collect {med['collect']:.2f} s | charts + HTML {med['html']:.2f} s | "
          f"PDF {med['pdf']:.2f} s | total {med['total']:.2f} s (median of {args.repeat})")  # fmt: skip
    print(f"PDF: {pages} pages, {size / 1e6:.2f} MB")
    print(
        f"reference: HTML alone {med['html']:.2f} s; total / HTML = {med['total'] / med['html']:.1f}"
    )


if __name__ == "__main__":
    main()

