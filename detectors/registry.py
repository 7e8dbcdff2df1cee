"""Detection methods by name (``--method NAME``, ``detector.method`` in the config).

A new method is a new file with a ``Detector`` subclass and one line here.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from detectors.base import Detector
from detectors.counts import NegBinomCounts
from detectors.seasonal import SeasonalMAD
from detectors.zscore import ZScore

METHODS: Mapping[str, type[Detector]] = {
    cls.name: cls for cls in (ZScore, SeasonalMAD, NegBinomCounts)
}
#: what ``auto`` picks (chosen on the benchmark, see README "Detector")
AUTO_COUNT = "counts"
AUTO_OTHER = "seasonal_mad"


def method_for(name: str, *, is_count: bool = False) -> type[Detector]:
    """The class for ``name`` (``auto``: counts for count fields, seasonal for the rest)."""
    if name == "auto":
        name = AUTO_COUNT if is_count else AUTO_OTHER
    try:
        return METHODS[name]
    except KeyError:
        known = ", ".join(["auto", *METHODS])
        raise ValueError(f"unknown detection method {name!r}; known: {known}") from None


def factory(name: str, *, is_count: bool = False) -> Callable[[], Detector]:
    return method_for(name, is_count=is_count)
