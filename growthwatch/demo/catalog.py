"""The demo portfolio: products, their currencies and price lists, and their "personality".

Prices are kept in integer minor units so money is exact: an annual plan's price is 12
times its MRR, so MRR = price / 12 has no rounding (29.00 a month becomes 24.07 a month on
an annual plan, billed 288.84 a year). One product bills in JPY (no minor unit) so the
pipeline's currency handling is exercised by the demo too.

A ``ProductProfile`` holds the hidden behaviour (size, growth, churn, trial habits, channel
mix) drawn once per product from the seed; the catalog is what a user sees.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from decimal import Decimal
from typing import Any, Final

import numpy as np

from growthwatch import currency as iso4217
from growthwatch.demo.spec import DemoSpec, Stream, rng

NAMES: Final = (
    ("acme-crm", "Acme CRM"),
    ("beacon-analytics", "Beacon Analytics"),
    ("kumo-invoicing", "Kumo Invoicing"),
    ("cobalt-mail", "Cobalt Mail"),
    ("dynamo-forms", "Dynamo Forms"),
    ("ember-notes", "Ember Notes"),
    ("fjord-hr", "Fjord HR"),
    ("granite-docs", "Granite Docs"),
    ("harbor-helpdesk", "Harbor Helpdesk"),
    ("iris-scheduling", "Iris Scheduling"),
    ("juniper-pay", "Juniper Pay"),
    ("lumen-status", "Lumen Status"),
)
CURRENCIES: Final = ("USD", "EUR", "JPY", "GBP", "USD", "EUR", "USD", "GBP", "USD", "EUR")
TIERS: Final = ("starter", "pro", "business")
# Monthly list prices per tier in USD; other currencies derive from these (see _price).
BASE_PRICES: Final = ((19, 49, 99), (29, 79, 199), (12, 39, 89), (49, 129, 299))
_FX: Final = {"USD": Decimal(1), "EUR": Decimal("0.9"), "GBP": Decimal("0.8"), "JPY": Decimal(150)}
ANNUAL_DISCOUNT: Final = Decimal("0.83")  # annual plans: about two months free
CHANNELS: Final = ("organic", "paid_search", "social", "email", "referral", "direct")


@dataclass(frozen=True)
class DemoPlan:
    """One price: a tier billed monthly or yearly, in the product's currency."""

    id: str  # e.g. "pro-annual"; the ``plan`` column
    tier: str
    interval: str  # "month" | "year"
    price_minor: int  # per billing period, per seat
    currency: str

    @property
    def months(self) -> int:
        return 12 if self.interval == "year" else 1

    @property
    def mrr_minor(self) -> int:
        """Monthly-normalised price in minor units (exact: annual prices are 12 x MRR)."""
        return self.price_minor // self.months

    @property
    def price(self) -> Decimal:
        return iso4217.from_minor(self.price_minor, self.currency)

    @property
    def mrr(self) -> Decimal:
        return iso4217.from_minor(self.mrr_minor, self.currency)

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "tier": self.tier,
            "interval": self.interval,
            "price": str(self.price),
            "mrr": str(self.mrr),
            "currency": self.currency,
        }


@dataclass(frozen=True)
class DemoProduct:
    id: str  # slug, the ``product`` column
    name: str
    currency: str
    plans: tuple[DemoPlan, ...]
    seat_based: bool  # business-style pricing: quantity (seats) changes happen

    def plan(self, tier: str, interval: str) -> DemoPlan:
        return next(p for p in self.plans if p.tier == tier and p.interval == interval)

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "currency": self.currency,
            "seat_based": self.seat_based,
            "plans": [p.to_dict() for p in self.plans],
        }


@dataclass(frozen=True)
class ProductProfile:
    """A product's hidden behaviour, drawn from the seed (what the demo data reveals)."""

    share: float  # fraction of the portfolio's volume
    growth: float  # yearly growth rate of usage and acquisition (log scale)
    weekend: float  # weekend volume relative to weekdays
    churn: float  # monthly voluntary churn probability of a monthly subscriber
    trial_rate: float  # share of new customers that start with a trial
    trial_conversion: float
    annual_share: float
    activation: float  # share of signups that ever activate
    channel_mix: tuple[float, ...]  # session share per channel in CHANNELS order


def catalog(spec: DemoSpec) -> list[DemoProduct]:
    """The products of the portfolio, deterministic from the spec's seed and size."""
    return [_product(spec, i) for i in range(spec.products)]


def _product(spec: DemoSpec, index: int) -> DemoProduct:
    slug, name = _name(index)
    currency = CURRENCIES[index % len(CURRENCIES)]
    draw = rng(spec.seed, Stream.CATALOG, index)
    base = BASE_PRICES[int(draw.integers(len(BASE_PRICES)))]
    plans: list[DemoPlan] = []
    for tier, usd in zip(TIERS, base, strict=True):
        monthly = _price(usd, currency)
        annual_mrr = int((Decimal(monthly) * ANNUAL_DISCOUNT).to_integral_value())
        plans.append(DemoPlan(f"{tier}-monthly", tier, "month", monthly, currency))
        plans.append(DemoPlan(f"{tier}-annual", tier, "year", annual_mrr * 12, currency))
    return DemoProduct(slug, name, currency, tuple(plans), seat_based=bool(draw.random() < 0.5))


def _name(index: int) -> tuple[str, str]:
    """Slugs for any portfolio size: the named products first, then numbered variants."""
    slug, name = NAMES[index % len(NAMES)]
    round_ = index // len(NAMES)
    return (slug, name) if round_ == 0 else (f"{slug}-{round_ + 1}", f"{name} {round_ + 1}")


def _price(usd: int, currency: str) -> int:
    """A monthly price in minor units: converted, then made a "nice" list price."""
    local = Decimal(usd) * _FX[currency]
    digits = iso4217.MINOR_UNITS[currency]
    if digits == 0:
        return int((local / 100).to_integral_value()) * 100  # JPY: whole hundreds of yen
    return int(local.to_integral_value()) * 10**digits


def profiles(spec: DemoSpec) -> list[ProductProfile]:
    """Per-product behaviour; shares are normalised so the portfolio volume is as asked."""
    raw = [_profile(spec, i) for i in range(spec.products)]
    total = sum(p.share for p in raw)
    return [_with_share(p, p.share / total) for p in raw]


def _profile(spec: DemoSpec, index: int) -> ProductProfile:
    draw = rng(spec.seed, Stream.PROFILE, index)
    mix = draw.dirichlet(np.array([6.0, 3.0, 2.0, 1.5, 1.0, 2.5]))
    return ProductProfile(
        share=float(draw.lognormal(0.0, 0.6)),
        growth=float(draw.uniform(0.05, 0.7)),
        weekend=float(draw.uniform(0.45, 0.8)),
        churn=float(draw.uniform(0.02, 0.055)),
        trial_rate=float(draw.uniform(0.3, 0.65)),
        trial_conversion=float(draw.uniform(0.35, 0.65)),
        annual_share=float(draw.uniform(0.15, 0.35)),
        activation=float(draw.uniform(0.3, 0.6)),
        channel_mix=tuple(float(x) for x in mix),
    )


def _with_share(profile: ProductProfile, share: float) -> ProductProfile:
    return replace(profile, share=share)
