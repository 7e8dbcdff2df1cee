"""Revenue: MRR movements, the revenue waterfall, NRR/GRR, ARPA, LTV, ARR, by segment."""

from __future__ import annotations

from grafana_foundation_sdk.builders import dashboard as dash_b

from dashboards import panels as p
from dashboards.boards.product import _q, monthly_with_marker
from dashboards.common import (
    MONEY,
    board,
    board_link,
    period_var,
    product_anomalies,
    product_link,
    product_var,
    segment_var,
)  # fmt: skip
from dashboards.queries import Col, Influx, select, tag_is, tag_matches, tag_not

FILE = "revenue.json"

MOVEMENTS = [Col("new", "sum", "new"), Col("expansion", "sum", "expansion"),
             Col("reactivation", "sum", "reactivation"),
             Col("contraction", "sum", "contraction", scale=-1),
             Col("churn", "sum", "churn", scale=-1), Col("fx_impact", "sum", "fx")]  # fmt: skip


def build() -> dash_b.Dashboard:
    d = board("revenue", "growthwatch: Revenue",
              "MRR and its movements, the revenue waterfall, retention of revenue (NRR/GRR), "
              "ARPA, LTV and ARR, and revenue by segment (currency) and product.")  # fmt: skip
    d = d.with_variable(product_var()).with_variable(
        segment_var("revenue_daily", "currency", "Currency")
    ).with_variable(period_var())
    d = d.annotation(product_anomalies())
    d = d.link(board_link("product", "Product detail"))
    d = d.with_row(dash_b.Row("MRR"))
    d = d.with_panel(p.stat_panel(
        "ARR", "Annual run rate: MRR at the end of the range x 12, in the reporting currency.",
        [_q("mrr_daily", [Col("mrr", "last", "ARR", scale=12)])], unit=MONEY, span=6,
        change=True))  # fmt: skip
    d = d.with_panel(p.stat_panel(
        "MRR", "Monthly recurring revenue at the end of the range; change over the range.",
        [_q("mrr_daily", [Col("mrr", "last", "MRR")])], unit=MONEY, span=6))  # fmt: skip
    d = d.with_panel(p.stat_panel(
        "ARPA", "Average revenue per account: MRR / active customers at the end of the range.",
        [_q("customers_daily", [Col("arpa", "last", "ARPA")])], unit=MONEY, span=6))  # fmt: skip
    d = d.with_panel(p.stat_panel(
        "LTV", "Lifetime value: ARPA / mean monthly customer churn of the previous six complete "
        "months; missing when that churn is 0 (undefined, never infinite).",
        [_q("churn_monthly", [Col("ltv", "last", "LTV")])], unit=MONEY, span=6))  # fmt: skip
    waterfall = p.barchart_panel(
        "Revenue waterfall", "MRR movements over the whole time range: what was added (new, "
        "expansion, reactivation, FX) and lost (contraction, churn as negatives). The D3 panel "
        "draws it as a true waterfall from starting to ending MRR.",
        [Influx(select("mrr_daily", MOVEMENTS,
                       where=[tag_is("mrr_daily", "product", "$product")]), table=True)],
        unit=MONEY, span=12, horizontal=False,
        transformations=[p.organize(exclude=["Time"])])  # fmt: skip
    d = d.with_panel(p.growth_panel("waterfall", waterfall))
    d = d.with_panel(p.timeseries_panel(
        "MRR movements per bucket", "Movements per bucket (contraction and churn negative); "
        "the Interval variable sets the bucket.",
        [_q("mrr_daily", MOVEMENTS, per_period=True)], unit=MONEY, bars=True, stack=True))  # fmt: skip
    d = d.with_row(dash_b.Row("Retention of revenue"))
    targets, marked = monthly_with_marker("churn_monthly", [Col("nrr", alias="NRR"),
                                                             Col("grr", alias="GRR")])  # fmt: skip
    d = d.with_panel(p.timeseries_panel(
        "NRR and GRR (monthly)", "Net and gross revenue retention per month (1 = 100 %). The "
        "current month is partial: it is month to date.",
        targets, unit="percentunit", steps=p.NRR, show_thresholds=True, marked=marked))  # fmt: skip
    targets, marked = monthly_with_marker("churn_monthly", [Col("arpa", alias="ARPA"),
                                                             Col("ltv", alias="LTV")])  # fmt: skip
    d = d.with_panel(p.timeseries_panel(
        "ARPA and LTV (monthly)", "ARPA at each month's end and LTV from the previous six "
        "complete months' churn.", targets, unit=MONEY, marked=marked))  # fmt: skip
    d = d.with_row(dash_b.Row("By segment"))
    d = d.with_panel(p.timeseries_panel(
        "Net revenue by currency", "Net revenue per transaction currency, converted to the "
        "reporting currency (Currency variable filters).",
        [_q("revenue_daily", [Col("net_rc", "sum", "net")], per_period=True,
            extra=(tag_matches("revenue_daily", "currency", "segment"),), tags=("currency",),
            alias="$tag_currency")],
        unit=MONEY, bars=True, stack=True))  # fmt: skip
    d = d.with_panel(p.timeseries_panel(
        "Net revenue by product", "Every product's net revenue per bucket (portfolio excluded).",
        [Influx(select("revenue_daily", [Col("net_rc", "sum", "net")],
                       where=[tag_not("revenue_daily", "product", "all")], group_time="$period",
                       group_tags=["product"], fill="none"), alias="$tag_product")],
        unit=MONEY, bars=True, stack=True).data_links([product_link()]))  # fmt: skip
    return d
