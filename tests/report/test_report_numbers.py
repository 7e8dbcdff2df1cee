"""The printed report says what the metrics engine computed: every KPI number of the PDF
(through ``pdftotext``) and of the HTML equals the value read independently from the series
store, and every section is there; the pages are not blank."""

from __future__ import annotations

import base64
import re
import shutil
import subprocess
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
import pytest
from PIL import Image
from report_fixtures import CHURN_EXPLANATION, MONTH, NOW, SIGNUP_EXPLANATION, Demo

from growthwatch import SeriesStore
from reports.build import BuiltReport
from reports.period import Month

pytestmark = [pytest.mark.influx, pytest.mark.slow]
MINUS = "\u2212"


# -- expected values, read from the store without the report's code --------------------------


def _utc(month: Month) -> tuple[datetime, datetime]:
    start = datetime(month.year, month.month, 1, tzinfo=UTC)
    nxt = month.shift(1)
    return start, datetime(nxt.year, nxt.month, 1, tzinfo=UTC)


@dataclass
class Values:
    mrr: float
    net_revenue: float
    net_native: float | None
    customers: float
    customer_churn: float | None
    revenue_churn: float | None
    nrr: float | None
    arpa: float
    signups: float
    activation: float
    movements: dict[str, float]


def values(store: SeriesStore, month: Month, product: str) -> Values | None:
    """A month's KPIs from the daily series and the monthly row's counts (not its rates)."""
    start, end = _utc(month)
    tags = {"product": product}
    mrr_daily = store.read("mrr_daily", tags=tags, start=start, end=end)
    if mrr_daily.empty:
        return None
    customers = store.read("customers_daily", tags=tags, start=start, end=end)
    prev_start, _ = _utc(month.shift(-1))
    before = store.read("mrr_daily", tags=tags, start=prev_start, end=start)
    monthly = store.read("churn_monthly", tags=tags, start=start, end=end).iloc[0]
    revenue = store.read("revenue_daily", start=start, end=end)
    if product != "all":
        revenue = revenue[revenue["product"] == product]
    daily = store.read("product_daily", tags=tags, start=start, end=end)
    mrr = float(mrr_daily.sort_values("time")["mrr"].iloc[-1])
    active = float(customers.sort_values("time")["active"].iloc[-1])
    mrr_start = float(monthly["mrr_start"])
    moves = {k: float(mrr_daily[k].sum()) for k in
             ("new", "expansion", "reactivation", "contraction", "churn", "fx_impact")}  # fmt: skip
    moves["start"] = float(before.sort_values("time")["mrr"].iloc[-1]) if len(before) else 0.0
    moves["end"] = mrr
    currencies = set(revenue["currency"])
    native = float(revenue["net"].sum()) if product != "all" and currencies != {"USD"} else None
    return Values(
        mrr=mrr,
        net_revenue=float(revenue["net_rc"].sum()),
        net_native=native,
        customers=active,
        customer_churn=(float(monthly["churned"]) / float(monthly["customers_start"])
                        if monthly["customers_start"] else None),
        revenue_churn=((moves["churn"] + moves["contraction"]) / mrr_start if mrr_start else None),
        nrr=(1 - (moves["churn"] + moves["contraction"] - moves["expansion"]
                  - moves["reactivation"]) / mrr_start if mrr_start else None),
        arpa=mrr / active,
        signups=float(daily["signups"].sum()),
        activation=float(daily["activated"].sum()) / float(daily["signups"].sum()),
        movements=moves,
    )  # fmt: skip


def usd(v: float | None) -> str:
    if v is None:
        return "n/a"
    return (MINUS if round(v, 2) < 0 else "") + f"${abs(v):,.2f}"


def native(v: float, currency: str) -> str:
    symbol, digits = {"EUR": ("€", 2), "GBP": ("£", 2), "JPY": ("¥", 0)}[currency]
    return f"{symbol}{v:,.{digits}f}"


def _signed(x: float, unit: str) -> str:
    r = round(x, 1)
    if r == 0:
        return f"+0.0{unit}"
    return ("+" if r > 0 else MINUS) + f"{abs(r):,.1f}{unit}"


def pct(v: float | None) -> str:
    return "n/a" if v is None else f"{v * 100:.1f}%"


def rel(now: float | None, then: float | None) -> str:
    if now is None or then is None or then == 0:
        return "n/a"
    return _signed((now / then - 1) * 100, "%")


def pp(now: float | None, then: float | None) -> str:
    if now is None or then is None:
        return "n/a"
    return _signed((now - then) * 100, " pp")


def kpi_rows(store: SeriesStore, product: str, currency: str | None) -> list[str]:
    """Each KPI line as the table prints it: label, value, vs last month, vs last year."""
    v = values(store, MONTH, product)
    p = values(store, MONTH.shift(-1), product)
    y = values(store, MONTH.shift(-12), product)
    assert v is not None and p is not None and y is not None

    def money_row(label: str, attr: str) -> str:
        a, b, c = getattr(v, attr), getattr(p, attr), getattr(y, attr)
        return f"{label} {usd(a)} {rel(a, b)} {rel(a, c)}"

    def rate_row(label: str, attr: str) -> str:
        a, b, c = getattr(v, attr), getattr(p, attr), getattr(y, attr)
        return f"{label} {pct(a)} {pp(a, b)} {pp(a, c)}"

    def count_row(label: str, attr: str) -> str:
        a, b, c = getattr(v, attr), getattr(p, attr), getattr(y, attr)
        return f"{label} {a:,.0f} {rel(a, b)} {rel(a, c)}"

    rows = [money_row("MRR", "mrr"), money_row("Net revenue", "net_revenue")]
    if currency is not None and v.net_native is not None:
        rows.append(f"Net revenue ({currency}) {native(v.net_native, currency)} "
                    f"{rel(v.net_native, p.net_native)} {rel(v.net_native, y.net_native)}")  # fmt: skip
    rows += [
        count_row("Customers", "customers"),
        rate_row("Customer churn", "customer_churn"),
        rate_row("Revenue churn", "revenue_churn"),
        rate_row("NRR", "nrr"),
        money_row("ARPA", "arpa"),
        count_row("Signups", "signups"),
        rate_row("Activation rate", "activation"),
    ]
    return rows


def movement_rows(store: SeriesStore, product: str) -> list[str]:
    v = values(store, MONTH, product)
    assert v is not None
    m = v.movements
    out = [f"MRR at the start {usd(m['start'])}", f"New + {usd(m['new'])}",
           f"Expansion + {usd(m['expansion'])}", f"Reactivation + {usd(m['reactivation'])}",
           f"Contraction {MINUS} {usd(m['contraction'])}", f"Churn {MINUS} {usd(m['churn'])}"]  # fmt: skip
    if round(m["fx_impact"], 6):
        out.append(f"FX impact ± {usd(m['fx_impact'])}")
    # the bridge adds up (docs/metrics.md: the identity holds to the cent)
    total = m["start"] + m["new"] + m["expansion"] + m["reactivation"] - m["contraction"]
    assert round(total - m["churn"] + m["fx_impact"], 2) == round(m["end"], 2)
    return [*out, f"MRR at the end = {usd(m['end'])}"]


def cover_tiles(store: SeriesStore) -> list[tuple[str, str, str]]:
    v = values(store, MONTH, "all")
    p = values(store, MONTH.shift(-1), "all")
    y = values(store, MONTH.shift(-12), "all")
    assert v is not None and p is not None and y is not None
    return [
        (usd(v.mrr), rel(v.mrr, p.mrr), rel(v.mrr, y.mrr)),
        (usd(v.mrr * 12), rel(v.mrr, p.mrr), rel(v.mrr, y.mrr)),
        (usd(v.net_revenue), rel(v.net_revenue, p.net_revenue), rel(v.net_revenue, y.net_revenue)),
        (f"{v.customers:,.0f}", rel(v.customers, p.customers), rel(v.customers, y.customers)),
        (pct(v.nrr), pp(v.nrr, p.nrr), pp(v.nrr, y.nrr)),
    ]


def glance_row(store: SeriesStore, product: str, name: str) -> str:
    v = values(store, MONTH, product)
    p = values(store, MONTH.shift(-1), product)
    assert v is not None and p is not None
    return (f"{name} {usd(v.mrr)} {rel(v.mrr, p.mrr)} {usd(v.net_revenue)} "
            f"{rel(v.net_revenue, p.net_revenue)} {v.customers:,.0f} {rel(v.customers, p.customers)} "
            f"{pct(v.customer_churn)} {pp(v.customer_churn, p.customer_churn)} {pct(v.nrr)} "
            f"{pp(v.nrr, p.nrr)}")  # fmt: skip


def products(demo: Demo) -> list[tuple[str, str, str]]:
    """(id, name, billing currency) of the demo's products, from its catalogue file."""
    import json

    catalog = json.loads((demo.data_dir / "products.json").read_text())
    return [(p["id"], p["name"], p["currency"]) for p in catalog]


# -- reading the outputs ---------------------------------------------------------------------


def _norm(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip()


def pdf_pages(pdf: Path) -> list[list[str]]:
    """Each page's lines (``pdftotext -layout``), whitespace runs made single spaces."""
    out = subprocess.run(["pdftotext", "-layout", str(pdf), "-"], check=True,
                         capture_output=True, text=True).stdout  # fmt: skip
    return [[_norm(line) for line in page.splitlines() if line.strip()]
            for page in out.split("\f") if page.strip()]  # fmt: skip


def html_sections(html: str) -> dict[str, str]:
    """Each ``<section>``'s text, tags replaced by spaces, keyed by its id or data-section."""
    out = {}
    for match in re.finditer(r"<section([^>]*)>(.*?)</section>", html, re.S):
        attrs, body = match.groups()
        key = re.search(r'id="([^"]+)"', attrs) or re.search(r'data-section="([^"]+)"', attrs)
        assert key is not None
        body = re.sub(r"<img[^>]*>", " ", body)
        out[key.group(1)] = _norm(re.sub(r"<[^>]+>", " ", body))
    return out


def has_line_starting(lines: list[str], expected: str) -> bool:
    return any(line == expected or line.startswith(expected + " ") for line in lines)


needs_poppler = pytest.mark.skipif(
    shutil.which("pdftotext") is None or shutil.which("pdftoppm") is None,
    reason="poppler-utils not installed (scripts/test installs it)",
)


# -- the tests -------------------------------------------------------------------------------


@needs_poppler
def test_every_kpi_number_in_the_pdf_is_the_engines_value(demo: Demo, built: BuiltReport) -> None:
    assert built.pdf is not None
    pages = pdf_pages(built.pdf)
    catalog = products(demo)
    assert len(pages) == 3 + len(catalog) + 1  # cover, portfolio, glance, products, anomalies
    cover = pages[0]
    tiles = cover_tiles(demo.series)
    assert " ".join(t[0] for t in tiles) in cover
    assert " ".join(f"MoM {t[1]}" for t in tiles) in cover
    assert " ".join(f"YoY {t[2]}" for t in tiles) in cover

    def check_page(lines: list[str], product: str, currency: str | None) -> None:
        for row in kpi_rows(demo.series, product, currency) + movement_rows(demo.series, product):
            assert has_line_starting(lines, row), f"{product}: no line {row!r} in\n" + "\n".join(
                lines
            )

    assert pages[1][0].startswith("Portfolio")
    check_page(pages[1], "all", None)
    assert pages[2][0].startswith("Products at a glance")
    for pid, name, _ in catalog:
        assert has_line_starting(pages[2], glance_row(demo.series, pid, name)), name
    for page, (pid, name, currency) in zip(pages[3:], catalog, strict=False):
        assert page[0].startswith(name), page[0]
        check_page(page, pid, currency)


@needs_poppler
def test_every_section_is_in_the_pdf(demo: Demo, built: BuiltReport) -> None:
    assert built.pdf is not None
    text = _norm(subprocess.run(["pdftotext", str(built.pdf), "-"], check=True,
                                capture_output=True, text=True).stdout)  # fmt: skip
    pages = [" ".join(page) for page in pdf_pages(built.pdf)]
    chart_pages = [pages[1], *pages[3 : 3 + len(products(demo))]]  # portfolio, each product
    for page in chart_pages:
        for title in (
            "MRR trend",
            "MRR movements this month",
            "MRR MOVEMENTS",
            "Revenue retention by cohort (first paid month)",
            "Signups and activation rate",
        ):
            assert title in page, (title, page[:80])  # fmt: skip
    for heading in (
        "HIGHLIGHTS",
        "Products at a glance",
        "Anomalies in October 2026",
        "About these numbers".upper(),
        "October 2026",
    ):
        assert heading in text, heading  # fmt: skip
    assert CHURN_EXPLANATION in text
    assert SIGNUP_EXPLANATION in text
    assert "must not appear" not in text  # September's incident is not October's
    mrr = cover_tiles(demo.series)[0][0]
    assert "Portfolio MRR grew" in text and mrr in text


def test_every_kpi_number_in_the_html_is_the_engines_value(demo: Demo, built: BuiltReport) -> None:
    assert built.html is not None
    html = built.html.read_text()
    assert "<script" not in html and 'src="http' not in html  # one self-contained file
    sections = html_sections(html)
    for (value, mom, yoy), label in zip(cover_tiles(demo.series),
                                        ("MRR", "ARR", "Net revenue", "Customers", "NRR"),
                                        strict=True):  # fmt: skip
        assert f"{label} {value} MoM {mom} YoY {yoy}" in sections["cover"]
    for row in kpi_rows(demo.series, "all", None) + movement_rows(demo.series, "all"):
        assert row in sections["portfolio-all"], row
    for pid, name, currency in products(demo):
        assert glance_row(demo.series, pid, name) in sections["glance"]
        for row in kpi_rows(demo.series, pid, currency) + movement_rows(demo.series, pid):
            assert row in sections[f"product-{pid}"], (pid, row)
    assert CHURN_EXPLANATION in sections["anomalies"]
    # four charts per product page and the portfolio's, and MRR by product at a glance,
    # each vector SVG only (no embedded bitmap)
    charts = re.findall(r'src="data:image/svg\+xml;base64,([A-Za-z0-9+/=]+)"', html)
    assert len(charts) == 4 * (1 + len(products(demo))) + 1
    for chart in charts:
        svg = base64.b64decode(chart).decode()
        assert svg.startswith("<svg") and "<path" in svg and "<image" not in svg


@needs_poppler
def test_pdf_pages_render_to_images_that_are_not_blank(built: BuiltReport, tmp_path: Path) -> None:
    assert built.pdf is not None
    subprocess.run(["pdftoppm", "-r", "40", "-png", str(built.pdf), str(tmp_path / "page")],
                   check=True)  # fmt: skip
    images = sorted(tmp_path.glob("page-*.png"))
    assert len(images) >= 5
    for path in images:
        gray = Image.open(path).convert("L")
        ink = sum(gray.histogram()[:200]) / (gray.width * gray.height)
        assert ink > 0.01, f"{path.name} is (nearly) blank: {ink:.3%} of its pixels are ink"
        assert gray.width > gray.height  # A4 landscape


def test_the_report_is_the_same_from_influxdb_and_the_embedded_store(demo: Demo) -> None:
    from reports.collect import collect
    from reports.render import context

    embedded = collect(demo.series, MONTH, now=NOW)
    influx = collect(demo.influx, MONTH, now=NOW)

    def printed(data: object) -> list[object]:
        ctx = context(data)  # type: ignore[arg-type]
        pages = [ctx["portfolio"], *ctx["products"]]
        return [ctx["cover"], ctx["glance"], ctx["highlights"], ctx["notes"], ctx["anomalies"],
                [(p["rows"], p["movements"]) for p in pages]]  # fmt: skip

    assert printed(embedded) == printed(influx)
    assert [a.alert_id for a in influx.anomalies] == ["a-churn", "a-signups"]
    pd.testing.assert_frame_equal(embedded.portfolio.cohorts, influx.portfolio.cohorts)
