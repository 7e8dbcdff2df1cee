"""Notifications through apprise URLs from the ``alerts`` config, routed by severity and
product.

A route (``name``, ``url`` as ``${ENV}``, ``min_severity``, optional ``products``) gets
every open at or above its severity for its products, an escalation only when it was not
paged at the open (a critical-only route hears of a warning that became critical; a route
already paged is not paged again), and the resolve message of the alerts it was paged for. apprise reports failure as ``False``; that is retried
with growthwatch's ``RetryPolicy`` and counted (sent/failed per route).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import apprise

from detectors import telemetry
from detectors.alerts import SEVERITY_RANK, Transition
from growthwatch import ConfigError, RetriesExhausted, Retryable, RetryPolicy, resolve_env

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Route:
    name: str
    url: str
    min_severity: str = "warning"
    products: tuple[str, ...] = ()

    def wants(self, product: str, severity: str) -> bool:
        if self.products and product not in self.products:
            return False
        return SEVERITY_RANK.get(severity, 0) >= SEVERITY_RANK.get(self.min_severity, 1)


def routes_from_config(section: Mapping[str, Any]) -> list[Route]:
    """The routes whose apprise URL is set; one with an unset ``${VAR}`` is logged as an
    error and skipped, so one missing secret never silences the other routes."""
    out = []
    for i, raw in enumerate(section.get("routes") or []):
        try:
            url = resolve_env(str(raw["url"]), f"alerts.routes[{i}].url")
        except ConfigError as exc:
            log.error("alert route %r is off: %s", raw.get("name"), _first_problem(exc))
            continue
        out.append(Route(str(raw["name"]), url, str(raw.get("min_severity", "warning")),
                         tuple(raw.get("products") or ())))  # fmt: skip
    return out


def message(t: Transition) -> tuple[str, str, Any]:
    a, f = t.alert, t.finding
    scope = a.product if a.segment == "all" else f"{a.product} ({a.segment})"
    verb = {"open": "anomaly", "escalated": "escalated", "resolved": "resolved"}[t.state]
    title = f"[{a.severity}] {scope}: {a.metric} {verb}"
    body = f"{f.explanation}\nscore {f.score:.5f}, method {f.method}, alert {a.alert_id}"
    kind = (apprise.NotifyType.SUCCESS if t.state == "resolved" else
            apprise.NotifyType.FAILURE if a.severity == "critical" else apprise.NotifyType.WARNING)  # fmt: skip
    return title, body, kind


class Notifier:
    def __init__(self, routes: Sequence[Route], policy: RetryPolicy | None = None) -> None:
        self.routes = list(routes)
        self.policy = policy or RetryPolicy(max_retries=3, backoff=0.5, max_delay=10)

    def emit(self, transition: Transition) -> None:
        title, body, kind = message(transition)
        a = transition.alert
        for route in self.routes:
            if not route.wants(a.product, a.severity):
                continue
            if transition.state == "escalated" and route.wants(a.product,
                                                               transition.previous_severity):
                continue  # this route was paged at the open: one page per incident  # fmt: skip
            sender = apprise.Apprise()
            sender.add(route.url)

            def attempt(sender: apprise.Apprise = sender, route: Route = route) -> None:
                if not sender.notify(title=title, body=body, notify_type=kind):
                    raise Retryable(f"apprise route {route.name} did not deliver")

            try:
                self.policy.call(attempt, what=f"notify {route.name}")
                telemetry.NOTIFICATIONS.labels(route.name, "sent").inc()
            except RetriesExhausted as exc:
                telemetry.NOTIFICATIONS.labels(route.name, "failed").inc()
                log.error("%s", exc)


def _first_problem(exc: ConfigError) -> str:
    problem = exc.problems[0] if exc.problems else None
    return f"{problem.path}: {problem.message}" if problem else str(exc)
