"""Panel helpers: every growthwatch panel is made here, so units, thresholds, descriptions,
links and the partial/maturing markers are the same on every board.

Each helper takes a ``description`` (required: Grafana shows it as the panel's (i) tooltip
and ``tests/dashboards`` checks that no panel lacks one) and returns an SDK builder.

``growth_panel`` is the switch to the D3 panel plugin (``growthwatch-growth-panel``): the
cohort, funnel and waterfall panels are built-in panels today; passing ``plugin=True`` at
the call site turns that one panel into the plugin with the same queries and options.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from grafana_foundation_sdk.builders import barchart, heatmap, stat, table, text, timeseries
from grafana_foundation_sdk.builders import common as common_b
from grafana_foundation_sdk.builders import dashboard as dash_b
from grafana_foundation_sdk.cog import builder as cogbuilder
from grafana_foundation_sdk.cog import variants as cogvariants
from grafana_foundation_sdk.models import common, dashboard
from grafana_foundation_sdk.models import heatmap as heatmap_m

from dashboards.queries import Influx

GROWTH_PANEL_PLUGIN = "growthwatch-growth-panel"
Target = cogbuilder.Builder[cogvariants.Dataquery]
Steps = Sequence[tuple[float | None, str]]

# Threshold presets (value, colour); None is the base step.
GOOD_UP: Steps = ((None, "red"), (0, "green"))
CHURN_RATE: Steps = ((None, "green"), (0.02, "orange"), (0.05, "red"))  # monthly customer churn
DAILY_CHURN: Steps = ((None, "green"), (0.002, "orange"), (0.005, "red"))
NRR: Steps = ((None, "red"), (0.9, "orange"), (1.0, "green"))
ACTIVATION: Steps = ((None, "red"), (0.2, "orange"), (0.4, "green"))
NEUTRAL: Steps = ((None, "blue"),)
OPEN_ALERTS: Steps = ((None, "green"), (1, "orange"), (3, "red"))
LAG_SECONDS: Steps = ((None, "green"), (900, "orange"), (3600, "red"))
ERRORS: Steps = ((None, "green"), (0.01, "orange"), (1, "red"))
SPOOL: Steps = ((None, "green"), (1, "orange"), (100_000, "red"))
STICKINESS: Steps = ((None, "red"), (0.1, "orange"), (0.2, "green"))


def thresholds(steps: Steps) -> dash_b.ThresholdsConfig:
    return (
        dash_b.ThresholdsConfig()
        .mode(dashboard.ThresholdsMode.ABSOLUTE)
        .steps([dashboard.Threshold(value=v, color=c) for v, c in steps])
    )


def _common(panel: Any, title: str, description: str, targets: Sequence[Target], unit: str,
            steps: Steps, span: int, height: int) -> Any:  # fmt: skip
    if not description.strip():
        raise ValueError(f"panel {title!r}: every panel needs a description")
    return (
        panel.title(title)
        .description(description)
        .targets(list(targets))
        .unit(unit)
        .thresholds(thresholds(steps))
        .span(span)
        .height(height)
    )


def timeseries_panel(
    title: str,
    description: str,
    targets: Sequence[Target],
    *,
    unit: str = "short",
    steps: Steps = NEUTRAL,
    span: int = 12,
    height: int = 8,
    bars: bool = False,
    stack: bool = False,
    show_thresholds: bool = False,
    marked: Sequence[str] = (),
) -> timeseries.Panel:
    """A time series; ``marked`` names series (aliases) drawn dashed with points: the
    partial period or maturing cohorts that will still change."""
    panel = _common(timeseries.Panel(), title, description, targets, unit, steps, span, height)
    panel = panel.line_width(2).fill_opacity(10 if not bars else 80).span_nulls(False)
    if bars:
        panel = panel.draw_style(common.GraphDrawStyle.BARS)
    if stack:
        panel = panel.stacking(common_b.StackingConfig().mode(common.StackingMode.NORMAL))
    if show_thresholds:
        panel = panel.thresholds_style(
            common_b.GraphThresholdsStyleConfig().mode(common.GraphThresholdsStyleMode.DASHED)
        )
    if marked:
        panel = panel.overrides([by_names(marked, {
            "custom.lineStyle": {"fill": "dash", "dash": [6, 4]},
            "color": {"mode": "fixed", "fixedColor": "orange"},
        })])  # fmt: skip
    return panel.legend(
        common_b.VizLegendOptions().show_legend(True).display_mode(common.LegendDisplayMode.LIST)
        .placement(common.LegendPlacement.BOTTOM)
    )  # fmt: skip


def stat_panel(
    title: str,
    description: str,
    targets: Sequence[Target],
    *,
    unit: str = "short",
    steps: Steps = NEUTRAL,
    span: int = 24,
    height: int = 5,
    sparkline: bool = True,
    change: bool = True,
    reducer: str = "lastNotNull",
) -> stat.Panel:
    """Big numbers, one per series; ``change`` shows the change over the time range
    (period over period) and ``sparkline`` the series behind it."""
    panel = _common(stat.Panel(), title, description, targets, unit, steps, span, height)
    return (
        panel.graph_mode(common.BigValueGraphMode.AREA if sparkline else common.BigValueGraphMode.NONE)
        .color_mode(common.BigValueColorMode.VALUE)
        .show_percent_change(change)
        .reduce_options(common_b.ReduceDataOptions().calcs([reducer]).values(False))
        .text_mode(common.BigValueTextMode.VALUE_AND_NAME)
    )  # fmt: skip


def table_panel(
    title: str,
    description: str,
    targets: Sequence[Target],
    *,
    unit: str = "short",
    steps: Steps = NEUTRAL,
    span: int = 24,
    height: int = 8,
    transformations: Sequence[dashboard.DataTransformerConfig] = (),
    colored: dict[str, Steps] | None = None,
    mappings: Sequence[dashboard.ValueMapping] = (),
) -> table.Panel:
    panel = _common(table.Panel(), title, description, targets, unit, steps, span, height)
    for t in transformations:
        panel = panel.with_transformation(t)
    if mappings:  # text values (severity, state): mapping them applies to their cells only
        panel = panel.mappings(list(mappings))
    panel = panel.overrides([
        by_names([name], {"thresholds": thresholds(s).build().to_json(),
                          "custom.cellOptions": {"type": "color-text"}})
        for name, s in (colored or {}).items()
    ])  # fmt: skip
    return panel


def by_names(names: Sequence[str], values: dict[str, dict[str, Any]]) -> dash_b.DashboardFieldConfigSourceOverrides:  # fmt: skip
    """An override for the fields ``names``. Grafana's dashboard schema types matcher
    options and property values as objects, so only the object-valued matcher (``byNames``)
    and object-valued properties are used: the committed JSON validates and Grafana reads
    it the same."""
    return (
        dash_b.DashboardFieldConfigSourceOverrides()
        .matcher(dashboard.MatcherConfig(id_val="byNames",
                                         options={"mode": "include", "names": list(names)}))
        .properties([dashboard.DynamicConfigValue(id_val=k, value=v) for k, v in values.items()])
    )  # fmt: skip


def heatmap_panel(
    title: str, description: str, targets: Sequence[Target], *, unit: str = "percentunit",
    span: int = 24, height: int = 10,
) -> heatmap.Panel:  # fmt: skip
    """Cells as they come (no bucketing): one row per series (cohort age), one column per
    time (cohort month)."""
    panel = _common(heatmap.Panel(), title, description, targets, unit, NEUTRAL, span, height)
    return (
        panel.calculate(False)
        .cell_values(heatmap.CellValues().unit(unit))
        .show_value(common.VisibilityMode.AUTO)
        .color(heatmap.HeatmapColorOptions().mode(heatmap_m.HeatmapColorMode.SCHEME)
               .scheme("RdYlGn").steps(64))
    )  # fmt: skip


def barchart_panel(
    title: str, description: str, targets: Sequence[Target], *, unit: str = "short",
    steps: Steps = NEUTRAL, span: int = 12, height: int = 8, stack: bool = False,
    horizontal: bool = False, transformations: Sequence[dashboard.DataTransformerConfig] = (),
) -> barchart.Panel:  # fmt: skip
    panel = _common(barchart.Panel(), title, description, targets, unit, steps, span, height)
    panel = panel.show_value(common.VisibilityMode.AUTO)
    if stack:
        panel = panel.stacking(common.StackingMode.NORMAL)
    if horizontal:
        panel = panel.orientation(common.VizOrientation.HORIZONTAL)
    for t in transformations:
        panel = panel.with_transformation(t)
    return panel


def text_panel(title: str, description: str, markdown: str, *, span: int = 24,
               height: int = 3) -> text.Panel:  # fmt: skip
    if not description.strip():
        raise ValueError(f"panel {title!r}: every panel needs a description")
    return text.Panel().title(title).description(description).content(markdown).span(span).height(height)


# The D3 panel's own word on what it reads: panel-plugin/queries.json holds, per
# visualisation, its options and the exact InfluxQL targets its parsers are tested on
# (recorded from a real InfluxDB), so the boards and the plugin cannot drift apart.
PLUGIN_QUERIES = Path(__file__).resolve().parents[1] / "panel-plugin" / "queries.json"
_VISUALISATION = {"cohort": "cohort-heatmap", "funnel": "funnel", "waterfall": "waterfall"}


def plugin_spec(kind: str) -> dict[str, Any]:
    """Options and targets of one visualisation of the growth panel (``kind``: cohort,
    funnel or waterfall)."""
    spec = json.loads(PLUGIN_QUERIES.read_text())
    if spec["pluginId"] != GROWTH_PANEL_PLUGIN:
        raise ValueError(f"{PLUGIN_QUERIES}: plugin id {spec['pluginId']!r} is not "
                         f"{GROWTH_PANEL_PLUGIN!r}")  # fmt: skip
    return dict(spec["visualisations"][_VISUALISATION[kind]])


class _PluginPanel(cogbuilder.Builder[dashboard.Panel]):
    def __init__(self, built: dashboard.Panel, kind: str) -> None:
        spec = plugin_spec(kind)
        built.type_val = GROWTH_PANEL_PLUGIN
        built.options = dict(spec["options"])
        built.plugin_version = None
        built.targets = [Influx(t["query"], ref_id=t["refId"],
                                table=t.get("resultFormat") == "table").build()
                         for t in spec["targets"]]  # fmt: skip
        self._panel = built

    def build(self) -> dashboard.Panel:
        return self._panel


def growth_panel(kind: str, builtin: cogbuilder.Builder[dashboard.Panel], *,
                 plugin: bool = True) -> cogbuilder.Builder[dashboard.Panel]:  # fmt: skip
    """The D3 growth panel (``kind``: cohort, funnel or waterfall) with the targets and
    options of ``panel-plugin/queries.json``, keeping the title, description and layout
    of ``builtin``; ``plugin=False`` keeps the built-in panel (a Grafana without the
    plugin installed)."""
    return _PluginPanel(builtin.build(), kind) if plugin else builtin


def organize(rename: dict[str, str] | None = None, exclude: Sequence[str] = (),
             order: Sequence[str] = ()) -> dashboard.DataTransformerConfig:  # fmt: skip
    return dashboard.DataTransformerConfig(id_val="organize", options={
        "renameByName": rename or {}, "excludeByName": {n: True for n in exclude},
        "indexByName": {n: i for i, n in enumerate(order)},
    })  # fmt: skip


def merge() -> dashboard.DataTransformerConfig:
    return dashboard.DataTransformerConfig(id_val="merge", options={})


def keep_rows(field: str, value: float) -> dashboard.DataTransformerConfig:
    """Only rows whose ``field`` equals ``value`` (e.g. open = 1)."""
    return dashboard.DataTransformerConfig(id_val="filterByValue", options={
        "type": "include", "match": "any",
        "filters": [{"fieldName": field,
                     "config": {"id": "equal", "options": {"value": value}}}],
    })  # fmt: skip


def text_map(pairs: dict[str, tuple[str, str]]) -> list[dashboard.ValueMapping]:
    """Value -> (display text, colour), e.g. severity critical -> red."""
    return [
        dashboard.ValueMap(options={
            k: dashboard.ValueMappingResult(text=t, color=c, index=i)
            for i, (k, (t, c)) in enumerate(pairs.items())
        })
    ]  # fmt: skip
