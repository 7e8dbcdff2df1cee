"""Portfolio overview: every product side by side, open anomalies on top."""

from __future__ import annotations

from grafana_foundation_sdk.builders import dashboard as dash_b

from dashboards import anomaly_queries as aq
from dashboards import panels as p
from dashboards.common import MONEY, UIDS, board, board_link, product_link
from dashboards.queries import Col, Influx, marker_field, marker_set, select

FILE = "portfolio-overview.json"
SPARK_POINTS = 60


def _by_product(measurement: str, col: Col, *, per_period: bool = True) -> Influx:
    """Sparkline buckets follow the range (``$__interval``, at least a day, ~60 per panel):
    over two years a stat reads weeks, not 730 days per product."""
    q = select(measurement, [col], group_time="$__interval" if per_period else None,
               group_tags=["product"], fill="none" if per_period else None)  # fmt: skip
    return Influx(q, alias="$tag_product")


def build() -> dash_b.Dashboard:
    d = board("portfolio", "growthwatch: Portfolio overview",
              "Every product side by side; the portfolio is the product 'all'.")  # fmt: skip
    d = d.with_row(dash_b.Row("Open anomalies"))
    d = d.with_panel(
        p.stat_panel(
            "Open anomalies", "Incidents the detector has open now (last transition open or "
            "escalated), by product. Details on the Anomalies board.",
            [Influx(aq.open_count(by=["product"]), alias="$tag_product")],
            steps=p.OPEN_ALERTS, span=8, height=6, sparkline=False, change=False,
        ).no_value("0").links([board_link("anomalies", "Anomalies board")])
    )  # fmt: skip
    d = d.with_panel(
        p.table_panel(
            "Open anomalies: what and why", "Each open incident's latest state, severity, "
            "observed vs expected value and the detector's explanation.",
            [Influx(aq.latest_state(), table=True)],
            span=16, height=6,
            transformations=[p.merge(), p.keep_rows("open", 1),
                             p.organize(exclude=["open", "started_ms", "Time"])],
            colored={"score": ((None, "green"), (0.5, "orange"), (0.8, "red"))},
            mappings=p.text_map({"critical": ("critical", "red"), "warning": ("warning", "orange")}),
        )
    )  # fmt: skip
    rows = (
        ("MRR", "mrr_daily", Col("mrr", "last", "mrr"), MONEY, p.NEUTRAL, "lastNotNull",
         "Monthly recurring revenue at the end of each bucket, in the reporting currency; the "
         "change is over the time range."),
        ("Net revenue", "revenue_daily", Col("net_rc", "sum", "net revenue"), MONEY, p.GOOD_UP,
         "sum", "Payments minus refunds (refunds on the day they happen) in the reporting "
         "currency, summed over the time range."),
        ("Active customers", "customers_daily", Col("active", "last", "active"), "short",
         p.NEUTRAL, "lastNotNull", "Customers with MRR > 0 at the end of each bucket."),
        ("Customer churn rate (monthly)", "churn_monthly", Col("customer_churn_rate"),
         "percentunit", p.CHURN_RATE, "lastNotNull", "Customers active at a month's start who "
         "churned in it / customers active at its start. The current month is partial."),
        ("NRR (monthly)", "churn_monthly", Col("nrr"), "percentunit", p.NRR, "lastNotNull",
         "Net revenue retention of the month: 1 - (churn + contraction - expansion - "
         "reactivation) / MRR at start. The current month is partial."),
        ("Signups", "product_daily", Col("signups", "sum", "signups"), "short", p.NEUTRAL, "sum",
         "Distinct users who signed up, summed over the time range."),
        ("Activation rate", "product_daily", Col("activation_rate", "mean", "activation rate"),
         "percentunit", p.ACTIVATION, "mean", "Share of each day's signups activated within "
         "the activation window; the last window's cohorts are still maturing."),
    )  # fmt: skip
    for title, measurement, col, unit, steps, reducer, description in rows:
        monthly = measurement.startswith("churn_")
        targets = [_by_product(measurement, col, per_period=not monthly)]
        marker = marker_field(measurement)
        if marker:  # partial months / maturing cohorts: their own, marked series
            q = select(measurement, [col], where=[marker_set(marker)],
                       group_tags=["product"])  # fmt: skip
            targets.append(Influx(q, ref_id="B", alias=f"$tag_product ({marker})"))
        d = d.with_row(dash_b.Row(title))
        d = d.with_panel(
            p.stat_panel(title, description + " Click a product for its detail board.",
                         targets, unit=unit, steps=steps, reducer=reducer, height=5)
            .data_links([product_link()]).interval("1d").max_data_points(SPARK_POINTS)
        )  # fmt: skip
    return d


__all__ = ["FILE", "UIDS", "build"]
