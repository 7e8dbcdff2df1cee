"""Render the collected numbers: one HTML document (Jinja2 template, SVG charts inline, so
the file is self-contained) and the PDF made from that same HTML by WeasyPrint.

Why WeasyPrint and not headless Chromium's ``--print-to-pdf``: it is a Python library
(no browser process to start, sandbox or keep alive inside ``growthwatch serve``), it
implements CSS Paged Media (``@page`` sizes, running footers with page numbers, page
breaks) which is exactly what a printed board report needs, and it installs from PyPI on
top of Debian's pango. The HTML is the single source: the PDF shows exactly what the HTML
file says, and the tests check both.
"""

from __future__ import annotations

import base64
import logging
from dataclasses import dataclass
from typing import Any

from jinja2 import Environment, PackageLoader, select_autoescape
from markupsafe import Markup

from reports import charts
from reports.collect import Anomaly, Kpi, ProductReport, ReportData
from reports.highlights import highlights
from reports.money import change_percent, change_points, count, money, percent

CHART_SIZE = (81.0, 74.0)
GLANCE_CHART_SIZE = (
    272.0,
    78.0,
)  # mm: under the products table, the page's width  # mm: four to a product page, beside its KPI table
GLANCE_KEYS = ("mrr", "net_revenue", "customers", "customer_churn", "nrr")

_env = Environment(
    loader=PackageLoader("reports", "templates"),
    autoescape=select_autoescape(["html", "j2"]),
    trim_blocks=True,
    lstrip_blocks=True,
)


@dataclass(frozen=True)
class Cell:
    text: str
    tone: str  # "good" | "bad" | "" (how a board should read the change)


def value_text(kpi: Kpi) -> str:
    if kpi.kind == "money":
        return money(kpi.value, kpi.currency)
    if kpi.kind == "rate":
        return percent(kpi.value)
    return count(kpi.value)


def change_cell(kpi: Kpi, change: float | None) -> Cell:
    text = change_points(change) if kpi.kind == "rate" else change_percent(change)
    if change is None or abs(change) < 0.0005:
        return Cell(text, "")
    good = (change > 0) == kpi.higher_is_better
    return Cell(text, "good" if good else "bad")


def kpi_row(kpi: Kpi) -> dict[str, Any]:
    return {"label": kpi.label, "key": kpi.key, "value": value_text(kpi),
            "mom": change_cell(kpi, kpi.mom), "yoy": change_cell(kpi, kpi.yoy)}  # fmt: skip


MOVEMENT_ROWS = (("start", "MRR at the start", ""), ("new", "New", "+"),
                 ("expansion", "Expansion", "+"), ("reactivation", "Reactivation", "+"),
                 ("contraction", "Contraction", "−"), ("churn", "Churn", "−"),
                 ("fx_impact", "FX impact", "±"), ("end", "MRR at the end", "="))  # fmt: skip


def movement_rows(movements: dict[str, float], currency: str) -> list[dict[str, str]]:
    """The waterfall as exact amounts: a board member can add them up."""
    rows = []
    for key, label, sign in MOVEMENT_ROWS:
        if key == "fx_impact" and not movements.get(key):
            continue
        rows.append({"key": key, "label": label, "sign": sign,
                     "value": money(abs(movements.get(key, 0.0)) if sign in "+−" and sign
                                    else movements.get(key, 0.0), currency)})  # fmt: skip
    return rows


def _img(svg: str, alt: str) -> Markup:
    """An SVG as an ``<img>`` with a data URI: the HTML stays one self-contained file, each
    chart keeps its own element ids and styles, and WeasyPrint draws it as vector SVG."""
    data = base64.b64encode(svg.encode()).decode()
    return Markup('<img alt="{}" src="data:image/svg+xml;base64,{}">').format(alt, data)


def _charts(product: ProductReport, currency: str) -> dict[str, Markup]:
    key = f"gw-{product.id}"
    name = product.name
    return {
        "trend": _img(charts.mrr_trend(f"{key}-trend", product.mrr_trend, currency, CHART_SIZE),
                      f"{name}: MRR trend"),
        "waterfall": _img(charts.waterfall(f"{key}-waterfall", product.movements, currency,
                                           CHART_SIZE), f"{name}: MRR movements"),
        "cohorts": _img(charts.cohort_triangle(f"{key}-cohorts", product.cohorts, CHART_SIZE),
                        f"{name}: revenue retention by cohort"),
        "signups": _img(charts.signups_activation(f"{key}-signups", product.monthly, CHART_SIZE),
                        f"{name}: signups and activation rate"),
    }  # fmt: skip


def _page(product: ProductReport, currency: str) -> dict[str, Any]:
    return {
        "id": product.id,
        "name": product.name,
        "currency": product.currency,
        "rows": [kpi_row(k) for k in product.kpis],
        "movements": movement_rows(product.movements, currency),
        "charts": _charts(product, currency),
        "notes": product.notes,
        "anomalies": [_anomaly(a, product.name) for a in product.anomalies],
    }


def _plain(x: float) -> str:
    """A readable number, never in exponent notation: 11,148 or 85.6 or 0.097."""
    if abs(x) >= 100:
        return f"{x:,.0f}"
    return f"{x:,.3g}" if abs(x) >= 0.001 or x == 0 else f"{x:.2e}"


def _anomaly(a: Anomaly, name: str) -> dict[str, Any]:
    numbers = ""
    if a.observed is not None and a.expected is not None:
        numbers = f"{_plain(a.observed)} vs {_plain(a.expected)} expected"
    return {"product": name, "metric": a.metric, "segment": a.segment, "severity": a.severity,
            "state": a.state, "started": f"{a.started:%-d %b %H:%M} UTC", "numbers": numbers,
            "explanation": a.explanation or "(no explanation recorded)"}  # fmt: skip


def context(data: ReportData) -> dict[str, Any]:
    """Everything the template prints, as text (the template does no arithmetic)."""
    pf = data.portfolio
    mrr = pf.kpi("mrr")
    value, previous, year_ago = (None if v is None else v * 12
                                 for v in (mrr.value, mrr.previous, mrr.year_ago))  # fmt: skip
    arr = Kpi("arr", "ARR", "money", value, previous, year_ago, currency=data.currency)
    cover = [kpi_row(k) for k in (mrr, arr, pf.kpi("net_revenue"), pf.kpi("customers"),
                                  pf.kpi("nrr"))]  # fmt: skip
    names = {p.id: p.name for p in data.products}
    return {
        "title": data.title,
        "month": data.month.label,
        "month_id": str(data.month),
        "currency": data.currency,
        "timezone": data.timezone,
        "generated": f"{data.generated_at:%-d %B %Y %H:%M} UTC",
        "closed": data.closed,
        "cover": cover,
        "highlights": highlights(data),
        "notes": data.notes
        + [f"{pf.name}: {n}" for n in pf.notes]
        + [f"{names.get(p.id, p.id)}: {n}" for p in data.products for n in p.notes],
        "portfolio": _page(pf, data.currency),
        "glance_heads": [pf.kpi(k).label for k in GLANCE_KEYS],
        "glance": [
            {
                "name": p.name,
                "id": p.id,
                "cells": [
                    {"value": value_text(p.kpi(k)), "mom": change_cell(p.kpi(k), p.kpi(k).mom)}
                    for k in GLANCE_KEYS
                ],
            }
            for p in data.products
        ],
        "glance_chart": _img(
            charts.mrr_by_product(
                "gw-glance",
                [(p.name, p.kpi("mrr").value or 0.0, p.kpi("mrr").year_ago) for p in data.products],
                data.currency,
                GLANCE_CHART_SIZE,
            ),
            "MRR by product",
        ),
        "products": [_page(p, data.currency) for p in data.products],
        "anomalies": [_anomaly(a, names.get(a.product, "Portfolio")) for a in data.anomalies],
        "font": charts.available_font(),
    }


def render_html(data: ReportData) -> str:
    return _env.get_template("report.html.j2").render(**context(data))


def render_pdf(html: str) -> bytes:
    """The PDF of ``html`` (WeasyPrint; imported here so the HTML path never needs it)."""
    from weasyprint import HTML

    # WeasyPrint logs every CSS property it skips and font-subsetting choices as warnings;
    # none of them changes the page, so keep them out of the CLI's and the service's log.
    for name in ("weasyprint", "fontTools"):
        logging.getLogger(name).setLevel(logging.ERROR)
    return bytes(HTML(string=html).write_pdf() or b"")
