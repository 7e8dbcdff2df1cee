"""``growthwatch status``: per source, last success, lag, failure and rejections."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from exporter_fakes import FAST, FakeStripe, charge, event

from exporters.base import Ingestor, SourceError
from exporters.registry import build_stream
from exporters.state import StateStore
from growthwatch import clock
from growthwatch.cli import main
from growthwatch.config import load_config
from growthwatch.stores.ledger import Ledger


def test_status_shows_success_lag_failures_and_missing_credentials(
    fake_stripe: FakeStripe, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str], frozen_now: object,
) -> None:  # fmt: skip
    monkeypatch.setenv("GW_ST_KEY", FakeStripe.api_key)
    monkeypatch.delenv("GW_ST_MISSING", raising=False)
    now = int(clock.now().timestamp())
    fake_stripe.add("events", event("evt_s1", "charge.succeeded",
                                    charge("ch_s1", created=now - 7200), now - 7200))  # fmt: skip
    doc = {"storage": {"data_dir": "data"}, "products": [
        {"id": "acme", "sources": [{"type": "stripe", "api_key": "${GW_ST_KEY}",
                                    "api_base": fake_stripe.url}]},
        {"id": "beta", "sources": [{"type": "stripe", "api_key": "${GW_ST_MISSING}"}]},
        {"id": "gamma", "sources": [{"type": "stripe", "api_key": "${GW_ST_KEY}",
                                     "api_base": fake_stripe.url, "name": "flaky"}]},
    ]}  # fmt: skip
    path = tmp_path / "growthwatch.yaml"
    path.write_text(yaml.safe_dump(doc))
    config = load_config(path)
    config.data_dir.mkdir(parents=True)
    state = StateStore(config.data_dir / "exporters.sqlite")
    with Ledger(config.ledger_path) as ledger:
        ingestor = Ingestor(ledger, state)
        good = build_stream(config.products[0].sources[0], state)
        good.api.policy = FAST  # type: ignore[attr-defined]
        ingestor.sync(good)
        flaky = build_stream(config.products[2].sources[0], state)
        flaky.api.policy = FAST  # type: ignore[attr-defined]
        fake_stripe.fail_next(500, 500, 500, 500, 500)
        with pytest.raises(SourceError):
            ingestor.sync(flaky)
    state.close()
    capsys.readouterr()
    assert main(["status", "--config", str(path), "--format", "json"]) == 1
    report = json.loads(capsys.readouterr().out)
    by_source = {s["source"]: s for s in report["sources"]}
    assert by_source["acme/stripe"]["failing"] is None
    assert by_source["acme/stripe"]["last_success"] == clock.now().isoformat()
    assert by_source["acme/stripe"]["cursor_lag_s"] is not None
    assert "GW_ST_MISSING" in by_source["beta/stripe"]["failing"]
    assert "HTTP 500" in by_source["gamma/flaky"]["failing"]
    assert report["spool_points"] == 0
