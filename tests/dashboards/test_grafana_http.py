"""Grafana Live push, annotations and dashboard upload, against a local server speaking
Grafana's HTTP API (``fake_grafana``), with the real clients (requests, grafana-client)."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pandas as pd
import pytest

from dashboards import live
from dashboards.build import dashboards
from dashboards.grafana_api import annotate, grafana_client, upload_dashboards
from growthwatch import PointBatch, RetriesExhausted, RetryPolicy

sys.path.insert(0, str(Path(__file__).parent))
from fake_grafana import FakeGrafana


@pytest.fixture
def grafana() -> Iterator[FakeGrafana]:
    server = FakeGrafana().start()
    yield server
    server.stop()


def batch() -> PointBatch:
    frame = pd.DataFrame({
        "time": pd.to_datetime(["2026-10-30", "2026-10-31"], utc=True),
        "product": ["acme crm", "acme crm"],  # a space: escaped by the encoder
        "active": [120, 118], "churn_rate": [0.01, float("nan")],
    })  # fmt: skip
    return PointBatch("customers_daily", frame, ("product",), ("active", "churn_rate"))


def no_wait() -> RetryPolicy:
    return RetryPolicy(max_retries=2, backoff=0.0, jitter=False, sleep=lambda s: None)


def test_live_push_sends_line_protocol_with_bearer_token(grafana: FakeGrafana) -> None:
    pusher = live.LivePusher(grafana.url, grafana.token, retry=no_wait())
    assert pusher.push([batch()]) == 2
    (req,) = grafana.requests
    assert req.method == "POST" and req.path == "/api/live/push/growthwatch"
    assert req.headers["Authorization"] == "Bearer glsa_test"
    # by hand: InfluxDB line protocol, ns timestamps, NaN left out, space escaped
    assert req.body.decode().splitlines() == [
        r"customers_daily,product=acme\ crm active=120i,churn_rate=0.01 1793318400000000000",
        r"customers_daily,product=acme\ crm active=118i 1793404800000000000",
    ]


def test_live_push_retries_5xx_and_gives_up_quietly(grafana: FakeGrafana, caplog: Any) -> None:
    pusher = live.LivePusher(grafana.url, grafana.token, retry=no_wait())
    grafana.fail_next = [503]
    assert pusher.push([batch()]) == 2 and len(grafana.requests) == 2
    grafana.fail_next = [500, 500, 500]
    with pytest.raises(RetriesExhausted):
        pusher.push([batch()])
    grafana.fail_next = [500, 500, 500]
    pusher([batch()])  # as a listener: logs, never raises into the series hook
    assert "Grafana Live" in caplog.text


def test_live_push_with_a_bad_token_is_not_retried(grafana: FakeGrafana) -> None:
    pusher = live.LivePusher(grafana.url, "wrong", retry=no_wait())
    with pytest.raises(live.LivePushError, match="401"):
        pusher.push([batch()])
    assert len(grafana.requests) == 1


class Hook:
    def __init__(self) -> None:
        self.listeners: list[Any] = []

    def add_listener(self, fn: Any) -> None:
        self.listeners.append(fn)


def service(section: dict[str, Any] | None) -> SimpleNamespace:
    raw = {"grafana": section} if section is not None else {}
    config = SimpleNamespace(section=lambda name: raw.get(name) or {})
    return SimpleNamespace(config=config, hook=Hook())


def test_attach_listens_on_the_series_hook(grafana: FakeGrafana, monkeypatch: pytest.MonkeyPatch) -> None:  # fmt: skip
    monkeypatch.setenv("GF_TOKEN_TEST", grafana.token)
    svc = service({"url": grafana.url, "token": "${GF_TOKEN_TEST}"})
    attached = live.attach(svc)
    assert attached is not None and svc.hook.listeners == [attached]
    svc.hook.listeners[0]([batch()])  # what LiveSeriesHook does after an update
    assert grafana.requests[-1].path == "/api/live/push/growthwatch"
    attached.close()
    assert live.attach(service(None)) is None
    assert live.attach(service({"url": grafana.url, "token": "${GF_TOKEN_TEST}", "live": False})) is None
    monkeypatch.setenv("GF_TOKEN_TEST", "")
    assert live.attach(service({"url": grafana.url, "token": "${GF_TOKEN_TEST}"})) is None


def test_annotation_is_posted(grafana: FakeGrafana, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GF_TOKEN_TEST", grafana.token)
    api = grafana_client({"url": grafana.url, "token": "${GF_TOKEN_TEST}"})
    answer = annotate(api, time_ms=1793318400000, time_end_ms=1793322000000,
                      text="cancellations 41 vs 8 expected", tags=["growthwatch", "acme-crm"],
                      dashboard_uid="gw-product")  # fmt: skip
    assert answer["message"] == "Annotation added"
    body = {k: v for k, v in grafana.requests[-1].json().items() if v is not None}
    assert body == {"dashboardUID": "gw-product", "time": 1793318400000,
                    "timeEnd": 1793322000000, "tags": ["growthwatch", "acme-crm"],
                    "text": "cancellations 41 vs 8 expected"}  # fmt: skip


def test_dashboards_upload_into_their_folder(grafana: FakeGrafana, monkeypatch: pytest.MonkeyPatch) -> None:  # fmt: skip
    monkeypatch.setenv("GF_TOKEN_TEST", grafana.token)
    api = grafana_client({"url": grafana.url, "token": "${GF_TOKEN_TEST}"})
    models = [m for _, m in dashboards()]
    results = upload_dashboards(api, models)
    assert [r["status"] for r in results] == ["success"] * 6
    assert set(grafana.folders) == {"growthwatch"}
    assert set(grafana.dashboards) == {m["uid"] for m in models}
    results = upload_dashboards(api, models)  # again: overwrite, no second folder
    assert {r["version"] for r in results} == {2}
    posts = [r for r in grafana.requests if r.path == "/api/folders"]
    assert len(posts) == 1
    upload = next(r.json() for r in grafana.requests if r.path == "/api/dashboards/db")
    assert upload["overwrite"] is True and upload["dashboard"]["id"] is None
