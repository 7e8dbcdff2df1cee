"""Retention and funnels: cohorts, funnel conversion and branches, activation.

Built-in panels first (heatmap, bar chart, table); each one goes through
``panels.growth_panel``: the D3 growth panel (``plugin=False`` at a call keeps the built-in one).
"""

from __future__ import annotations

from grafana_foundation_sdk.builders import dashboard as dash_b
from grafana_foundation_sdk.cog import builder as cogbuilder
from grafana_foundation_sdk.models import dashboard

from dashboards import panels as p
from dashboards.boards.product import _q
from dashboards.common import INFLUX, board, board_link, period_var, product_anomalies, product_var
from dashboards.queries import (
    Col,
    Influx,
    marker_field,
    marker_set,
    select,
    show_tag_values,
    tag_is,
)

FILE = "retention-funnels.json"


def funnel_var() -> dash_b.QueryVariable:
    return (
        dash_b.QueryVariable("funnel")
        .label("Funnel")
        .description("A funnel of metrics.funnels")
        .datasource(INFLUX)
        .query(show_tag_values("funnel_steps", "funnel", tag_is("funnel_steps", "product", "$product")))
        .refresh(dashboard.VariableRefresh.ON_TIME_RANGE_CHANGED)
    )  # fmt: skip


def _cohort(basis: str, title: str, description: str) -> cogbuilder.Builder[dashboard.Panel]:
    q = select("cohort_retention", [Col("rate", alias="retention")],
               where=[tag_is("cohort_retention", "product", "$product"),
                      tag_is("cohort_retention", "basis", basis)], group_tags=["age"])  # fmt: skip
    heat = p.heatmap_panel(title, description, [Influx(q, alias="month $tag_age")], span=12)
    return p.growth_panel("cohort", heat)


def build() -> dash_b.Dashboard:
    d = board("retention", "growthwatch: Retention and funnels",
              "Logo and revenue cohort retention, funnel conversion with where users went "
              "instead, and activation of signup cohorts.")  # fmt: skip
    d = d.with_variable(product_var()).with_variable(funnel_var()).with_variable(period_var())
    d = d.annotation(product_anomalies())
    d = d.link(board_link("product", "Product detail"))
    d = d.with_row(dash_b.Row("Cohorts"))
    d = d.with_panel(_cohort(
        "logo", "Logo retention by signup cohort", "Share of each signup month's users active "
        "in month k after it (column: cohort month, row: age k). The youngest cohorts are "
        "still maturing: their latest age is the current, partial month."))  # fmt: skip
    d = d.with_panel(_cohort(
        "revenue", "Revenue retention by paying cohort", "Each first-paid month's MRR at the "
        "end of month k / its MRR at the end of the cohort month; above 100 % is expansion. "
        "The latest age of every cohort is the current, partial month."))  # fmt: skip
    d = d.with_panel(p.table_panel(
        "Cohort sizes", "Members and still-retained members per cohort month and age (the rates are in the heatmaps above).",
        [Influx(select("cohort_retention", [Col("cohort_size"), Col("retained")],
                       where=[tag_is("cohort_retention", "product", "$product"),
                              tag_is("cohort_retention", "basis", "logo")],
                       group_tags=["age"]), table=True)],
        height=8))  # fmt: skip
    d = d.with_row(dash_b.Row("Funnels"))
    funnel_where = [tag_is("funnel_steps", "product", "$product"),
                    tag_is("funnel_steps", "funnel", "$funnel")]  # fmt: skip
    bars = p.barchart_panel(
        "Funnel (entries in the time range)", "Users reaching each step, of those who entered "
        "the funnel in the time range (a user counts once, at their first entry).",
        [Influx(select("funnel_steps", [Col("users", "sum", "users")], where=funnel_where,
                       group_tags=["step"]), table=True)],
        span=12, transformations=[p.organize(exclude=["Time"])])  # fmt: skip
    d = d.with_panel(p.growth_panel("funnel", bars))
    d = d.with_panel(p.timeseries_panel(
        "Conversion from step 1 by entry month", "Share of each entry month's users who reached "
        "each step within the funnel window; the latest months are still maturing.",
        [Influx(select("funnel_steps", [Col("conversion")], where=funnel_where,
                       group_tags=["step"]), alias="$tag_step")],
        unit="percentunit", span=12))  # fmt: skip
    d = d.with_panel(p.table_panel(
        "Where users went instead", "For users who reached a step but not the next one: their "
        "first other event within the window ('(none)': nothing).",
        [Influx(select("funnel_branches", [Col("users", "sum", "users")],
                       where=[tag_is("funnel_branches", "product", "$product"),
                              tag_is("funnel_branches", "funnel", "$funnel")],
                       group_tags=["step", "next"]), table=True)],
        transformations=[p.organize(exclude=["Time"])]))  # fmt: skip
    d = d.with_row(dash_b.Row("Activation"))
    marker = marker_field("product_daily")
    targets = [_q("product_daily", [Col("activation_rate", "mean", "activation rate")], per_period=True)]
    marked: list[str] = []
    if marker:  # maturing signup cohorts: their own, marked series
        targets.append(_q("product_daily", [Col("activation_rate", "mean", "maturing")],
                          per_period=True, extra=(marker_set(marker),), ref="B"))  # fmt: skip
        marked = ["maturing"]
    d = d.with_panel(p.timeseries_panel(
        "Activation rate of signup cohorts", "Share of each day's signups who activated within "
        "the activation window (metrics.activation_window_days). The last window's cohorts are "
        "still maturing and rise as activations arrive.",
        targets, unit="percentunit", steps=p.ACTIVATION, show_thresholds=True, marked=marked,
        span=24))  # fmt: skip
    return d
