"""ISO 4217 currencies and their minor units.

Kept as data in the code (not a dependency) because three places need the same answer:
event validation (is this a currency at all?), the Stripe exporter (amounts arrive in
minor units: 1000 JPY is ``1000``, 10.00 USD is ``1000``) and the reports (how many
decimals to print). Codes are the active ISO 4217 list; funds and precious-metal codes
(XAU, XDR, ...) are deliberately left out: no product bills in them.
"""

from __future__ import annotations

from decimal import Decimal

# code -> number of minor-unit digits (ISO 4217 "minor unit" column).
_TABLE = """
AED 2 AFN 2 ALL 2 AMD 2 ANG 2 AOA 2 ARS 2 AUD 2 AWG 2 AZN 2 BAM 2 BBD 2 BDT 2 BGN 2 BHD 3
BIF 0 BMD 2 BND 2 BOB 2 BRL 2 BSD 2 BTN 2 BWP 2 BYN 2 BZD 2 CAD 2 CDF 2 CHF 2 CLP 0 CNY 2
COP 2 CRC 2 CUP 2 CVE 2 CZK 2 DJF 0 DKK 2 DOP 2 DZD 2 EGP 2 ERN 2 ETB 2 EUR 2 FJD 2 FKP 2
GBP 2 GEL 2 GHS 2 GIP 2 GMD 2 GNF 0 GTQ 2 GYD 2 HKD 2 HNL 2 HTG 2 HUF 2 IDR 2 ILS 2 INR 2
IQD 3 IRR 2 ISK 0 JMD 2 JOD 3 JPY 0 KES 2 KGS 2 KHR 2 KMF 0 KPW 2 KRW 0 KWD 3 KYD 2 KZT 2
LAK 2 LBP 2 LKR 2 LRD 2 LSL 2 LYD 3 MAD 2 MDL 2 MGA 2 MKD 2 MMK 2 MNT 2 MOP 2 MRU 2 MUR 2
MVR 2 MWK 2 MXN 2 MYR 2 MZN 2 NAD 2 NGN 2 NIO 2 NOK 2 NPR 2 NZD 2 OMR 3 PAB 2 PEN 2 PGK 2
PHP 2 PKR 2 PLN 2 PYG 0 QAR 2 RON 2 RSD 2 RUB 2 RWF 0 SAR 2 SBD 2 SCR 2 SDG 2 SEK 2 SGD 2
SHP 2 SLE 2 SOS 2 SRD 2 SSP 2 STN 2 SYP 2 SZL 2 THB 2 TJS 2 TMT 2 TND 3 TOP 2 TRY 2 TTD 2
TWD 2 TZS 2 UAH 2 UGX 0 USD 2 UYU 2 UZS 2 VES 2 VND 0 VUV 0 WST 2 XAF 0 XCD 2 XCG 2 XOF 0
XPF 0 YER 2 ZAR 2 ZMW 2 ZWG 2
"""

_tokens = _TABLE.split()
MINOR_UNITS: dict[str, int] = {
    code: int(digits) for code, digits in zip(_tokens[::2], _tokens[1::2], strict=True)
}
CURRENCIES: frozenset[str] = frozenset(MINOR_UNITS)


def is_currency(code: object) -> bool:
    """True for an active ISO 4217 code in its canonical upper-case form."""
    return isinstance(code, str) and code in CURRENCIES


def normalise(code: str) -> str:
    """Sources spell codes in lower case (Stripe: ``"usd"``); the ledger stores ISO form."""
    return code.strip().upper()


def from_minor(amount: int, currency: str) -> Decimal:
    """Convert an integer amount in minor units (Stripe's convention) to a Decimal.

    >>> from_minor(1999, "USD"), from_minor(1999, "JPY"), from_minor(1999, "KWD")
    (Decimal('19.99'), Decimal('1999'), Decimal('1.999'))
    """
    digits = MINOR_UNITS[normalise(currency)]
    return Decimal(amount).scaleb(-digits)


def format_money(amount: float | Decimal, currency: str, *, code: bool = True) -> str:
    """``12,345.67 USD``, ``1,235 JPY``: thousands separators and the currency's own minor
    units (a yen amount never gets ``.00``), for the CLI and the report alike.

    >>> format_money(1234567.891, "USD"), format_money(1234.5, "JPY", code=False)
    ('1,234,567.89 USD', '1,235')
    """
    digits = MINOR_UNITS.get(normalise(currency), 2)
    text = f"{float(amount):,.{digits}f}"
    if text.startswith("-") and float(text.replace(",", "")) == 0:
        text = text[1:]  # no "-0.00"
    return f"{text} {normalise(currency)}" if code else text
