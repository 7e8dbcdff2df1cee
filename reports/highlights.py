"""Short highlights generated from the numbers (no free text: every sentence is a rule).

A board reads the first page only, so it gets at most ``LIMIT`` sentences, most important
first: the portfolio's MRR and NRR, the product that grew most and on what, the one that
shrank or lost most customers, a churn rate that jumped, activation that fell, and the
month's critical anomalies with the detector's own explanation.
"""

from __future__ import annotations

from reports.collect import ReportData
from reports.money import change_percent, change_points, money, percent

LIMIT = 7
DRIVERS = {"new": "new customers", "expansion": "expansion", "reactivation": "reactivations"}
LOSSES = {"churn": "churn", "contraction": "contraction"}


def highlights(data: ReportData) -> list[str]:
    out: list[str] = []
    pf = data.portfolio
    mrr = pf.kpi("mrr")
    if mrr.value is not None:
        if mrr.mom is None:
            line = f"{pf.name} MRR is {money(mrr.value, data.currency)}"
        else:
            line = f"{pf.name} MRR {'grew' if mrr.mom >= 0 else 'fell'}"
            line += f" {change_percent(abs(mrr.mom))} month over month"
            line += f" to {money(mrr.value, data.currency)}"
        if mrr.yoy is not None:
            line += f" ({change_percent(mrr.yoy)} on a year ago)"
        nrr = pf.kpi("nrr")
        if nrr.value is not None:
            line += f"; net revenue retention {percent(nrr.value)}"
        out.append(line.replace("grew +", "grew ").replace("fell +", "fell ") + ".")
    products = [p for p in data.products if p.kpi("mrr").mom is not None]
    if len(data.products) > 1 and products:
        best = max(products, key=lambda p: p.kpi("mrr").mom or 0.0)
        if (best.kpi("mrr").mom or 0) > 0:
            driver = max(DRIVERS, key=lambda k: best.movements.get(k, 0.0))
            out.append(f"{best.name} grew MRR fastest, {change_percent(best.kpi('mrr').mom)}, "
                       f"mostly on {DRIVERS[driver]} "
                       f"({money(best.movements[driver], data.currency)} of {driver} MRR).")  # fmt: skip
        worst = min(products, key=lambda p: p.kpi("mrr").mom or 0.0)
        if worst is not best and (worst.kpi("mrr").mom or 0) < 0:
            loss = max(LOSSES, key=lambda k: worst.movements.get(k, 0.0))
            out.append(f"{worst.name} lost {change_percent(worst.kpi('mrr').mom)[1:]} of its MRR, "
                       f"mostly to {LOSSES[loss]} "
                       f"({money(worst.movements[loss], data.currency)}).")  # fmt: skip
        biggest = max(data.products, key=lambda p: p.kpi("mrr").value or 0.0)
        share = (biggest.kpi("mrr").value or 0.0) / (mrr.value or 1.0)
        if len(data.products) > 2 and mrr.value:
            out.append(f"{biggest.name} is the largest product with "
                       f"{money(biggest.kpi('mrr').value, data.currency)} MRR, "
                       f"{percent(share, 0)} of the portfolio.")  # fmt: skip
        rated = [p for p in data.products if p.kpi("nrr").value is not None]
        if rated:
            low = min(rated, key=lambda p: p.kpi("nrr").value or 0.0)
            out.append(f"Lowest net revenue retention: {low.name} at {percent(low.kpi('nrr').value)}"
                       f" ({change_points(low.kpi('nrr').mom)} on the month before).")  # fmt: skip
    jumps = []
    for p in data.products:
        churn = p.kpi("customer_churn")
        if churn.value is not None and churn.previous and churn.value >= 1.5 * churn.previous:
            jumps.append((churn.value / churn.previous, p))
    for ratio, p in sorted(jumps, key=lambda j: -j[0])[:2]:
        churn = p.kpi("customer_churn")
        word = "tripled" if ratio >= 3 else "doubled" if ratio >= 2 else "rose"
        out.append(f"{p.name}'s customer churn {word}: {percent(churn.value)} against "
                   f"{percent(churn.previous)} the month before.")  # fmt: skip
    falls = [(p.kpi("activation_rate").mom, p) for p in data.products
             if (p.kpi("activation_rate").mom or 0) <= -0.03]  # fmt: skip
    for mom, p in sorted(falls, key=lambda f: f[0] or 0)[:1]:
        out.append(f"{p.name}'s activation rate fell {change_points(mom)[1:]} to "
                   f"{percent(p.kpi('activation_rate').value)}.")  # fmt: skip
    critical = [a for a in data.anomalies if a.severity == "critical"]
    for anomaly in critical[:2]:
        name = next((p.name for p in data.products if p.id == anomaly.product), anomaly.product)
        text = anomaly.explanation or f"{anomaly.metric} outside its expected range"
        out.append(f"{name}: {text.rstrip('.')} (critical anomaly, {anomaly.started:%-d %b}).")
    if data.anomalies and not critical:
        out.append(f"{len(data.anomalies)} warning-level anomal"
                   f"{'y' if len(data.anomalies) == 1 else 'ies'} this month, none critical.")  # fmt: skip
    return out[:LIMIT]
