"""Collect the board report's numbers from any ``SeriesReader`` (pure: no files, no clock).

Everything the report prints comes from here, read through the store interface only, so
the report is the same on the embedded ``SeriesStore`` and on InfluxDB. The measurements
(see docs/metrics.md) and what each KPI is:

| KPI | source |
| --- | --- |
| MRR, customers, customer churn, revenue churn (gross MRR churn), NRR, ARPA, movements | ``churn_monthly`` (the engine's monthly row) |
| net revenue | sum of ``revenue_daily.net_rc`` over the month's days (reporting currency), and ``net`` in the billing currency |
| signups, activation rate | sum of ``product_daily.signups``; sum of ``activated`` / sum of signups |
| MRR trend | ``mrr_daily.mrr`` |
| cohort triangle | ``cohort_retention`` with ``basis = revenue`` |
| anomalies | the detector's ``anomalies`` measurement (see contracts) |

The portfolio is the store's ``product = all`` rows when every product is reported; for a
selection of products it is rebuilt from the products' sums with the engine's portfolio
rule (ratios of sums, never means of rates). Optional fields a newer engine may write
(``partial``, ``nrr_t12m``) are used when present and never required.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

import pandas as pd

from growthwatch import SeriesReader
from reports.period import (
    Month,
    bounds,
    from_index,
    local_day,
    local_month,
    month_index,
    read_window,
    zone,
)

PORTFOLIO = "all"
TREND_MONTHS = 13  # the report month and the twelve before it
COHORT_MONTHS = 12
SEVERITY_ORDER = {"critical": 0, "warning": 1}

# churn_monthly fields that add up over products (the base of every portfolio rate)
_ADDITIVE = ("customers_start", "customers_end", "churned", "mrr_start", "mrr_end", "new",
             "expansion", "contraction", "churn", "reactivation", "fx_impact")  # fmt: skip


class CollectError(ValueError):
    """The store cannot give the report what it needs (message says what and where)."""


@dataclass(frozen=True)
class Kpi:
    """One line of a KPI table: this month, the month before and the same month a year ago.

    ``kind`` is ``money`` (in ``currency``), ``count`` or ``rate`` (a fraction); money and
    counts change in per cent, rates in percentage points."""

    key: str
    label: str
    kind: str
    value: float | None
    previous: float | None
    year_ago: float | None
    currency: str = ""
    higher_is_better: bool = True

    @property
    def mom(self) -> float | None:
        return _change(self.kind, self.value, self.previous)

    @property
    def yoy(self) -> float | None:
        return _change(self.kind, self.value, self.year_ago)


def _change(kind: str, now: float | None, then: float | None) -> float | None:
    if now is None or then is None:
        return None
    if kind == "rate":
        return now - then
    if then == 0:
        return None
    return now / then - 1


@dataclass(frozen=True)
class Anomaly:
    alert_id: str
    product: str
    metric: str
    segment: str
    severity: str
    method: str
    state: str
    started: datetime
    observed: float | None
    expected: float | None
    explanation: str


@dataclass
class ProductReport:
    id: str
    name: str
    currency: str  # billing currency (the reporting currency for the portfolio)
    kpis: list[Kpi]
    movements: dict[
        str, float
    ]  # start, new, expansion, reactivation, contraction, churn, fx_impact, end
    mrr_trend: pd.DataFrame  # day, mrr
    monthly: pd.DataFrame  # month (Month), signups, activation_rate, mrr
    cohorts: pd.DataFrame  # index: cohort Month, columns: age 0.., values: rate; attrs["sizes"]
    notes: list[str] = field(default_factory=list)
    anomalies: list[Anomaly] = field(default_factory=list)

    def kpi(self, key: str) -> Kpi:
        return next(k for k in self.kpis if k.key == key)


@dataclass
class ReportData:
    month: Month
    timezone: str
    currency: str
    generated_at: datetime
    closed: bool  # the month has ended at ``generated_at``
    data_until: date | None  # last day with data in the month
    portfolio: ProductReport
    products: list[ProductReport]
    anomalies: list[Anomaly]
    notes: list[str]
    selection: bool  # a subset of the products (the portfolio is their sum)

    @property
    def title(self) -> str:
        return f"Board report · {self.month.label}"


def available_products(reader: SeriesReader) -> list[str]:
    """Product ids that have monthly metrics in the store (``all`` excluded)."""
    frame = reader.read("churn_monthly", fields=["mrr_end"])
    if frame.empty or "product" not in frame:
        return []
    return sorted(p for p in frame["product"].dropna().unique() if p != PORTFOLIO)


def available_months(reader: SeriesReader, tz: Any) -> list[Month]:
    """Months (of the reporting timezone) that have monthly metrics, oldest first."""
    frame = reader.read("churn_monthly", fields=["mrr_end"])
    if frame.empty:
        return []
    return [from_index(int(i)) for i in sorted(set(local_month(frame["time"], tz)))]


def collect(
    reader: SeriesReader,
    month: Month,
    *,
    now: datetime,
    currency: str = "USD",
    timezone: str = "UTC",
    products: Sequence[str] | None = None,
    names: Mapping[str, str] | None = None,
    activation_window_days: int = 7,
) -> ReportData:
    """Every number of the report for ``month`` of the reporting timezone."""
    tz = zone(timezone)
    names = names or {}
    known = available_products(reader)
    if not known:
        raise CollectError("no monthly metrics in the series store (churn_monthly is empty): "
                           "run `growthwatch metrics recompute` or `growthwatch demo` first")  # fmt: skip
    chosen = list(products) if products else known
    unknown = [p for p in chosen if p not in known]
    if unknown:
        raise CollectError(
            f"unknown product(s) {', '.join(unknown)}; valid ids: {', '.join(known)}"
        )
    selection = set(chosen) != set(known)
    first = month.shift(-(TREND_MONTHS - 1))
    start, end = read_window(first, month, tz)
    late_end = end + timedelta(days=activation_window_days + 1)
    frames = {
        "churn_monthly": reader.read("churn_monthly", start=start, end=end),
        "revenue_daily": reader.read(
            "revenue_daily", fields=["net", "net_rc"], start=start, end=end
        ),
        "product_daily": reader.read(
            "product_daily", fields=["signups", "activated"], start=start, end=late_end
        ),
        "mrr_daily": reader.read("mrr_daily", fields=["mrr"], start=start, end=end),
        "cohort_retention": reader.read(
            "cohort_retention", tags={"basis": "revenue"}, start=start, end=end
        ),
    }
    for name, frame in frames.items():
        if not frame.empty:
            frame["day"] = local_day(frame["time"], tz)
            frame["m"] = local_month(frame["time"], tz)
            frames[name] = frame
    monthly = frames["churn_monthly"]
    if monthly.empty or not (monthly["m"] == month_index(month)).any():
        latest = available_months(reader, tz)
        raise CollectError(f"no monthly metrics for {month.label} in the series store"
                           + (f" (latest month with data: {latest[-1].label})" if latest else ""))  # fmt: skip
    m_start, m_end = bounds(month, tz)
    anomalies = _anomalies(reader.read("anomalies", start=m_start, end=m_end), {*chosen, PORTFOLIO})
    closed = now >= m_end
    daily = frames["product_daily"]
    in_month = daily[daily["m"] == month_index(month)] if not daily.empty else daily
    data_until = in_month["day"].max().date() if len(in_month) else None
    data_end = daily["day"].max().date() if not daily.empty else None

    def build(pid: str, parts: Sequence[str]) -> ProductReport:
        return _product(pid, parts, frames, month, tz, currency, names, anomalies)

    portfolio_parts = chosen if selection else [PORTFOLIO]
    portfolio = build(PORTFOLIO, portfolio_parts)
    portfolio.name = "Selected products" if selection else "Portfolio"
    reports = [build(pid, [pid]) for pid in chosen]
    notes = []
    if not closed:
        until = data_until.strftime("%-d %B") if data_until else "no data yet"
        made = f"{now.astimezone(tz):%-d %B %Y %H:%M} {timezone}"
        notes.append(f"{month.label} is not over yet (report made {made}): figures are month "
                     f"to date ({until}) and not comparable to full months.")  # fmt: skip
    elif data_until is not None and data_until < month.last_day:
        notes.append(f"Data ends on {data_until:%-d %B %Y}: the last days of {month.label} are "
                     "missing from daily figures.")  # fmt: skip
    if data_end is not None and (data_end - month.last_day).days < activation_window_days:
        notes.append(f"Activation rates count activations within {activation_window_days} days "
                     f"of signup; data ends on {data_end:%-d %B %Y}, so the latest signups are "
                     "still maturing.")  # fmt: skip
    if selection:
        notes.append("Portfolio figures are the sum of the selected products: "
                     + ", ".join(names.get(p, p) for p in chosen) + ".")  # fmt: skip
    for frame in frames.values():
        if "partial" in frame and not frame.empty:
            flagged = frame[(frame["m"] == month_index(month)) & (frame["partial"].fillna(0) != 0)]
            if len(flagged):
                notes.append(f"The metrics engine marks part of {month.label} as partial data.")
                break
    return ReportData(
        month=month, timezone=timezone, currency=currency, generated_at=now, closed=closed,
        data_until=data_until, portfolio=portfolio, products=reports, anomalies=anomalies,
        notes=notes, selection=selection,
    )  # fmt: skip


# -- one product (or the portfolio) ----------------------------------------------------------


def _rows(frame: pd.DataFrame, parts: Sequence[str]) -> pd.DataFrame:
    if frame.empty or "product" not in frame:
        return frame.iloc[0:0]
    return frame[frame["product"].isin(parts)]


def _monthly(frames: Mapping[str, pd.DataFrame], parts: Sequence[str]) -> pd.DataFrame:
    """One row per month index: the additive base fields and every KPI."""
    churn = _rows(frames["churn_monthly"], parts)
    single = len(parts) == 1
    rate_fields = ["customer_churn_rate", "gross_mrr_churn_rate", "nrr", "arpa", "nrr_t12m"]
    cols = [c for c in (*_ADDITIVE, *rate_fields) if c in churn]
    if single:
        out = churn.groupby("m")[cols].last()
    else:
        out = churn.groupby("m")[[c for c in _ADDITIVE if c in churn]].sum(min_count=1)
        start = out["mrr_start"].where(out["mrr_start"] != 0)
        customers = out["customers_start"].where(out["customers_start"] != 0)
        out["customer_churn_rate"] = out["churned"] / customers
        out["gross_mrr_churn_rate"] = (out["churn"] + out["contraction"]) / start
        out["nrr"] = 1 - (out["churn"] + out["contraction"] - out["expansion"]
                          - out["reactivation"]) / start  # fmt: skip
        out["arpa"] = out["mrr_end"] / out["customers_end"].where(out["customers_end"] != 0)
    revenue = frames["revenue_daily"]
    products = parts if parts != [PORTFOLIO] else sorted(set(revenue.get("product", [])))
    rev = _rows(revenue, products)
    out = out.join(rev.groupby("m")["net_rc"].sum().rename("net_revenue"), how="outer")
    native = rev.groupby("m")["net"].sum().rename("net_native") if single else None
    if native is not None and parts != [PORTFOLIO]:
        out = out.join(native, how="outer")
    daily = _rows(frames["product_daily"], parts)
    funnel = daily.groupby("m")[["signups", "activated"]].sum()
    funnel["activation_rate"] = funnel["activated"] / funnel["signups"].where(funnel["signups"] > 0)
    return out.join(funnel, how="outer")


def _value(table: pd.DataFrame, index: int, column: str) -> float | None:
    if column not in table or index not in table.index:
        return None
    value = table.at[index, column]
    if value is None or (isinstance(value, float) and math.isnan(value)) or pd.isna(value):
        return None
    return float(value)


def _product(
    pid: str,
    parts: Sequence[str],
    frames: Mapping[str, pd.DataFrame],
    month: Month,
    tz: Any,
    currency: str,
    names: Mapping[str, str],
    anomalies: Sequence[Anomaly],
) -> ProductReport:
    table = _monthly(frames, parts)
    now_i = month_index(month)

    def kpi(key: str, label: str, kind: str, column: str, *, money_in: str = currency,
            better: bool = True) -> Kpi:  # fmt: skip
        return Kpi(key, label, kind, _value(table, now_i, column), _value(table, now_i - 1, column),
                   _value(table, now_i - 12, column), money_in if kind == "money" else "",
                   better)  # fmt: skip

    billing = _billing_currency(frames["revenue_daily"], pid) if pid != PORTFOLIO else currency
    kpis = [
        kpi("mrr", "MRR", "money", "mrr_end"),
        kpi("net_revenue", "Net revenue", "money", "net_revenue"),
    ]
    if billing != currency and "net_native" in table:
        kpis.append(kpi("net_revenue_native", f"Net revenue ({billing})", "money", "net_native",
                        money_in=billing))  # fmt: skip
    kpis += [
        kpi("customers", "Customers", "count", "customers_end"),
        kpi("customer_churn", "Customer churn", "rate", "customer_churn_rate", better=False),
        kpi("revenue_churn", "Revenue churn", "rate", "gross_mrr_churn_rate",
            better=False),
        kpi("nrr", "NRR", "rate", "nrr"),
    ]  # fmt: skip
    if _value(table, now_i, "nrr_t12m") is not None:
        kpis.append(kpi("nrr_t12m", "NRR, trailing 12 mo.", "rate", "nrr_t12m"))
    kpis += [
        kpi("arpa", "ARPA", "money", "arpa"),
        kpi("signups", "Signups", "count", "signups"),
        kpi("activation_rate", "Activation rate", "rate", "activation_rate"),
    ]
    movements = {
        key: _value(table, now_i, col) or 0.0
        for key, col in (("start", "mrr_start"), ("new", "new"), ("expansion", "expansion"),
                         ("reactivation", "reactivation"), ("contraction", "contraction"),
                         ("churn", "churn"), ("fx_impact", "fx_impact"), ("end", "mrr_end"))
    }  # fmt: skip
    first = now_i - (TREND_MONTHS - 1)
    months = [from_index(i) for i in range(first, now_i + 1)]
    monthly = pd.DataFrame({
        "month": months,
        "signups": [_value(table, month_index(m), "signups") for m in months],
        "activation_rate": [_value(table, month_index(m), "activation_rate") for m in months],
        "mrr": [_value(table, month_index(m), "mrr_end") for m in months],
    })  # fmt: skip
    mrr = _rows(frames["mrr_daily"], parts)
    mrr = mrr[(mrr["m"] >= first) & (mrr["m"] <= now_i)] if len(mrr) else mrr
    trend = (mrr.groupby("day")["mrr"].sum().reset_index() if len(mrr)
             else pd.DataFrame({"day": [], "mrr": []}))  # fmt: skip
    report = ProductReport(
        id=pid, name=names.get(pid, pid), currency=billing, kpis=kpis, movements=movements,
        mrr_trend=trend, monthly=monthly, cohorts=_cohorts(frames["cohort_retention"], parts, now_i),
        anomalies=[a for a in anomalies if a.product == pid],
    )  # fmt: skip
    report.notes = _notes(report, table, frames, parts, month)
    return report


def _billing_currency(revenue: pd.DataFrame, pid: str) -> str:
    rows = _rows(revenue, [pid])
    if rows.empty or "currency" not in rows:
        return ""
    return str(rows.groupby("currency")["net"].count().idxmax())


def _cohorts(frame: pd.DataFrame, parts: Sequence[str], now_i: int) -> pd.DataFrame:
    """Revenue retention rate by cohort month (rows) and age (columns), as of the report
    month: cells the report month has not reached yet are left out."""
    rows = _rows(frame, parts)
    if rows.empty:
        empty = pd.DataFrame()
        empty.attrs["sizes"] = {}
        return empty
    rows = rows.assign(age=rows["age"].astype(int))
    rows = rows[(rows["m"] > now_i - COHORT_MONTHS) & (rows["m"] <= now_i)]
    rows = rows[rows["m"] + rows["age"] <= now_i]
    if len(parts) == 1:
        rate = rows.pivot_table(index="m", columns="age", values="rate", aggfunc="first")
        sizes = rows[rows["age"] == 0].groupby("m")["cohort_size"].sum()
    else:
        sums = rows.groupby(["m", "age"])[["mrr", "cohort_size"]].sum().reset_index()
        base = sums[sums["age"] == 0].set_index("m")["mrr"]
        sums["rate"] = sums["mrr"] / sums["m"].map(base).where(lambda s: s > 0)
        rate = sums.pivot_table(index="m", columns="age", values="rate", aggfunc="first")
        sizes = sums[sums["age"] == 0].set_index("m")["cohort_size"]
    rate.index = [from_index(int(i)) for i in rate.index]
    rate.attrs["sizes"] = {from_index(int(i)): int(v) for i, v in sizes.items()}
    return rate


def _notes(
    report: ProductReport,
    table: pd.DataFrame,
    frames: Mapping[str, pd.DataFrame],
    parts: Sequence[str],
    month: Month,
) -> list[str]:
    """Partial data of this product, said on its page: a mid-month start, no year-ago month."""
    notes = []
    firsts = [
        frame.loc[frame["product"].isin(parts), "day"].min()
        for name, frame in frames.items()
        if name in ("mrr_daily", "product_daily") and not frame.empty and "product" in frame
    ]
    firsts = [f for f in firsts if not pd.isna(f)]
    if firsts:
        first = min(firsts).date()
        if month.first_day < first <= month.last_day:
            notes.append(f"First data on {first:%-d %B %Y}: {month.label} is a partial month, "
                         "and month-over-month changes are not shown.")  # fmt: skip
            report.kpis[:] = [Kpi(k.key, k.label, k.kind, k.value, None, None, k.currency,
                                  k.higher_is_better) for k in report.kpis]  # fmt: skip
            return notes
    if report.kpi("mrr").year_ago is None:
        notes.append(f"No data for {month.shift(-12).label}: year-over-year changes are n/a.")
    return notes


# -- anomalies -------------------------------------------------------------------------------


def _text(value: Any) -> str:
    return "" if value is None or (isinstance(value, float) and math.isnan(value)) else str(value)


def _float(value: Any) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(number) else number


def _anomalies(frame: pd.DataFrame, products: set[str]) -> list[Anomaly]:
    """One entry per incident (``alert_id``) with a transition in the month: its worst
    severity, latest state, and what the detector said at its worst (last open point)."""
    if frame.empty or "alert_id" not in frame:
        return []
    frame = frame[frame["product"].isin(products)].sort_values("time")
    out = []
    for alert_id, rows in frame.groupby("alert_id", sort=False):
        last = rows.iloc[-1]
        if "open" in rows:
            opened = rows[pd.to_numeric(rows["open"], errors="coerce").fillna(0) != 0]
        else:
            opened = rows
        peak = opened.iloc[-1] if len(opened) else last
        # the explanation of the incident at its worst (the last open/escalate point), not
        # the resolve point's "back to normal"
        explanation = _text(peak.get("explanation")) or _text(last.get("explanation"))
        severity = min(rows["severity"].map(_text), key=lambda s: SEVERITY_ORDER.get(s, 9))
        started_ms = _float(rows.iloc[0].get("started_ms"))
        started = (pd.Timestamp(int(started_ms), unit="ms", tz="UTC").to_pydatetime()
                   if started_ms is not None else rows.iloc[0]["time"].to_pydatetime())  # fmt: skip
        out.append(Anomaly(
            alert_id=str(alert_id), product=_text(last["product"]), metric=_text(peak.get("metric")),
            segment=_text(peak.get("segment")) or "all", severity=severity,
            method=_text(last.get("method")), state=_text(last.get("state")), started=started,
            observed=_float(peak.get("observed")), expected=_float(peak.get("expected")),
            explanation=explanation,
        ))  # fmt: skip
    out.sort(key=lambda a: (SEVERITY_ORDER.get(a.severity, 9), a.started, a.alert_id))
    return out
