"""collect -> render -> files: what the CLI, the demo, the service and the benchmark run."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path

from growthwatch import SeriesReader
from reports.collect import ReportData, collect
from reports.period import Month
from reports.render import render_html, render_pdf


@dataclass(frozen=True)
class BuiltReport:
    data: ReportData
    pdf: Path | None
    html: Path | None


def default_pdf_path(data_dir: Path, month: Month) -> Path:
    return data_dir / "reports" / f"board-report-{month}.pdf"


def build_report(
    reader: SeriesReader,
    month: Month,
    *,
    now: datetime,
    pdf: Path | None,
    html: Path | None = None,
    currency: str = "USD",
    timezone: str = "UTC",
    products: Sequence[str] | None = None,
    names: Mapping[str, str] | None = None,
    activation_window_days: int = 7,
) -> BuiltReport:
    """Write the PDF (and, if asked, the HTML) of ``month``; files appear atomically."""
    data = collect(reader, month, now=now, currency=currency, timezone=timezone,
                   products=products, names=names,
                   activation_window_days=activation_window_days)  # fmt: skip
    text = render_html(data)
    if html is not None:
        _atomic_write(html, text.encode())
    if pdf is not None:
        _atomic_write(pdf, render_pdf(text))
    return BuiltReport(data, pdf, html)


def _atomic_write(path: Path, content: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(content)
    tmp.replace(path)


def product_names(data_dir: Path, config_names: Mapping[str, str] | None = None) -> dict[str, str]:
    """Display names: the config's ``products[].name``, else the demo's ``products.json``."""
    import json

    names: dict[str, str] = {}
    catalog = data_dir / "products.json"
    if catalog.exists():
        try:
            for item in json.loads(catalog.read_text()):
                if isinstance(item, dict) and "id" in item:
                    names[str(item["id"])] = str(item.get("name") or item["id"])
        except (ValueError, OSError):
            pass
    names.update(config_names or {})
    return names


def demo_report(data_dir: Path, end: date) -> str:
    """``growthwatch demo``'s last step: the report of the last complete month of the demo
    (the month before its exclusive ``end``), made as of ``end`` so the month is closed.
    Returns the line the demo prints (where the files are, or why there are none)."""
    from growthwatch import SeriesStore
    from reports.collect import CollectError

    month = Month.of(end - timedelta(days=1))
    pdf = default_pdf_path(data_dir, month)
    store = SeriesStore(data_dir / "series.duckdb")
    try:
        build_report(
            store, month, now=datetime.combine(end, time(0), UTC), pdf=pdf,
            html=pdf.with_suffix(".html"), names=product_names(data_dir),
        )  # fmt: skip
    except CollectError as exc:
        return f"report not written: {exc}"
    except OSError as exc:  # WeasyPrint could not load pango (scripts/install installs it)
        return f"report not written: the PDF renderer cannot start ({exc})"
    finally:
        store.close()
    return f"report written to {pdf} (and .html)"
