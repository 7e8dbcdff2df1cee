"""Trials and lifecycle benchmark: the two families' pure functions on demo events, against
``product_daily`` (DAU/WAU/MAU over the same ``active_use`` events) as the reference.

    .venv/bin/python benchmarks/bench_trials_lifecycle.py [--products 3] [--months 4] [--events-per-day 600]

The default is small (seconds); ``--products 12 --months 18 --events-per-day 3000`` is the
demo's default portfolio. Printed: the events, each computation's time (best of 3, in this
process) and the ratio of the lifecycle (day + week) to ``product_daily`` measured in the
same run; and the trials (day + month) against the MRR computation of the same events.
"""

from __future__ import annotations

import argparse

from _timing import best_of

from growthwatch.demo.generator import DemoSpec, generate
from growthwatch.demo.pipeline import DEMO_METRICS
from growthwatch.metrics import engagement, lifecycle, trials
from growthwatch.metrics.mrr import MRR_TYPES, compute_mrr
from growthwatch.stores.ledger import Ledger


def run(args: argparse.Namespace) -> None:
    spec = DemoSpec(products=args.products, months=args.months,
                    events_per_day=args.events_per_day)  # fmt: skip
    with Ledger() as ledger:  # the ledger's frames: de-duplicated, keyed, typed
        for chunk in generate(spec):
            ledger.append(chunk)
        events = ledger.read()
    settings = DEMO_METRICS  # the demo's exchange rates
    until = events["ts"].max()
    active = events[events["type"].isin(list(engagement.TYPES))]
    subs = events[events["type"].isin(list({*trials.TYPES, *MRR_TYPES}))]
    n_trials = int((events["type"] == "trial_started").sum())
    print(f"demo events: {len(events):,} ({len(active):,} product analytics, {n_trials:,} "
          f"trials), {spec.products} products, {spec.months} months")  # fmt: skip

    def life() -> None:
        lifecycle.lifecycle(active, settings, "day", until)
        lifecycle.lifecycle(active, settings, "week", until)

    def trial() -> None:
        trials.trials_daily(subs, settings, until)
        trials.trials_monthly(subs, settings, until)

    t_life = best_of(life)
    t_ref = best_of(lambda: engagement.product_daily(active, settings, until))
    t_trial = best_of(trial)
    t_mrr = best_of(lambda: compute_mrr(subs, settings, until))
    print(f"lifecycle (day + week): {t_life:.3f} s; product_daily: {t_ref:.3f} s; "
          f"ratio {t_life / t_ref:.2f}")  # fmt: skip
    print(f"trials (day + month): {t_trial:.3f} s; compute_mrr: {t_mrr:.3f} s; "
          f"ratio {t_trial / t_mrr:.2f}")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--products", type=int, default=3, help="demo products")
    parser.add_argument("--months", type=int, default=4, help="demo months")
    parser.add_argument("--events-per-day", type=int, default=600,
                        help="mean portfolio-wide events per day")  # fmt: skip
    run(parser.parse_args())


if __name__ == "__main__":
    main()
