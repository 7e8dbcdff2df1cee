"""``metrics.memory_limit_mb``: a recompute under a tight limit writes the same stores.

The limit reaches the engine twice: DuckDB's own ``memory_limit`` on the ledger (its
aggregates spill beyond it) and ``chunk_events``, how many events a streaming family holds
at once. A test ledger small enough for the suite fits a 512 MB chunk whole, so the second
test makes the limit bind as it would on a 100M-event ledger: it keeps the 512 MB
configuration and shrinks the chunk to a hundredth of this ledger.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pandas as pd
import pytest
from metric_cases import store_contents

from growthwatch import ConfigError, load_config
from growthwatch.demo.generator import generate
from growthwatch.demo.pipeline import DEMO_METRICS
from growthwatch.demo.spec import DemoSpec
from growthwatch.metrics.engine import MetricsEngine
from growthwatch.metrics.settings import (
    DEFAULT_MEMORY_LIMIT_MB,
    MetricsSettings,
    chunk_events_for,
)
from growthwatch.stores.ledger import Ledger
from growthwatch.stores.series import SeriesStore


def _settings(tmp_path: Path, metrics: str) -> MetricsSettings:
    path = tmp_path / "growthwatch.yaml"
    path.write_text(f"products: [{{id: p1}}]\nmetrics: {metrics}\n")
    return MetricsSettings.from_config(load_config(path))


def test_the_limit_is_read_from_the_config_and_split(tmp_path: Path) -> None:
    tight = _settings(tmp_path, "{memory_limit_mb: 512}")
    assert tight.memory_limit_mb == 512
    # 256 MB baseline, 64 MB (the floor; a sixteenth is 32) for the series store, the
    # 192 left halved between the ledger's DuckDB and the frames
    assert tight.series_memory_limit == "64MB"
    assert tight.duckdb_memory_mb == 96
    assert tight.chunk_events == 96 * 2**20 // 700 == chunk_events_for(512)
    default = _settings(tmp_path, "{}")
    assert default.memory_limit_mb == DEFAULT_MEMORY_LIMIT_MB == 2048
    # 2048 - 256 - 128 (a sixteenth) = 1664, halved
    assert default.series_memory_limit == "128MB"
    assert default.duckdb_memory_mb == 832
    assert default.chunk_events == 832 * 2**20 // 700
    with pytest.raises(ConfigError, match="memory_limit_mb"):
        _settings(tmp_path, "{memory_limit_mb: 16}")
    with Ledger() as ledger:
        MetricsEngine(ledger, tight)
        cursor = ledger.connection
        limit = cursor.execute("SELECT current_setting('memory_limit')").fetchone()
        cursor.close()
    assert limit is not None and limit[0] == "91.5 MiB"  # DuckDB's 96 MB, in MiB


def test_a_recompute_under_512_mb_writes_the_same_stores(tmp_path: Path) -> None:
    events = pd.concat(generate(DemoSpec(seed=11, products=3, months=4, events_per_day=600)),
                       ignore_index=True)  # fmt: skip
    tight = dataclasses.replace(_settings(tmp_path, "{memory_limit_mb: 512}"), fx=DEMO_METRICS.fx)
    unlimited = dataclasses.replace(tight, memory_limit_mb=None, chunk_events=10**12)
    stores = {}
    with Ledger(tmp_path / "ledger.duckdb") as ledger:
        ledger.append(events)
        total = ledger.count()
        binding = dataclasses.replace(tight, chunk_events=total // 100)
        for name, settings in (("unlimited", unlimited), ("512", binding)):
            store = SeriesStore(tmp_path / f"series-{name}.duckdb")
            result = MetricsEngine(ledger, settings).recompute([store])
            assert result.points > 10_000
            if name == "512":
                # the demo has no KPI events (the one family left that streams by time):
                # every family runs in one piece, the SQL ones in DuckDB's share, the
                # totals ones in groups of ``chunk_events``
                assert set(result.chunks.values()) == {1}, result.chunks
            stores[name] = store_contents(store)
            store.close()
    assert total > 50_000
    assert stores["512"].keys() == stores["unlimited"].keys()
    for name, frame in stores["unlimited"].items():
        pd.testing.assert_frame_equal(stores["512"][name], frame, check_exact=False,
                                      rtol=1e-12, atol=1e-9, obj=name)  # fmt: skip
