"""The ``detector`` config section: every key reaches the detector; bad values are named."""

from __future__ import annotations

from datetime import timedelta
from types import SimpleNamespace

import pytest

from detectors.service import attach
from detectors.settings import DetectorSettings
from growthwatch.config.loader import build_config


def test_every_key_is_read() -> None:
    s = DetectorSettings.from_section({
        "method": "seasonal_mad", "baseline_days": 42, "min_history_days": 21,
        "warning": 0.99, "critical": 0.9999, "direction": "both", "adapt_after": "3d",
        "resolve_after": "30m", "cooldown": "12h", "interval": "15s", "intraday": False,
        "intraday_window": "2h", "segments": ["plan"],
        "metrics": ["customers_daily.cancellations",
                    {"metric": "revenue_daily.net_rc", "direction": "down", "warning": 0.95,
                     "method": "zscore", "min_history_days": 30}],
    })  # fmt: skip
    assert (s.baseline_days, s.min_history_days, s.intraday, s.segments) == (42, 21, False, ("plan",))
    assert (s.resolve_after, s.cooldown, s.interval) == (timedelta(minutes=30), timedelta(hours=12),
                                                         timedelta(seconds=15))  # fmt: skip
    assert s.intraday_window == timedelta(hours=2)
    cancel, net = s.metrics
    assert cancel.method == "seasonal_mad" and cancel.policy.direction == "both"
    assert cancel.policy.adapt_after_days == 3 and cancel.policy.warning == 0.99
    assert (net.method, net.policy.direction, net.policy.warning) == ("zscore", "down", 0.95)
    assert net.policy.min_history_days == 30 and net.policy.critical == 0.9999


def test_defaults_say_which_way_is_bad() -> None:
    s = DetectorSettings.from_section({})
    directions = {m.name: m.policy.direction for m in s.metrics}
    assert directions["customers_daily.cancellations"] == "up"
    assert directions["revenue_hourly.payments"] == "down"
    assert directions["traffic_daily.sessions"] == "both"


def test_a_metric_that_is_no_series_is_named() -> None:
    with pytest.raises(ValueError, match=r"detector.metrics\[0\].*no field 'cancels'"):
        DetectorSettings.from_section({"metrics": ["customers_daily.cancels"]})
    with pytest.raises(ValueError, match="critical must be at least"):
        DetectorSettings.from_section({"warning": 0.999, "critical": 0.99})


def test_serve_without_a_detector_section_attaches_nothing() -> None:
    config = build_config({"products": []})
    assert attach(SimpleNamespace(config=config)) is None


def test_the_detector_days_follow_reporting_timezone_and_multi_days_is_read() -> None:
    config = build_config({"products": [], "reporting": {"timezone": "Europe/Berlin"},
                           "detector": {"multi_days": 2}})  # fmt: skip
    s = DetectorSettings.from_config(config)
    assert s.timezone == "Europe/Berlin" and s.multi_days == 2
    cfg = s.intraday_settings(s.metrics[0])
    assert (cfg.timezone, cfg.multi_days) == ("Europe/Berlin", 2)
    assert DetectorSettings.from_config(build_config({"products": []})).timezone == "UTC"
    with pytest.raises(ValueError, match=r"detector\.multi_days"):
        DetectorSettings.from_section({"multi_days": 0})
