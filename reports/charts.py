"""The report's charts as vector SVG, all in one style (matplotlib's SVG backend).

matplotlib because it is the best-kept plotting library in Python and writes clean SVG
without a browser; its object API (``Figure``, no pyplot) keeps every chart independent
and thread-safe inside ``growthwatch serve``. Text stays text in the SVG (``svg.fonttype
= none``) so charts are small, sharp at any zoom and searchable in the PDF. Every chart
gets its own id salt, so several SVGs inline in one HTML page never share an element id,
and the same numbers always give byte-identical SVG.
"""

from __future__ import annotations

import io
import math
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import matplotlib as mpl
import numpy as np
import pandas as pd
from matplotlib import font_manager
from matplotlib.colors import LinearSegmentedColormap
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, PercentFormatter

from reports.money import compact_money

INK = "#1b2a41"  # titles, totals
MUTED = "#6b7785"  # axes, labels
GRID = "#e3e7ec"
PRIMARY = "#24508f"  # the main series
ACCENT = "#e07b39"  # a second series on the same chart
UP = "#2e8b57"
DOWN = "#c8423b"
FONT_FAMILY = ["Inter", "DejaVu Sans", "sans-serif"]
RETENTION = LinearSegmentedColormap.from_list("retention", ["#fbeee6", "#f3f6fa", "#24508f"])
MM = 1 / 25.4  # inches per millimetre: chart sizes follow the page layout in mm

_STYLE: dict[str, Any] = {
    "svg.fonttype": "none",
    "font.family": "sans-serif",
    "font.sans-serif": FONT_FAMILY,
    "font.size": 7.5,
    "axes.edgecolor": GRID,
    "axes.labelcolor": MUTED,
    "axes.titlesize": 8.5,
    "axes.titleweight": "semibold",
    "axes.titlecolor": INK,
    "axes.titlelocation": "left",
    "axes.titlepad": 6,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.spines.left": False,
    "axes.grid": True,
    "axes.grid.axis": "y",
    "axes.axisbelow": True,
    "grid.color": GRID,
    "grid.linewidth": 0.6,
    "xtick.color": MUTED,
    "ytick.color": MUTED,
    "xtick.major.size": 0,
    "ytick.major.size": 0,
    "xtick.major.pad": 3,
    "ytick.major.pad": 3,
    "legend.frameon": False,
    "legend.fontsize": 7,
}


def available_font() -> str:
    """The first of ``FONT_FAMILY`` that is installed (the HTML uses the same list)."""
    installed = {f.name for f in font_manager.fontManager.ttflist}
    return next((f for f in FONT_FAMILY if f in installed), "sans-serif")


@contextmanager
def _figure(key: str, width_mm: float, height_mm: float) -> Iterator[tuple[Figure, io.StringIO]]:
    out = io.StringIO()
    style: Any = {**_STYLE, "svg.hashsalt": key}  # matplotlib types rc keys as literals
    with mpl.rc_context(style):
        fig = Figure(figsize=(width_mm * MM, height_mm * MM))
        yield fig, out
        fig.savefig(out, format="svg", metadata={"Date": None, "Creator": None}, transparent=True)
    out.seek(0)


def _svg(out: io.StringIO) -> str:
    text = out.getvalue()
    return text[text.index("<svg") :]  # drop the XML prolog and DOCTYPE: inlined in HTML


def _money_axis(ax: object, currency: str) -> None:
    ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: compact_money(v, currency)))  # type: ignore[attr-defined]


def mrr_trend(key: str, trend: pd.DataFrame, currency: str, size: tuple[float, float]) -> str:
    """Daily MRR over the last 13 months, the area under it lightly filled."""
    with _figure(key, *size) as (fig, out):
        ax = fig.subplots()
        ax.set_title("MRR trend")
        if len(trend):
            days = pd.to_datetime(trend["day"])
            values = trend["mrr"].astype(float).to_numpy()
            ax.plot(days, values, color=PRIMARY, linewidth=1.4)
            ax.fill_between(days, values, color=PRIMARY, alpha=0.08, linewidth=0)
            ax.scatter([days.iloc[-1]], [values[-1]], color=PRIMARY, s=10, zorder=3)
            ax.annotate(compact_money(values[-1], currency), (days.iloc[-1], values[-1]),
                        xytext=(0, 6), textcoords="offset points", ha="right", color=INK,
                        fontweight="semibold")  # fmt: skip
            low = float(np.nanmin(values))
            ax.set_ylim(bottom=max(0.0, low - (float(np.nanmax(values)) - low) * 0.25))
            ticks = pd.date_range(days.min().normalize(), days.max(), freq="MS")[::3]
            ax.set_xticks(ticks, [t.strftime("%b %y") for t in ticks])
            ax.margins(x=0.02)
        _money_axis(ax, currency)
        fig.subplots_adjust(left=0.14, right=0.97, top=0.86, bottom=0.13)
    return _svg(out)


WATERFALL_STEPS = (
    ("start", "Start", 0), ("new", "New", 1), ("expansion", "Expan-\nsion", 1),
    ("reactivation", "Reacti-\nvation", 1), ("contraction", "Contrac-\ntion", -1),
    ("churn", "Churn", -1), ("fx_impact", "FX", 1), ("end", "End", 0),
)  # fmt: skip


def waterfall(key: str, movements: Mapping[str, float], currency: str,
              size: tuple[float, float]) -> str:  # fmt: skip
    """The month's MRR bridge: start, each movement as a floating bar, end."""
    steps = [s for s in WATERFALL_STEPS if s[0] != "fx_impact" or movements.get("fx_impact")]
    with _figure(key, *size) as (fig, out):
        ax = fig.subplots()
        ax.set_title("MRR movements this month")
        level = 0.0
        top = max(movements.get("start", 0.0), movements.get("end", 0.0), 1.0)
        for i, (name, _label, sign) in enumerate(steps):
            value = float(movements.get(name, 0.0))
            if sign == 0:
                bottom, height, color = 0.0, value, INK
                level = value
                text = compact_money(value, currency)
            else:
                delta = value * sign
                bottom, height = (level, delta) if delta >= 0 else (level + delta, -delta)
                color = UP if delta >= 0 else DOWN
                level += delta
                text = ("+" if delta >= 0 else "−") + compact_money(abs(delta), currency)
            ax.bar(i, height, bottom=bottom, color=color, width=0.62)
            ax.text(i, bottom + height + top * 0.012, text, ha="center", va="bottom",
                    fontsize=6.3, color=INK)  # fmt: skip
        ax.set_xticks(range(len(steps)), [s[1] for s in steps], fontsize=6.3)
        low = min(movements.get("start", 0.0), movements.get("end", 0.0))
        ax.set_ylim(bottom=max(0.0, low * 0.75), top=top * 1.12)
        _money_axis(ax, currency)
        fig.subplots_adjust(left=0.14, right=0.99, top=0.86, bottom=0.16)
    return _svg(out)


def cohort_triangle(key: str, cohorts: pd.DataFrame, size: tuple[float, float]) -> str:
    """Revenue retention by cohort month (rows) and months since (columns), as a heatmap
    with the percentage in each cell."""
    with _figure(key, *size) as (fig, out):
        ax = fig.subplots()
        ax.set_title("Revenue retention by cohort (first paid month)")
        ax.grid(False)
        if not cohorts.empty:
            values = cohorts.to_numpy(dtype=float)
            rows, cols = values.shape
            # pcolormesh, not imshow: every cell is a vector path (imshow embeds a bitmap)
            ax.pcolormesh(np.ma.masked_invalid(values), cmap=RETENTION, vmin=0.6, vmax=1.1,
                          edgecolors="white", linewidth=0.5)  # fmt: skip
            for (r, c), v in np.ndenumerate(values):
                if not math.isnan(v):
                    ax.text(c + 0.5, r + 0.5, f"{v * 100:.0f}", ha="center", va="center",
                            fontsize=5.4, color="white" if v > 0.97 else INK)  # fmt: skip
            ax.set_xlim(0, cols)
            ax.set_ylim(rows, 0)  # the oldest cohort on top
            ax.set_yticks(np.arange(rows) + 0.5, [m.short for m in cohorts.index], fontsize=6)
            ax.set_xticks(np.arange(cols) + 0.5, [str(c) for c in cohorts.columns], fontsize=6)
            ax.set_xlabel("months since the cohort's first month (% of its starting MRR)",
                          fontsize=6)  # fmt: skip
        fig.subplots_adjust(left=0.13, right=0.99, top=0.86, bottom=0.14)
    return _svg(out)


def signups_activation(key: str, monthly: pd.DataFrame, size: tuple[float, float]) -> str:
    """Monthly signups (bars) and the activation rate of those signups (line, right axis)."""
    with _figure(key, *size) as (fig, out):
        ax = fig.subplots()
        ax.set_title("Signups and activation rate")
        x = np.arange(len(monthly))
        signups = monthly["signups"].astype(float).fillna(0).to_numpy()
        ax.bar(x, signups, color=PRIMARY, alpha=0.8, width=0.62, label="signups")
        ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:,.0f}"))
        right = ax.twinx()
        right.grid(False)
        right.spines["right"].set_visible(False)
        rate = monthly["activation_rate"].astype(float).to_numpy()
        right.plot(x, rate, color=ACCENT, linewidth=1.4, marker="o", markersize=2.2,
                   label="activation rate")  # fmt: skip
        right.yaxis.set_major_formatter(PercentFormatter(1.0, decimals=0))
        finite = rate[~np.isnan(rate)]
        if len(finite):
            span = max(float(finite.max() - finite.min()), 0.05)
            right.set_ylim(
                max(0.0, float(finite.min()) - span), min(1.0, float(finite.max()) + span)
            )
        labels = [m.short if i % 3 == 0 else "" for i, m in enumerate(monthly["month"])]
        ax.set_xticks(x, labels)
        handles = ax.get_legend_handles_labels()[0] + right.get_legend_handles_labels()[0]
        ax.legend(handles=handles, loc="upper left", ncols=2, fontsize=6.3,
                  bbox_to_anchor=(0, 1.0))  # fmt: skip
        ax.set_ylim(top=max(float(signups.max()), 1.0) * 1.25)
        fig.subplots_adjust(left=0.12, right=0.9, top=0.86, bottom=0.13)
    return _svg(out)


def mrr_by_product(key: str, rows: list[tuple[str, float, float | None]], currency: str,
                   size: tuple[float, float]) -> str:  # fmt: skip
    """Each product's MRR this month (bars) against a year ago (thin dark marks), largest
    first, with the year-over-year change written beside each bar."""
    rows = sorted(rows, key=lambda r: r[1])
    with _figure(key, *size) as (fig, out):
        ax = fig.subplots()
        ax.set_title("MRR by product: this month, and a year ago (mark)")
        ax.grid(axis="x")
        ax.grid(axis="y", visible=False)
        y = np.arange(len(rows))
        now = np.array([r[1] for r in rows], dtype=float)
        ax.barh(y, now, color=PRIMARY, height=0.6)
        top = max(float(now.max()), 1.0) if len(now) else 1.0
        for i, (_name, value, year_ago) in enumerate(rows):
            if year_ago is not None:
                ax.plot([year_ago, year_ago], [i - 0.36, i + 0.36], color=ACCENT, linewidth=1.6)
            label = compact_money(value, currency)
            if year_ago:
                change = (value / year_ago - 1) * 100
                label += f"  ({'+' if change >= 0 else '−'}{abs(change):.0f}% YoY)"
            ax.text(value + top * 0.01, i, label, va="center", fontsize=6.3, color=INK)
        ax.set_yticks(y, [r[0] for r in rows])
        ax.set_xlim(0, top * 1.25)
        ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: compact_money(v, currency)))
        fig.subplots_adjust(left=0.11, right=0.98, top=0.9, bottom=0.1)
    return _svg(out)
