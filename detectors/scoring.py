"""Event-level evaluation against labelled incidents (no point-adjusted scoring).

An incident is found when an alert on one of its series opens in ``[start, end + grace)``
(grace: a daily bucket is judged when it closes); it counts once however many alerts or
points it spans, and its delay is the first such open minus its start. Every other alert
is a false alert. precision = found / (found + false alerts), recall = found / incidents.
"""

from __future__ import annotations

import statistics
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta


@dataclass(frozen=True)
class Label:
    id: str
    product: str
    metrics: tuple[str, ...]  # "measurement.field" texts
    start: datetime
    end: datetime


@dataclass(frozen=True)
class Opened:
    product: str
    metric: str
    time: datetime


@dataclass(frozen=True)
class Match:
    label: Label
    delay: timedelta | None  # None: missed


@dataclass(frozen=True)
class Score:
    incidents: int
    found: int
    false_alerts: int
    delays_h: tuple[float, ...]
    product_months: float
    matches: tuple[Match, ...] = ()
    false: tuple[Opened, ...] = ()

    @property
    def precision(self) -> float:
        return self.found / (self.found + self.false_alerts) if self.found + self.false_alerts else 1.0

    @property
    def recall(self) -> float:
        return self.found / self.incidents if self.incidents else 1.0

    @property
    def f1(self) -> float:
        p, r = self.precision, self.recall
        return 2 * p * r / (p + r) if p + r else 0.0

    @property
    def median_delay_h(self) -> float:
        return statistics.median(self.delays_h) if self.delays_h else float("nan")

    @property
    def false_per_product_month(self) -> float:
        return self.false_alerts / self.product_months if self.product_months else 0.0


def evaluate(
    labels: Sequence[Label], opened: Iterable[Opened], product_months: float,
    grace: timedelta = timedelta(days=1),
) -> Score:
    opens = sorted(opened, key=lambda o: o.time)
    used: set[int] = set()
    matches = []
    for label in labels:
        hits = [i for i, o in enumerate(opens) if o.product == label.product
                and o.metric in label.metrics and label.start <= o.time < label.end + grace]  # fmt: skip
        used.update(hits)
        matches.append(Match(label, opens[hits[0]].time - label.start if hits else None))
    false = tuple(o for i, o in enumerate(opens) if i not in used)
    delays = tuple(m.delay.total_seconds() / 3600 for m in matches if m.delay is not None)
    return Score(len(labels), len(delays), len(false), delays, product_months,
                 tuple(matches), false)  # fmt: skip
