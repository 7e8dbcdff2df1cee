"""What every growthwatch board shares: the dashboard frame, variables, links, annotations.

Boards link to each other through their shared tag (a "dashboards" link list that keeps
the time range and variables), and panels link to the Product detail board of the product
they show.
"""

from __future__ import annotations

from grafana_foundation_sdk.builders import dashboard as dash_b
from grafana_foundation_sdk.cog import builder as cogbuilder
from grafana_foundation_sdk.models import common, dashboard

from dashboards.queries import ANOMALIES, INFLUX, Influx, show_tag_values, tag_is, tag_matches

TAG = "growthwatch"
REFRESH = "30s"  # dashboards refresh on a short interval; Live panels move within a second
MONEY = "currencyUSD"  # the reporting currency (reporting.currency, USD by default)

GRAFANA = common.DataSourceRef(type_val="grafana", uid="-- Grafana --")

UIDS = {
    "portfolio": "gw-portfolio",
    "product": "gw-product",
    "revenue": "gw-revenue",
    "retention": "gw-retention",
    "anomalies": "gw-anomalies",
    "pipeline": "gw-pipeline",
}


def board(key: str, title: str, description: str) -> dash_b.Dashboard:
    return (
        dash_b.Dashboard(title)
        .uid(UIDS[key])
        .description(description)
        .tags([TAG])
        .timezone("utc")
        .refresh(REFRESH)
        .time("now-90d", "now")
        .timepicker(dash_b.TimePicker().refresh_intervals(["5s", "10s", "30s", "1m", "5m", "15m", "1h"]))
        .tooltip(dashboard.DashboardCursorSync.CROSSHAIR)
        .readonly()
        .link(
            dash_b.DashboardLink("growthwatch boards")
            .type(dashboard.DashboardLinkType.DASHBOARDS)
            .tags([TAG])
            .as_dropdown(True)
            .include_vars(True)
            .keep_time(True)
        )
    )  # fmt: skip


def product_link(title: str = "Product detail") -> dash_b.DashboardLink:
    """A data link to the Product detail board of the series' product."""
    return (
        dash_b.DashboardLink(title)
        .type(dashboard.DashboardLinkType.LINK)
        .url(f"/d/{UIDS['product']}?var-product=${{__field.labels.product}}&${{__url_time_range}}")
    )


def board_link(key: str, title: str) -> dash_b.DashboardLink:
    return (
        dash_b.DashboardLink(title)
        .type(dashboard.DashboardLinkType.LINK)
        .url(f"/d/{UIDS[key]}?${{__url_time_range}}&${{__all_variables}}")
    )


def product_var(*, include_all_option: bool = False) -> dash_b.QueryVariable:
    """``$product``: a product id, or ``all`` for the whole portfolio (a real tag value).

    With ``include_all_option`` it is a multi-value variable for regex filters (All = ``.*``).
    """
    var = (
        dash_b.QueryVariable("product")
        .label("Product")
        .description("Product id; 'all' is the whole portfolio in the reporting currency")
        .datasource(INFLUX)
        .query(show_tag_values("mrr_daily", "product"))
        .refresh(dashboard.VariableRefresh.ON_DASHBOARD_LOAD)
        .sort(dashboard.VariableSort.ALPHABETICAL_ASC)
        .current(dashboard.VariableOption(text="all", value="all", selected=True))
    )
    if include_all_option:
        var = var.include_all(True).all_value(".*").multi(True)
    return var


def segment_var(measurement: str, tag: str, label: str, *, product_scoped: bool = True) -> dash_b.QueryVariable:  # fmt: skip
    """``$segment``: a value of ``tag`` (currency, channel, anomaly segment); All = ``.*``."""
    where = tag_matches(measurement, "product", "product") if product_scoped else ""
    return (
        dash_b.QueryVariable("segment")
        .label(label)
        .description(f"Segment: {tag} of {measurement} (All: every {tag})")
        .datasource(INFLUX)
        .query(show_tag_values(measurement, tag, where))
        .refresh(dashboard.VariableRefresh.ON_TIME_RANGE_CHANGED)
        .include_all(True)
        .all_value(".*")
        .multi(True)
        .current(dashboard.VariableOption(text="All", value="$__all", selected=True))
    )


def period_var() -> dash_b.IntervalVariable:
    """``$period``: the bucket of aggregated panels (named so, not ``interval``, because
    ``$interval`` is Grafana's own alias of ``$__interval``)."""
    return (
        dash_b.IntervalVariable("period")
        .label("Interval")
        .description("Bucket of aggregated panels (sums and means per day, week or month)")
        .values("1d,7d,30d")
        .current(dashboard.VariableOption(text="1d", value="1d", selected=True))
    )


def anomaly_annotation(product_filter: str) -> dash_b.AnnotationQuery:
    """Anomalies (the detector's state transitions) as annotations on every time panel."""
    where = [product_filter] if product_filter else []
    q = (
        'SELECT "explanation" AS "text", "state", "severity", "metric" FROM "anomalies" WHERE '
        + " AND ".join([*where, "$timeFilter"])
    )
    mapping: dict[str, cogbuilder.Builder[dashboard.AnnotationEventFieldMapping]] = {
        "text": dash_b.AnnotationEventFieldMapping().source(dashboard.AnnotationEventFieldSource.FIELD).value("text"),
        "tags": dash_b.AnnotationEventFieldMapping().source(dashboard.AnnotationEventFieldSource.FIELD).value("metric"),
    }  # fmt: skip
    return (
        dash_b.AnnotationQuery()
        .name("Anomalies")
        .datasource(INFLUX)
        .enable(True)
        .icon_color("red")
        .target(Influx(q, ref_id="Anno", table=True))
        .mappings(mapping)
    )


def product_anomalies() -> dash_b.AnnotationQuery:
    return anomaly_annotation(tag_is(ANOMALIES, "product", "$product"))


def detector_annotations() -> dash_b.AnnotationQuery:
    """Annotations the detector posts to Grafana's own store (tagged ``growthwatch``)."""
    q = (
        dash_b.AnnotationQuery()
        .name("Detector notes")
        .datasource(GRAFANA)
        .enable(True)
        .icon_color("orange")
    )
    q._internal.target = {"type": "tags", "tags": [TAG], "limit": 100, "matchAny": True}  # type: ignore[assignment]
    return q
