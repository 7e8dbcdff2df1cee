"""Detector benchmark: labelled incidents, every method side by side, plus webhook->page.

Part 1, labelled series. Synthetic products over 365 days with weekly and intraday
seasonality, at several volumes (0.5 to 200 events a day, low-volume products included)
and a revenue series (payments with amounts, summed a day), each with one injected incident (spike, drop, level
shift or outage) per seed; and the demo generator's own incidents (churn spike, payment
outage, tracking outage, traffic spike) on a small demo portfolio. Each method runs
causally through the same alert book; event-level scoring (an incident counts once, no
point adjustment): precision, recall, F1, median detection delay, false alerts per
product-month. ``zscore`` is the seed (30-day mean +/- 2.5 sd, a day judged when over);
``auto+intraday`` is what serve runs (counts for counts, seasonal for the rest, the
running day judged from the events every hour).

Part 2, end to end: bursts of signed Stripe cancellation webhooks into a running Service
with a real InfluxDB; latency from the webhook that made the spike significant to the
notification at a local apprise json:// endpoint (p50/p95); reference: the bare
webhook round trip of the same runs.

    .venv/bin/python benchmarks/bench_detector.py [--seeds 3] [--demo-months 6] [--e2e-runs 5]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd

from detectors import intraday, intraday_amounts
from detectors.alerts import AlertBook, Finding
from detectors.causal import Policy, replay
from detectors.registry import METHODS
from detectors.scoring import Label, Opened, Score, evaluate

DAY = pd.Timedelta(days=1)
START = pd.Timestamp("2025-01-06", tz="UTC")
N_DAYS = 365
KINDS = ("spike", "drop", "shift", "outage")
METHOD_ROWS = ("zscore", "seasonal_mad", "counts", "auto+intraday")


def synthetic(seed: int, volume: float, kind: str, continuous: bool, smooth: bool = False):
    """(daily series, event times, event amounts or None, label).

    Counts: Poisson events a day, their times from an intraday profile. Amounts: the
    same, payments with a log-normal amount (median 50, sigma 0.5) and a day-level
    5 % noise on the rate: the daily series is their sum, the events are what the
    intraday path sees. Smooth (``smooth``, the earlier benchmark's amounts, same
    random streams): a daily value of 50 x the rate with 5 % noise, no events."""
    rng = np.random.default_rng([seed, int(volume * 10), KINDS.index(kind), int(continuous)])
    days = pd.date_range(START, periods=N_DAYS, freq="D")
    weekly = np.where(days.day_of_week < 5, 1.0, 0.6)
    yearly = 1 + 0.1 * np.sin(2 * np.pi * np.arange(N_DAYS) / 365)
    rate = volume * weekly * yearly
    at = int(rng.integers(120, 330))
    span = int(rng.integers(1, 4))
    factor = np.ones(N_DAYS)
    if kind == "spike":
        factor[at : at + span] = rng.uniform(3, 5)
    elif kind == "drop":
        factor[at : at + span] = 0.3
    elif kind == "shift":
        factor[at:] = 1.6
        span = 3
    elif kind == "outage":
        factor[at : at + 1] = 0.0
        span = 1
    label = Label(f"{kind}-{volume}-{seed}", f"p{seed}-{volume}-{kind}", ("m",),
                  (START + at * DAY).to_pydatetime(), (START + (at + span) * DAY).to_pydatetime())  # fmt: skip
    if smooth:  # the earlier benchmark's amounts: a level with 5 % noise, no events
        return pd.Series(rate * factor * (1 + rng.normal(0, 0.05, N_DAYS)), index=days), None, None, label
    level = np.clip(1 + rng.normal(0, 0.05, N_DAYS), 0.5, None) if continuous else 1.0
    counts = rng.poisson(rate * factor * level)
    start_ns = days.as_unit("ns").asi8
    ts = np.concatenate([s + (rng.beta(2.5, 2, n) * 86_400e9).astype("int64")
                         for s, n in zip(start_ns, counts, strict=True)])  # fmt: skip
    order = np.argsort(ts, kind="stable")
    if not continuous:
        return pd.Series(counts.astype(float), index=days), ts[order], None, label
    amounts = np.round(rng.lognormal(np.log(50.0), 0.5, len(ts)), 2)[order]
    day_of = np.repeat(np.arange(N_DAYS), counts)[order]
    totals = np.bincount(day_of, weights=amounts, minlength=N_DAYS)
    return pd.Series(totals, index=days), ts[order], amounts, label


def daily_opens(series: pd.Series, method: str, product: str, direction: str) -> list[Finding]:
    cls = METHODS[method]
    warning = cls.default_threshold if method == "zscore" else 0.9995
    policy = Policy(warning=warning, critical=max(warning, 0.99999), direction=direction,
                    baseline_days=30 if method == "zscore" else 56, min_history_days=28)  # fmt: skip
    rows = replay(series, cls, policy)
    return [Finding(product, "m", "all", (t + DAY).to_pydatetime(), r.value, r.expected, r.lower,
                    r.upper, r.score, r.severity, method, "")
            for t, r in rows.iterrows() if np.isfinite(r.score)]  # fmt: skip


def intraday_opens(ts: np.ndarray, product: str, direction: str) -> list[Finding]:
    cfg = intraday.IntradaySettings(direction=direction, warning=0.9995)
    start = int((START + 28 * DAY).value)
    end = int((START + N_DAYS * DAY).value)
    out = []
    for r in intraday.backtest(ts, start, end, cfg, step_minutes=60):
        sev = "warning" if r.score >= cfg.warning else ""
        out.append(Finding(product, "m", "all", datetime.fromtimestamp(r.time / 1e9, UTC),
                           r.observed, r.expected, r.lower, r.upper, r.score, sev, "intraday", ""))  # fmt: skip
    return out


def amount_opens(ts: np.ndarray, amounts: np.ndarray, product: str, direction: str) -> list[Finding]:
    cfg = intraday.IntradaySettings(direction=direction, warning=0.9995)
    start = int((START + 28 * DAY).value)
    end = int((START + N_DAYS * DAY).value)
    out = []
    for r in intraday_amounts.backtest(ts, amounts, start, end, cfg, step_minutes=60):
        sev = "warning" if r.score >= cfg.warning else ""
        out.append(Finding(product, "m", "all", datetime.fromtimestamp(r.time / 1e9, UTC),
                           r.observed, r.expected, r.lower, r.upper, r.score, sev, "amounts", ""))  # fmt: skip
    return out


def opens_of(findings: list[Finding]) -> list[Opened]:
    book = AlertBook(resolve_after=timedelta(hours=2), cooldown=timedelta(hours=6))
    out = []
    for f in sorted(findings, key=lambda f: f.time):
        t = book.observe(f)
        if t is not None and t.state == "open":
            out.append(Opened(f.product, f.metric, f.time))
    return out


def merge(scores: list[Score]) -> Score:
    return Score(sum(s.incidents for s in scores), sum(s.found for s in scores),
                 sum(s.false_alerts for s in scores), tuple(d for s in scores for d in s.delays_h),
                 sum(s.product_months for s in scores))  # fmt: skip


def part_synthetic(seeds: int) -> dict[str, dict[str, Score]]:
    """Scores per series family (``count``, ``continuous``, ``smooth``; ``all`` = count +
    continuous) and method."""
    results: dict[str, dict[str, list[Score]]] = {
        fam: {m: [] for m in METHOD_ROWS} for fam in ("count", "continuous", "smooth")
    }
    months = (N_DAYS - 28) / 30.44
    for seed in range(seeds):
        for volume in (0.5, 3.0, 20.0, 200.0):
            for kind in ("spike", "drop", "shift", "outage"):
                if volume < 3 and kind in ("drop", "outage"):
                    continue  # a zero day is normal at this volume: nothing to find
                direction = "up" if kind in ("spike", "shift") else "down"
                for continuous, smooth in ((False, False), (True, False), (True, True)):
                    series, ts, amounts, label = synthetic(seed, volume * (50 if smooth else 1),
                                                           kind, continuous, smooth)  # fmt: skip
                    for method in METHOD_ROWS:
                        if method == "auto+intraday":
                            # what serve runs: intraday from the events plus the day's close
                            if ts is None:  # no events: the daily close only
                                found = daily_opens(series, "seasonal_mad", label.product, direction)
                            elif amounts is None:
                                found = (intraday_opens(ts, label.product, direction)
                                         + daily_opens(series, "counts", label.product, direction))
                            else:
                                found = (amount_opens(ts, amounts, label.product, direction)
                                         + daily_opens(series, "seasonal_mad", label.product, direction))
                        elif method == "counts" and continuous:
                            found = daily_opens(series, "seasonal_mad", label.product, direction)
                        else:
                            found = daily_opens(series, method, label.product, direction)
                        fam = "smooth" if smooth else "continuous" if continuous else "count"
                        results[fam][method].append(evaluate([label], opens_of(found), months))
    out = {fam: {m: merge(v) for m, v in by.items()} for fam, by in results.items()}
    # "all": the series with events (counts and payments); the smooth daily values are a
    # reference apart: no method can judge their running day, so their delay is 24 h
    out["all"] = {m: merge(results["count"][m] + results["continuous"][m]) for m in METHOD_ROWS}
    return out


def part_demo(months: int) -> dict[str, Score]:
    from detectors.demo import run_detector
    from detectors.settings import DetectorSettings
    from growthwatch.demo.generator import DemoSpec
    from growthwatch.demo.pipeline import run_demo

    spec = DemoSpec(products=4, months=months)
    out = {}
    with tempfile.TemporaryDirectory() as tmp:
        run_demo(spec, Path(tmp), raw_events=False)
        for method in METHOD_ROWS:
            if method == "auto+intraday":
                settings = DetectorSettings.from_section({})
            else:
                settings = DetectorSettings.from_section({"method": method, "intraday": False,
                    **({"warning": METHODS["zscore"].default_threshold, "critical": 0.99999,
                        "baseline_days": 30} if method == "zscore" else {})})  # fmt: skip
            out[method] = run_detector(spec, Path(tmp), settings)
    return out


def table(title: str, scores: dict[str, Score]) -> None:
    print(f"\n{title}")
    print("| method | incidents | found | precision | recall | F1 | median delay (h) | false alerts / product-month |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for name, s in scores.items():
        print(f"| {name} | {s.incidents} | {s.found} | {s.precision:.2f} | {s.recall:.2f} | "
              f"{s.f1:.2f} | {s.median_delay_h:.1f} | {s.false_per_product_month:.3f} |")  # fmt: skip


def part_e2e(runs: int) -> None:
    import os

    import requests
    import yaml

    from detectors.intraday import IntradaySettings, day_model, intraday_at
    from detectors.scenario import CaptureServer, cancellation_webhook, seed_history
    from exporters.service import Service
    from growthwatch.config import load_config
    from growthwatch.stores.ledger import Ledger
    from growthwatch.testing.servers import InfluxServer, free_port

    day = datetime(2026, 3, 10, tzinfo=UTC)
    now = day + timedelta(hours=15)
    latencies, round_trips = [], []
    influx = InfluxServer().start()
    try:
        for run in range(runs):
            with tempfile.TemporaryDirectory() as tmp_s:
                tmp = Path(tmp_s)
                capture = CaptureServer().start()
                os.environ.update({"GW_B_KEY": "sk_test", "GW_B_WHSEC": "whsec_b",
                                   "GW_B_APPRISE": f"json://127.0.0.1:{capture.port}/notify"})  # fmt: skip
                port = free_port()
                doc = {"storage": {"data_dir": str(tmp / "data")},
                       "server": {"host": "127.0.0.1", "port": port},
                       "influxdb": {"url": influx.url, "database": f"bench{run}"},
                       "products": [{"id": "acme", "currency": "USD", "sources": [
                           {"type": "stripe", "api_key": "${GW_B_KEY}", "webhook_secret": "${GW_B_WHSEC}",
                            "api_base": "http://127.0.0.1:9"}]}],
                       "detector": {"metrics": ["customers_daily.cancellations"], "interval": "1h"},
                       "alerts": {"routes": [{"name": "oncall", "url": "${GW_B_APPRISE}"}]},
                       "grafana": {"url": capture.url}}  # fmt: skip
                (tmp / "gw.yaml").write_text(yaml.safe_dump(doc))
                config = load_config(tmp / "gw.yaml")
                config.data_dir.mkdir(parents=True)
                ledger = Ledger(config.ledger_path)
                seed_history(ledger, "acme", day, seed=run)
                history = ledger.read(types="subscription_cancelled")["ts"].to_numpy(dtype="datetime64[ns]").astype("int64")
                ledger.close()
                sent: list[float] = []
                ends: list[int] = []
                with Service(config) as service:
                    service.clock = lambda: now.timestamp()  # type: ignore[attr-defined]
                    service.start(schedule=False)
                    for i in range(20):
                        ended = day + timedelta(hours=14, minutes=2 * i)
                        body, headers = cancellation_webhook(i, ended, "whsec_b", prefix=f"r{run}x")
                        t0 = time.perf_counter()
                        requests.post(f"http://127.0.0.1:{port}/webhooks/stripe/acme", data=body,
                                      headers=headers, timeout=5)  # fmt: skip
                        round_trips.append(time.perf_counter() - t0)
                        sent.append(t0)
                        ends.append(int(pd.Timestamp(ended).value))
                        time.sleep(0.1)  # paced: 10 webhooks/s
                    service.hook.wait_idle(30)
                    service.components["detectors.service"].wait_idle(30)  # type: ignore[attr-defined]
                notes = capture.matching("POST", "/notify")
                capture.stop()
                # the webhook that made the spike significant, by the same intraday judgement
                cfg = IntradaySettings(warning=0.9995)
                nows = int(pd.Timestamp(now).value)
                first = None
                for k in range(1, 21):
                    ts = np.sort(np.concatenate([history, np.array(ends[:k])]))
                    model = day_model(ts, int(pd.Timestamp(day).value), cfg)
                    prev = day_model(ts, int(pd.Timestamp(day).value) - intraday.DAY, cfg)
                    if model and intraday_at(ts, nows, model, cfg, prev).score >= cfg.warning:
                        first = k
                        break
                if len(notes) == 1 and first is not None:
                    latencies.append(notes[0].at - sent[first - 1])
                print(f"  run {run}: {len(notes)} notification(s), significant at webhook {first}")
    finally:
        influx.cleanup()
    if latencies:
        q = statistics.quantiles(latencies, n=20) if len(latencies) > 1 else [latencies[0]] * 19
        rt = statistics.quantiles(round_trips, n=20)
        print(f"webhook -> notification: p50 {statistics.median(latencies) * 1000:.0f} ms, "
              f"p95 {q[18] * 1000:.0f} ms over {len(latencies)} runs; webhook round trip p50 "
              f"{statistics.median(round_trips) * 1000:.1f} ms, p95 {rt[18] * 1000:.1f} ms")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=2, help="synthetic seeds (default 2; more for a bigger run)")
    parser.add_argument("--demo-months", type=int, default=6, help="demo months (0: skip)")
    parser.add_argument("--e2e-runs", type=int, default=5, help="end-to-end runs (0: skip)")
    args = parser.parse_args()
    t = time.perf_counter()
    synthetic_scores = part_synthetic(args.seeds)
    for fam, scores in synthetic_scores.items():
        table(f"synthetic, {fam} series ({args.seeds} seeds, volumes 0.5-200/day)", scores)
    print(f"  ({time.perf_counter() - t:.0f} s)")
    if args.demo_months:
        t = time.perf_counter()
        table(f"demo incidents (4 products, {args.demo_months} months)", part_demo(args.demo_months))
        print(f"  ({time.perf_counter() - t:.0f} s)")
    if args.e2e_runs:
        print("\nend to end (signed Stripe cancellations -> Service -> apprise json://)")
        part_e2e(args.e2e_runs)


if __name__ == "__main__":
    main()
