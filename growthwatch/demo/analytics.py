"""Product analytics events in bulk: signups, activations, daily active use, sessions.

These are the volume (about 95% of the events), so they are drawn with numpy a whole
product-day at a time: counts from Poisson draws around the day's expected volume, times
from a diurnal profile (busy in the European and American afternoon), users from the
product's population with recent signups more active than old ones (retention decays).
The ids are built from their numbers by Arrow's string kernels (``columns.ids``).

The tracking outage removes the SDK's events (signup, activation, active use) inside its
window; users keep signing up, so the population and later activity are unaffected.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Final

import numpy as np
import pyarrow as pa

from growthwatch.demo.catalog import CHANNELS, DemoProduct, ProductProfile
from growthwatch.demo.columns import Block, ids, pick, unit_block
from growthwatch.demo.incidents import TRAFFIC_SPIKE_CHANNEL, TRAFFIC_SPIKE_FACTOR, Incident
from growthwatch.demo.spec import HOUR_S, Stream, rng
from growthwatch.events import EventType

# Shares of a product's daily volume (subscriptions and payments make up the rest).
SIGNUP_SHARE: Final = 0.04
ACTIVE_USE_SHARE: Final = 0.78
SESSION_SHARE: Final = 0.13 - SIGNUP_SHARE  # anonymous; each signup adds its own session
INITIAL_POPULATION_DAYS: Final = 6  # users before the range: 6 days' worth of active use
VISITORS_PER_USER: Final = 3
_HOURS = np.arange(24)
HOUR_WEIGHTS: Final = 1.0 + 0.75 * np.sin(2 * np.pi * (_HOURS - 9) / 24)
HOUR_CDF: Final = np.cumsum(HOUR_WEIGHTS) / HOUR_WEIGHTS.sum()


@dataclass
class ProductAnalytics:
    """One product's analytics stream; ``users`` grows with every signup (tracked or not)."""

    seed: int
    index: int
    product: DemoProduct
    profile: ProductProfile
    tracking_outage: Incident | None
    traffic_spike: Incident | None
    users: int = 0
    _started: bool = field(default=False, repr=False)

    def day(self, day_s: int, day_no: int, volume: float) -> list[Block]:
        """The blocks of one UTC day with ``volume`` expected events for this product."""
        draw = rng(self.seed, Stream.BULK, self.index, day_no)
        if not self._started:
            self.users = max(1, int(volume * ACTIVE_USE_SHARE * INITIAL_POPULATION_DAYS))
            self._started = True
        ymd = datetime.fromtimestamp(day_s, UTC).strftime("%Y%m%d")
        population = self.users
        signups, activations, visits = self._signups(draw, day_s, volume)
        blocks = [
            signups,
            activations,
            visits,
            self._active_use(draw, day_s, ymd, volume, population),
            self._sessions(draw, day_s, ymd, volume),
        ]
        return [b for b in blocks if len(b)]

    def _signups(
        self, draw: np.random.Generator, day_s: int, volume: float
    ) -> tuple[Block, Block, Block]:
        """Signups, their activations and the web session each signup came from.

        The signup session carries the new user's id, so a visit -> signup -> activation
        funnel can follow one id per person (other sessions are anonymous visitors).
        """
        n = int(draw.poisson(SIGNUP_SHARE * volume))
        numbers = np.arange(self.users, self.users + n)
        self.users += n
        ts = _times(draw, day_s, n)
        subjects = self._user_ids(numbers)
        slug = self.product.id
        source_ids = ids(f"{slug}:signup:", numbers)
        signups = self._tracked(unit_block(ts, self.index, EventType.SIGNUP, subjects, source_ids))
        activates = draw.random(n) < self.profile.activation
        delay = _activation_delay_us(draw, int(activates.sum()))
        act_ids = ids(f"{slug}:activation:", numbers[activates])
        activations = unit_block(
            ts[activates] + delay, self.index, EventType.ACTIVATION,
            subjects.filter(pa.array(activates)), act_ids,
        )  # fmt: skip
        return signups, self._tracked(activations), self._signup_visits(draw, ts, subjects, numbers)

    def _signup_visits(
        self,
        draw: np.random.Generator,
        signup_ts: np.ndarray,
        subjects: pa.Array,
        numbers: np.ndarray,
    ) -> Block:
        """One session per signup, up to 30 minutes before it (never before its day)."""
        n = len(signup_ts)
        lead = draw.integers(60, 30 * 60, n) * 1_000_000
        day_start = signup_ts - signup_ts % (86_400 * 1_000_000)
        channels = draw.choice(len(CHANNELS), n, p=np.array(self.profile.channel_mix))
        return unit_block(
            np.maximum(signup_ts - lead, day_start),
            self.index,
            EventType.SESSION,
            subjects,
            ids(f"{self.product.id}:ses:signup:", numbers),
            channel=pick(CHANNELS, channels),
        )

    def _active_use(
        self, draw: np.random.Generator, day_s: int, ymd: str, volume: float, population: int
    ) -> Block:
        n = int(draw.poisson(ACTIVE_USE_SHARE * volume))
        # Recent users are the most active: u**3 piles up near 0, i.e. near the newest user.
        numbers = population - 1 - (population * draw.random(n) ** 3).astype(np.int64)
        prefix = f"{self.product.id}:use:{ymd}:"
        source_ids = ids(prefix, range(n))
        block = unit_block(
            _times(draw, day_s, n),
            self.index,
            EventType.ACTIVE_USE,
            self._user_ids(numbers),
            source_ids,
        )
        return self._tracked(block)

    def _sessions(self, draw: np.random.Generator, day_s: int, ymd: str, volume: float) -> Block:
        """Web sessions per channel (one event per session; visitors are anonymous ids)."""
        expected = SESSION_SHARE * volume * np.array(self.profile.channel_mix)
        spike = self.traffic_spike
        if spike is not None and spike.covers(day_s):
            expected[CHANNELS.index(TRAFFIC_SPIKE_CHANNEL)] *= TRAFFIC_SPIKE_FACTOR
        counts = draw.poisson(expected)
        n = int(counts.sum())
        visitors = draw.integers(0, self.users * VISITORS_PER_USER, n)
        slug = self.product.id
        return unit_block(
            _times(draw, day_s, n),
            self.index,
            EventType.SESSION,
            ids(f"{slug}:vis_", visitors),
            ids(f"{slug}:ses:{ymd}:", range(n)),
            channel=pick(CHANNELS, np.repeat(np.arange(len(CHANNELS)), counts)),
        )

    def _user_ids(self, numbers: np.ndarray) -> pa.Array:
        return ids(f"{self.product.id}:usr_", numbers)

    def _tracked(self, block: Block) -> Block:
        """Without the SDK events that the tracking outage swallowed."""
        outage = self.tracking_outage
        if outage is None or not len(block):
            return block
        ts = block.ts
        lost = (ts >= outage.start_s * 1_000_000) & (ts < outage.end_s * 1_000_000)
        return block.take(~lost) if lost.any() else block


def _times(draw: np.random.Generator, day_s: int, n: int) -> np.ndarray:
    """``n`` moments of one day (UNIX microseconds) following the diurnal profile."""
    hours = np.searchsorted(HOUR_CDF, draw.random(n), side="right")
    within = draw.integers(0, HOUR_S * 1_000_000, n)
    return (day_s + hours * HOUR_S) * 1_000_000 + within


def _activation_delay_us(draw: np.random.Generator, n: int) -> np.ndarray:
    """Most activate the same day, many within the week, some later than the 7-day window."""
    kind = draw.random(n)
    hours = np.where(
        kind < 0.6,
        draw.exponential(4.0, n),
        np.where(kind < 0.9, draw.uniform(24, 7 * 24, n), draw.uniform(7 * 24, 21 * 24, n)),
    )
    return (60 + hours * HOUR_S).astype(np.int64) * 1_000_000
