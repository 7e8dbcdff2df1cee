"""Dated exchange rates into the reporting currency.

Rates come from configuration (``reporting.fx_rates``): per currency a sorted list of
(date, rate), the rate being units of the reporting currency per 1 unit, in force from that
date until the next one. Lookups are vectorised (``searchsorted``) because revenue and MRR
convert every bucket of every product.

Before a currency's first configured date its first rate applies (a rate table usually
starts after the first sale; refusing to convert would hide the product from the
portfolio). A currency with no rates at all is an error: a silently missing conversion
would make the portfolio total wrong without anyone noticing.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal

import numpy as np
import pandas as pd


class FxError(LookupError):
    """No exchange rate is configured for a currency the events use."""


@dataclass(frozen=True)
class FxTable:
    reporting: str = "USD"
    rates: Mapping[str, tuple[tuple[date, Decimal], ...]] = field(default_factory=dict)

    @classmethod
    def constant(cls, reporting: str, rates: Mapping[str, Decimal]) -> FxTable:
        """One rate per currency for all time (demos, tests, a pegged currency)."""
        return cls(reporting, {c: ((date(1970, 1, 1), r),) for c, r in rates.items()})

    def rate_on(self, currency: str, day: date) -> float:
        """The rate of one currency on one day (scalar form, for tests and tables)."""
        days = pd.Series(pd.to_datetime([day], utc=True))
        return float(self.convert_factor(pd.Series([currency]), days)[0])

    def convert_factor(self, currencies: pd.Series, times: pd.Series) -> np.ndarray:
        """Per row: the rate of the row's currency in force on the row's UTC day."""
        cur = np.asarray(currencies.astype(object).to_numpy(), dtype=object)
        days = _days(times)
        out = np.ones(len(cur), dtype="float64")
        for code in pd.unique(cur):
            if code == self.reporting:
                continue
            mask = cur == code
            if code is None or (isinstance(code, float) and np.isnan(code)):
                raise FxError("an event with money has no currency")
            table = self.rates.get(str(code))
            if not table:
                raise FxError(
                    f"no exchange rate from {code} to {self.reporting}: add "
                    f"reporting.fx_rates.{code} to the configuration"
                )
            starts = np.array([np.datetime64(d, "D") for d, _ in table])
            values = np.array([float(r) for _, r in table])
            pos = np.searchsorted(starts, days[mask], side="right") - 1
            out[mask] = values[np.clip(pos, 0, len(values) - 1)]
        return out

    def currencies(self) -> set[str]:
        return {self.reporting, *self.rates}


def _days(times: pd.Series) -> np.ndarray:
    ts = pd.to_datetime(times, utc=True)
    return np.asarray(ts.dt.tz_localize(None).to_numpy().astype("datetime64[D]"))
