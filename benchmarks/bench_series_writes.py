"""Series-store write benchmark: N points of wide metric batches into a fresh embedded
store, then incremental rewrites and a full rewrite over the stored rows.

    .venv/bin/python benchmarks/bench_series_writes.py [--points 450000] [--sizes 0.25,0.5,1]

The batches look like the metrics engine's: 6 measurements, 2-4 tags (product, 12
values, plus dimension/segment/currency), 10-20 float and integer fields with ~10 %
undefined (NaN) values, one row per tag set and day. For each size (a fraction of
``--points``), in its own process (so the peak RSS, ``ru_maxrss``, is that size's alone):

1. initial: write every batch into a new ``SeriesStore`` file (one ``write`` call);
2. update 1%: rewrite the latest 1 % of the points (the tail of each measurement, what
   an incremental update rewrites), new values; best of 5 (shared machines are noisy);
3. live: rewrite 300 points of the latest day (a webhook's update); best of 5;
4. full rewrite: write every batch again over the stored rows (no delete first);
5. reference: a plain DuckDB ``INSERT`` of the same points as long rows (measurement,
   tags, time, field, value; Arrow, prepared beforehand) into a table without keys.

It prints points/s, the ratio initial / reference, and how the time per point changes
with the size. ``--store-src DIR`` imports growthwatch from another checkout (e.g. the
old layout: ``git archive <commit> | tar -x -C DIR``) to compare on the same machine.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from _timing import best_of

MEASUREMENTS = (  # name, extra tags beside product, number of fields
    ("bench_mrr", ("currency",), 16),
    ("bench_customers", (), 11),
    ("bench_segments", ("dimension", "segment"), 14),
    ("bench_revenue", ("currency", "dimension", "segment"), 10),
    ("bench_churn", ("dimension",), 20),
    ("bench_traffic", ("channel",), 12),
)
TAG_VALUES = {"currency": 3, "dimension": 4, "segment": 6, "channel": 5}
PRODUCTS = 12


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def batches(points: int, seed: int = 15, shift: float = 0.0) -> list[Any]:
    """About ``points`` points over the six measurements (equal shares), daily rows."""
    from growthwatch.points import PointBatch

    rng = np.random.default_rng(seed)
    out = []
    for name, extra, n_fields in MEASUREMENTS:
        combos = PRODUCTS * int(np.prod([TAG_VALUES[t] for t in extra] or [1]))
        days = max(1, points // len(MEASUREMENTS) // combos)
        grid = pd.MultiIndex.from_product(
            [pd.date_range("2024-01-01", periods=days, freq="D", tz="UTC"),
             [f"product-{i:02d}" for i in range(PRODUCTS)],
             *[[f"{t}-{j}" for j in range(TAG_VALUES[t])] for t in extra]],
            names=["time", "product", *extra],
        )  # fmt: skip
        frame = grid.to_frame(index=False)
        for t in ("product", *extra):
            frame[t] = frame[t].astype(str)
        n = len(frame)
        for i in range(n_fields):
            if i % 3 == 0:
                frame[f"count_{i}"] = rng.integers(0, 1_000, n).astype("int64")
            else:
                values = np.round(rng.normal(1_000 + shift, 300, n), 6)
                values[rng.random(n) < 0.1] = np.nan
                frame[f"amount_{i}"] = values
        fields = tuple(c for c in frame.columns if c not in ("time", "product", *extra))
        out.append(PointBatch(name, frame, ("product", *extra), fields))
    return out


def tail(batches: list[Any], share: float) -> list[Any]:
    """The latest ``share`` of each batch's rows (by time), as new batches."""
    from growthwatch.points import PointBatch

    out = []
    for b in batches:
        times = b.frame["time"]
        keep = b.frame[times >= times.quantile(1 - share)] if share < 1 else b.frame
        out.append(PointBatch(b.measurement, keep.reset_index(drop=True), b.tags, b.fields))
    return out


def live(batches: list[Any], points: int) -> list[Any]:
    """``points`` rows of the latest day, spread over the measurements."""
    from growthwatch.points import PointBatch

    out = []
    each = max(1, points // len(batches))
    for b in batches:
        last = b.frame[b.frame["time"] == b.frame["time"].max()].head(each)
        out.append(PointBatch(b.measurement, last.reset_index(drop=True), b.tags, b.fields))
    return out


def long_rows(batches: list[Any]) -> Any:
    """The points as long rows (one per defined field value), as one Arrow table."""
    import pyarrow as pa

    parts = []
    for b in batches:
        tags = b.frame[list(b.tags)].astype(str).agg("|".join, axis=1)
        for f in b.fields:
            values = b.frame[f].astype("float64")
            defined = values.notna().to_numpy()
            parts.append(pa.table({
                "measurement": pa.array([b.measurement] * int(defined.sum())),
                "tags": pa.array(tags[defined].to_numpy(dtype=object)),
                "time": pa.array(b.frame["time"][defined]),
                "field": pa.array([f] * int(defined.sum())),
                "value": pa.array(values[defined].to_numpy()),
            }))  # fmt: skip
    return pa.concat_tables(parts)


def timed(fn: Any) -> float:
    began = time.perf_counter()
    fn()
    return time.perf_counter() - began


def cpu_best_of(fn: Any, n: int) -> float:
    """The least CPU time (all threads, DuckDB's included) of ``n`` runs: on a loaded
    machine wall time mostly measures the wait for a core."""
    spent = []
    for _ in range(n):
        began = time.process_time()
        fn()
        spent.append(time.process_time() - began)
    return min(spent)


def run_size(points: int, work: Path) -> dict[str, Any]:
    import duckdb

    from growthwatch.stores.series import SeriesStore

    data = batches(points)
    again = batches(points, seed=16, shift=5.0)
    update = tail(again, 0.01)
    webhook = live(batches(points, seed=17, shift=9.0), 300)
    reference_rows = long_rows(data)
    n = sum(len(b) for b in data)
    base = peak_mb()
    path = work / f"series-{points}.duckdb"
    store = SeriesStore(path)
    initial = timed(lambda: store.write(data))
    peak_initial = peak_mb()
    update_s = best_of(lambda: store.write(update), 5)  # small writes: the least disturbed
    live_s = best_of(lambda: store.write(webhook), 5)
    live_cpu = cpu_best_of(lambda: store.write(webhook), 5)
    full_s = timed(lambda: store.write(again))
    peak = peak_mb()
    count = store.count()
    store.close()
    size_mb = path.stat().st_size / 1e6
    con = duckdb.connect(str(work / f"reference-{points}.duckdb"))
    con.execute("CREATE TABLE long_rows (measurement VARCHAR, tags VARCHAR, "
                "time TIMESTAMPTZ, field VARCHAR, value DOUBLE)")  # fmt: skip
    con.register("rows_in", reference_rows)
    reference = timed(lambda: con.execute("INSERT INTO long_rows SELECT * FROM rows_in"))
    con.close()
    return {"points": n, "stored": count, "long_rows": reference_rows.num_rows,
            "initial_s": initial, "update_points": sum(len(b) for b in update),
            "update_s": update_s, "live_points": sum(len(b) for b in webhook), "live_s": live_s,
            "live_cpu_s": live_cpu,
            "full_rewrite_s": full_s, "reference_s": reference, "base_mb": base,
            "peak_initial_mb": peak_initial, "peak_mb": peak, "file_mb": size_mb}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--points", type=int, default=40_000,
                        help="points at the largest size (the demo's full recompute: 451,425)")
    parser.add_argument("--sizes", default="0.25,0.5,1",
                        help="fractions of --points to run, each in its own process")
    parser.add_argument("--store-src", type=Path,
                        help="import growthwatch from this checkout instead (to compare)")
    parser.add_argument("--size", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--work", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.size:
        print(json.dumps(run_size(args.size, args.work)))
        return
    work = Path(tempfile.mkdtemp(prefix="gw-bench-series-"))
    env = dict(os.environ)
    if args.store_src:
        env["PYTHONPATH"] = str(args.store_src.resolve())
    results = []
    for fraction in (float(f) for f in args.sizes.split(",")):
        size = max(1_000, int(args.points * fraction))
        proc = subprocess.run([sys.executable, __file__, "--size", str(size), "--work", str(work)],
                              capture_output=True, text=True, check=True, env=env)  # fmt: skip
        r = json.loads(proc.stdout.strip().splitlines()[-1])
        results.append(r)
        print(f"{r['points']:>9,} points ({r['long_rows']:,} field values): "
              f"initial {r['initial_s']:6.2f} s = {r['points'] / r['initial_s']:>9,.0f} points/s | "
              f"update 1% ({r['update_points']:,}) {r['update_s'] * 1000:6.0f} ms | "
              f"live ({r['live_points']}) {r['live_s'] * 1000:5.0f} ms "
              f"({r['live_cpu_s'] * 1000:.0f} ms CPU) | "
              f"full rewrite {r['full_rewrite_s']:6.2f} s | "
              f"reference long INSERT {r['reference_s']:5.2f} s | "
              f"peak RSS {r['peak_mb']:5.0f} MB (before the writes {r['base_mb']:4.0f}) | "
              f"file {r['file_mb']:5.1f} MB", flush=True)  # fmt: skip
        assert r["stored"] == r["points"], "the store lost or duplicated points"
    first, last = results[0], results[-1]
    print()
    print(f"initial / reference (plain long INSERT, same run): "
          f"{last['initial_s'] / last['reference_s']:.2f}")
    print(f"full rewrite / initial:                            "
          f"{last['full_rewrite_s'] / last['initial_s']:.2f}")
    if len(results) > 1:
        grow = last["points"] / first["points"]
        print(f"data x{grow:.1f}: initial x{last['initial_s'] / first['initial_s']:.2f}, "
              f"update 1% x{last['update_s'] / first['update_s']:.2f}, "
              f"live x{last['live_s'] / first['live_s']:.2f}, "
              f"full rewrite x{last['full_rewrite_s'] / first['full_rewrite_s']:.2f}")
    print(f"work dir (delete when done): {work}")


if __name__ == "__main__":
    main()
