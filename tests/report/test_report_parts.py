"""The report's parts on their own: months of the reporting timezone, money with the
currency's minor units, partial data said so, and the command's one-line errors."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pandas as pd
import pytest
from report_fixtures import MONTH, NOW, Demo

from growthwatch import PointBatch, SeriesStore
from growthwatch.cli import main
from reports.collect import CollectError, collect
from reports.money import change_percent, change_points, money, percent
from reports.period import Month, PeriodError, bounds, last_complete_month, local_day
from reports.render import render_html


def test_a_month_is_the_reporting_timezones_calendar_month() -> None:
    start, end = bounds(Month(2026, 10), ZoneInfo("Europe/Berlin"))
    assert start == datetime(2026, 9, 30, 22, tzinfo=UTC)  # CEST, UTC+2
    assert end == datetime(2026, 10, 31, 23, tzinfo=UTC)  # CET from 25 October, UTC+1
    ny = ZoneInfo("America/New_York")
    # a daily bucket stamped at UTC midnight and one stamped at New York midnight are both 1 Oct
    stamps = pd.Series(pd.to_datetime(["2026-10-01T00:00Z", "2026-10-01T04:00Z"], utc=True))
    assert [d.date().isoformat() for d in local_day(stamps, ny)] == ["2026-10-01"] * 2
    tokyo = local_day(
        pd.Series(pd.to_datetime(["2026-10-31T15:00Z"], utc=True)), ZoneInfo("Asia/Tokyo")
    )
    assert tokyo.iloc[0].date().isoformat() == "2026-11-01"  # Tokyo midnight of 1 November
    assert last_complete_month(datetime(2026, 11, 1, 3, tzinfo=UTC), ny) == Month(2026, 9)
    assert last_complete_month(datetime(2026, 11, 1, 5, tzinfo=UTC), ny) == Month(2026, 10)


@pytest.mark.parametrize("text", ["2026-13", "2026-1", "October", "2026-00", ""])
def test_a_bad_month_is_refused_with_the_expected_form(text: str) -> None:
    with pytest.raises(PeriodError, match="expected YYYY-MM"):
        Month.parse(text)


def test_money_has_its_currency_separators_and_minor_units() -> None:
    assert money(1234567.891, "USD") == "$1,234,567.89"
    assert money(1234567.891, "JPY") == "¥1,234,568"
    assert money(1234.5678, "KWD") == "KWD 1,234.568"
    assert money(-12.5, "EUR") == "\u2212€12.50"
    assert money(None, "USD") == "n/a"
    assert percent(0.04251) == "4.3%" and change_percent(0.1234) == "+12.3%"
    assert change_points(-0.0004) == "+0.0 pp" and change_points(-0.012) == "\u22121.2 pp"


def test_a_month_not_yet_over_is_said_so(demo: Demo) -> None:
    data = collect(demo.series, MONTH, now=datetime(2026, 10, 20, 12, tzinfo=UTC))
    assert not data.closed
    assert any("October 2026 is not over yet" in n and "month to date" in n for n in data.notes)
    assert "month to date" in render_html(data)


def test_a_missing_year_ago_month_is_said_so_and_shown_as_na(demo: Demo) -> None:
    data = collect(demo.series, Month(2026, 2), now=NOW)  # the demo starts in September 2025
    assert data.portfolio.kpi("mrr").yoy is None and data.portfolio.kpi("mrr").mom is not None
    assert any("No data for February 2025" in n for n in data.portfolio.notes)
    html = render_html(data)
    assert "No data for February 2025: year-over-year changes are n/a." in html


def test_the_same_numbers_in_another_reporting_timezone(demo: Demo) -> None:
    utc = collect(demo.series, MONTH, now=NOW)
    ny = collect(demo.series, MONTH, now=NOW, timezone="America/New_York")
    assert [k.value for k in utc.portfolio.kpis] == [k.value for k in ny.portfolio.kpis]


def _late_product_store(path: Path) -> SeriesStore:
    """A product whose first data is 14 October, next to one with a full history."""
    store = SeriesStore(path)
    days = pd.date_range("2025-09-01", "2026-10-31", freq="D", tz="UTC")
    late = days[days >= pd.Timestamp("2026-10-14", tz="UTC")]
    batches = []
    for product, span in (("steady", days), ("late", late)):
        n = len(span)
        batches.append(
            PointBatch(
                "mrr_daily",
                pd.DataFrame(
                    {
                        "time": span,
                        "product": product,
                        "mrr": [100.0 + i for i in range(n)],
                        "new": 1.0,
                        "expansion": 0.0,
                        "contraction": 0.0,
                        "churn": 0.0,
                        "reactivation": 0.0,
                        "fx_impact": 0.0,
                    }
                ),
                ("product",),
                ("mrr", "new", "expansion", "contraction", "churn", "reactivation", "fx_impact"),
            )
        )
        batches.append(
            PointBatch(
                "product_daily",
                pd.DataFrame({"time": span, "product": product, "signups": 10, "activated": 4}),
                ("product",),
                ("signups", "activated"),
            )
        )
        batches.append(
            PointBatch(
                "revenue_daily",
                pd.DataFrame(
                    {
                        "time": span,
                        "product": product,
                        "currency": "USD",
                        "net": 50.0,
                        "net_rc": 50.0,
                    }
                ),
                ("product", "currency"),
                ("net", "net_rc"),
            )
        )
        months = pd.date_range(span[0].normalize().replace(day=1), span[-1], freq="MS")
        batches.append(
            PointBatch(
                "churn_monthly",
                pd.DataFrame(
                    {
                        "time": months,
                        "product": product,
                        "mrr_end": 500.0,
                        "customers_end": 5,
                        "mrr_start": 400.0,
                        "customers_start": 4,
                        "churned": 1,
                    }
                ),
                ("product",),
                ("mrr_end", "customers_end", "mrr_start", "customers_start", "churned"),
            )
        )
    store.write(batches)  # fmt: skip
    return store


def test_a_product_that_started_mid_month_is_said_so(tmp_path: Path) -> None:
    store = _late_product_store(tmp_path / "series.duckdb")
    try:
        data = collect(store, MONTH, now=NOW)
    finally:
        store.close()
    late = next(p for p in data.products if p.id == "late")
    steady = next(p for p in data.products if p.id == "steady")
    assert any("First data on 14 October 2026" in n for n in late.notes)
    assert all(k.mom is None and k.yoy is None for k in late.kpis)
    assert late.kpi("signups").value == 18 * 10  # 14..31 October
    assert steady.notes == [] and steady.kpi("signups").value == 31 * 10
    assert "late: First data on 14 October 2026" in " ".join(render_html(data).split())


def test_unknown_products_are_refused_naming_the_valid_ids(demo: Demo) -> None:
    with pytest.raises(CollectError, match="valid ids: acme-crm, beacon-analytics, kumo-invoicing"):
        collect(demo.series, MONTH, now=NOW, products=["acme-crm", "nope"])


def test_a_month_without_metrics_is_refused_naming_the_latest(demo: Demo) -> None:
    with pytest.raises(CollectError, match="no monthly metrics for November 2026 in the series "
                       r"store \(latest month with data: October 2026\)"):  # fmt: skip
        collect(demo.series, Month(2026, 11), now=datetime(2026, 12, 1, 6, tzinfo=UTC))


def test_the_command_gives_one_line_errors(
    demo: Demo, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["report", "--month", "2026-13", "--data-dir", str(tmp_path)]) == 2
    assert "--month: month '2026-13': expected YYYY-MM" in capsys.readouterr().err
    assert main(["report", "--month", "2026-10", "--data-dir", str(tmp_path)]) == 2
    assert "no series store at" in capsys.readouterr().err
    code = main(["report", "--month", "2026-10", "--products", "nope",
                 "--data-dir", str(demo.data_dir)])  # fmt: skip
    err = capsys.readouterr().err
    assert code == 2 and "unknown product(s) nope; valid ids: acme-crm" in err


def test_the_command_writes_the_pdf_and_html_of_a_selection(
    demo: Demo, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pdf, html = tmp_path / "r.pdf", tmp_path / "r.html"
    code = main(["report", "--month", "2026-10", "--products", "acme-crm,kumo-invoicing",
                 "--data-dir", str(demo.data_dir), "--out", str(pdf), "--html", str(html)])  # fmt: skip
    assert code == 0, capsys.readouterr().err
    assert pdf.read_bytes().startswith(b"%PDF-")
    text = html.read_text()
    assert "Selected products" in text and "Beacon Analytics" not in text.split("Partial data")[0]
    assert f"written to {pdf}" in capsys.readouterr().out


def test_the_report_config_section_is_checked_and_read() -> None:
    from growthwatch.config.loader import check_data
    from reports.service import ReportSettings

    section = {"day": 2, "time": "07:30", "products": ["a"], "delivery": ["${BOARD_URL}"],
               "attach_pdf": False, "link_base": "https://intranet.example.com/board",
               "retry_interval": "5m"}  # fmt: skip
    assert check_data({"products": [{"id": "a"}], "report": section}) == []
    settings = ReportSettings.from_section(section)
    assert (settings.day, settings.at.hour, settings.at.minute) == (2, 7, 30)
    assert settings.products == ("a",) and settings.delivery == ("${BOARD_URL}",)
    assert not settings.attach_pdf and settings.retry_interval == 300
    assert settings.link_base == "https://intranet.example.com/board"
    bad = check_data({"products": [{"id": "a"}],
                      "report": {"day": 31, "delivery": ["mailto://inline"], "colour": 1}})  # fmt: skip
    paths = sorted(p.path for p in bad)
    assert paths == ["report", "report.day", "report.delivery[0]"]
    assert ReportSettings.from_section({}) == ReportSettings()  # the 1st at 06:00, attach


def test_optional_engine_fields_are_used_when_present(tmp_path: Path) -> None:
    """``nrr_t12m`` and ``partial``: written by a newer engine, shown when there."""
    store = _late_product_store(tmp_path / "series.duckdb")
    extra = pd.DataFrame({"time": pd.to_datetime(["2026-10-01"], utc=True), "product": "steady",
                          "nrr_t12m": [1.0432], "partial": [1]})  # fmt: skip
    store.write([PointBatch("churn_monthly", extra, ("product",), ("nrr_t12m", "partial"))])
    try:
        data = collect(store, MONTH, now=NOW, products=["steady"])
    finally:
        store.close()
    steady = data.products[0]
    assert steady.kpi("nrr_t12m").value == pytest.approx(1.0432)
    text = " ".join(re.sub(r"<[^>]+>", " ", render_html(data)).split())
    assert "NRR, trailing 12 mo. 104.3%" in text
    assert any("marks part of October 2026 as partial" in n for n in data.notes)


def test_a_selection_of_products_is_their_sum_by_the_portfolio_rule(demo: Demo) -> None:
    data = collect(demo.series, MONTH, now=NOW, products=["acme-crm", "kumo-invoicing"])
    assert data.selection and data.portfolio.name == "Selected products"
    a, k = data.products
    pf = data.portfolio

    def total(key: str) -> float:
        return (a.kpi(key).value or 0.0) + (k.kpi(key).value or 0.0)

    for key in ("mrr", "net_revenue", "customers", "signups"):
        assert pf.kpi(key).value == pytest.approx(total(key)), key
    moves = {m: a.movements[m] + k.movements[m] for m in a.movements}
    nrr = 1 - (moves["churn"] + moves["contraction"] - moves["expansion"]
               - moves["reactivation"]) / moves["start"]  # fmt: skip
    assert pf.kpi("nrr").value == pytest.approx(nrr)  # a ratio of sums, not a mean of rates
    assert pf.kpi("arpa").value == pytest.approx(total("mrr") / total("customers"))
    assert pf.kpi("nrr").value != pytest.approx((a.kpi("nrr").value + k.kpi("nrr").value) / 2)
