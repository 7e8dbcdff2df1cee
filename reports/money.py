"""Numbers as a board reads them: money with its currency, thousands separators and the
currency's minor units (ISO 4217, ``growthwatch.MINOR_UNITS``), rates as percentages,
changes as signed percentages or percentage points.

One module so the PDF, the HTML, the highlights and the tests' parser agree on the same
spelling of a number.
"""

from __future__ import annotations

import math

from growthwatch import MINOR_UNITS

# Symbols for the currencies a reader knows at a glance; every other code is written out.
SYMBOLS = {"USD": "$", "EUR": "€", "GBP": "£", "JPY": "¥"}
MISSING = "n/a"
MINUS = "−"  # U+2212: a real minus sign lines up with "+" in tables


def _ok(value: float | None) -> bool:
    return value is not None and not (isinstance(value, float) and math.isnan(value))


def money(value: float | None, currency: str, *, decimals: int | None = None) -> str:
    """``$1,234,567.89``, ``¥1,234,567``, ``CHF 1,234.50``; negative as ``−$12.00``."""
    if not _ok(value):
        return MISSING
    assert value is not None
    digits = MINOR_UNITS.get(currency, 2) if decimals is None else decimals
    symbol = SYMBOLS.get(currency)
    body = f"{abs(value):,.{digits}f}"
    text = f"{symbol}{body}" if symbol else f"{currency} {body}"
    return (MINUS + text) if round(value, digits) < 0 else text


def compact_money(value: float, currency: str) -> str:
    """Axis labels: ``$1.2M``, ``$350k``, ``¥12M``."""
    symbol = SYMBOLS.get(currency, currency + " ")
    size = abs(value)
    sign = MINUS if value < 0 else ""
    if size >= 1e6:
        return f"{sign}{symbol}{size / 1e6:.1f}M"
    if size >= 1e3:
        return f"{sign}{symbol}{size / 1e3:.0f}k"
    return f"{sign}{symbol}{size:.0f}"


def count(value: float | None) -> str:
    return f"{value:,.0f}" if _ok(value) else MISSING


def percent(value: float | None, decimals: int = 1) -> str:
    """A fraction as a percentage: 0.0425 -> ``4.3%``."""
    if not _ok(value):
        return MISSING
    assert value is not None
    return _signed(value * 100, decimals, sign=False) + "%"


def change_percent(value: float | None) -> str:
    """A relative change: 0.123 -> ``+12.3%``."""
    if not _ok(value):
        return MISSING
    assert value is not None
    return _signed(value * 100, 1, sign=True) + "%"


def change_points(value: float | None) -> str:
    """A change of a rate in percentage points: 0.004 -> ``+0.4 pp``."""
    if not _ok(value):
        return MISSING
    assert value is not None
    return _signed(value * 100, 1, sign=True) + " pp"


def _signed(number: float, decimals: int, *, sign: bool) -> str:
    rounded = round(number, decimals)
    if rounded == 0:
        rounded = 0.0  # no "-0.0"
    body = f"{abs(rounded):,.{decimals}f}"
    if rounded < 0:
        return MINUS + body
    return ("+" + body) if sign else body
