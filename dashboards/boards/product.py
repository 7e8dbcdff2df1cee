"""Product detail: one product (or the portfolio, 'all'), anomalies as annotations."""

from __future__ import annotations

from collections.abc import Sequence

from grafana_foundation_sdk.builders import dashboard as dash_b

from dashboards import panels as p
from dashboards.common import (
    MONEY,
    board,
    board_link,
    detector_annotations,
    period_var,
    product_anomalies,
    product_var,
    segment_var,
)  # fmt: skip
from dashboards.live import STREAM
from dashboards.queries import (
    Col,
    Influx,
    Live,
    marker_field,
    marker_set,
    select,
    tag_is,
    tag_matches,
    tag_not,
)

FILE = "product-detail.json"


def _q(measurement: str, cols: Sequence[Col | str], *, per_period: bool = False,
       extra: tuple[str, ...] = (), tags: tuple[str, ...] = (), ref: str = "A",
       alias: str = "") -> Influx:  # fmt: skip
    q = select(measurement, cols, where=[tag_is(measurement, "product", "$product"), *extra],
               group_time="$period" if per_period else None, group_tags=list(tags),
               fill="none" if per_period else None)  # fmt: skip
    return Influx(q, ref_id=ref, alias=alias)


def monthly_with_marker(measurement: str, cols: list[Col]) -> tuple[list[Influx], list[str]]:
    """A monthly query plus, when the schema has the flag, the partial months marked."""
    targets = [_q(measurement, list(cols))]
    marker = marker_field(measurement)
    marked: list[str] = []
    if marker:
        partial = [Col(c.field, c.fn, f"{c.alias or c.field} ({marker})") for c in cols]
        targets.append(_q(measurement, list(partial), extra=(marker_set(marker),), ref="B"))
        marked = [f"{c.alias or c.field} ({marker})" for c in cols]
    return targets, marked


def build() -> dash_b.Dashboard:
    d = board("product", "growthwatch: Product detail",
              "One product (or the portfolio: product 'all'): revenue, MRR, customers, churn, "
              "engagement and traffic; the detector's anomalies are annotations.")  # fmt: skip
    d = d.with_variable(product_var()).with_variable(
        segment_var("traffic_daily", "channel", "Channel")
    ).with_variable(period_var())
    d = d.annotation(product_anomalies()).annotation(detector_annotations())
    d = d.link(board_link("revenue", "Revenue of this product")).link(
        board_link("retention", "Retention and funnels of this product")
    )
    d = d.with_row(dash_b.Row("Live"))
    d = d.with_panel(p.timeseries_panel(
        "Live: customers and cancellations", "Points pushed to Grafana Live by growthwatch serve "
        "as each webhook's update is written (every product; within a second, without waiting "
        "for the refresh). Empty when grafana.live is off or no update happened since opening.",
        [Live(STREAM, "customers_daily", ["active", "cancellations"])], span=24, height=6))  # fmt: skip
    d = d.with_row(dash_b.Row("Revenue and MRR"))
    d = d.with_panel(p.timeseries_panel(
        "Net revenue", "Gross payments minus refunds per bucket in the reporting currency "
        "(failed payments are not revenue and are shown separately).",
        [_q("revenue_daily", [Col("net_rc", "sum", "net"), Col("gross_rc", "sum", "gross"),
                              Col("refunds_rc", "sum", "refunds")], per_period=True)],
        unit=MONEY, bars=True))  # fmt: skip
    d = d.with_panel(p.timeseries_panel(
        "MRR", "Monthly recurring revenue at the end of each day (state of every subscription, "
        "normalised to a month), in the reporting currency.",
        [_q("mrr_daily", [Col("mrr")])], unit=MONEY))  # fmt: skip
    d = d.with_panel(p.timeseries_panel(
        "MRR movements", "New, expansion and reactivation MRR up; contraction and churn down "
        "(negative); FX impact of renewals at a new rate. Identity: net change = their sum.",
        [_q("mrr_daily", [Col("new", "sum"), Col("expansion", "sum"),
                          Col("reactivation", "sum"), Col("contraction", "sum", scale=-1),
                          Col("churn", "sum", scale=-1), Col("fx_impact", "sum", "fx")],
            per_period=True)],
        unit=MONEY, bars=True, stack=True, span=24))  # fmt: skip
    d = d.with_row(dash_b.Row("Customers and churn"))
    d = d.with_panel(p.timeseries_panel(
        "Customers", "Active customers (MRR > 0) at the end of each day, new and churned "
        "customers per day.",
        [_q("customers_daily", [Col("active"), Col("new"), Col("churned")])]))  # fmt: skip
    d = d.with_panel(p.timeseries_panel(
        "Daily customer churn rate", "Customers active at a day's start who churned that day / "
        "customers active at its start; gaps are days without customers (undefined).",
        [_q("customers_daily", [Col("churn_rate")])], unit="percentunit",
        steps=p.DAILY_CHURN, show_thresholds=True))  # fmt: skip
    targets, marked = monthly_with_marker(
        "churn_monthly", [Col("customer_churn_rate", alias="customer churn"),
                          Col("gross_mrr_churn_rate", alias="gross MRR churn")])  # fmt: skip
    d = d.with_panel(p.timeseries_panel(
        "Monthly churn", "Customer churn and gross MRR churn per month. The current month is "
        "partial (month to date) and drawn dashed when the series marks it.",
        targets, unit="percentunit", steps=p.CHURN_RATE, show_thresholds=True, marked=marked,
        span=24))  # fmt: skip
    d = d.with_row(dash_b.Row("Engagement"))
    d = d.with_panel(p.timeseries_panel(
        "DAU / WAU / MAU", "Distinct users active in the rolling 1, 7 and 30 days ending each day.",
        [_q("product_daily", [Col("dau"), Col("wau"), Col("mau")])]))  # fmt: skip
    d = d.with_panel(p.timeseries_panel(
        "Stickiness", "DAU / MAU: the share of the month's users who come back on a given day.",
        [_q("product_daily", [Col("stickiness")])], unit="percentunit", steps=p.STICKINESS,
        show_thresholds=True))  # fmt: skip
    d = d.with_row(dash_b.Row("Traffic by channel"))
    traffic = [tag_not("traffic_daily", "channel", "all"),
               tag_matches("traffic_daily", "channel", "segment")]  # fmt: skip
    d = d.with_panel(p.timeseries_panel(
        "Sessions by channel", "Sessions per bucket and acquisition channel (the Channel "
        "variable filters).",
        [_q("traffic_daily", [Col("sessions", "sum", "sessions")], per_period=True,
            extra=tuple(traffic), tags=("channel",), alias="$tag_channel")],
        bars=True, stack=True))  # fmt: skip
    d = d.with_panel(p.timeseries_panel(
        "Signup conversion by channel", "Signups / sessions of the same product, channel and day.",
        [_q("traffic_daily", [Col("conversion")], extra=tuple(traffic), tags=("channel",),
            alias="$tag_channel")],
        unit="percentunit"))  # fmt: skip
    return d
