"""Data at rest: private files, rejections recorded once, old payloads pruned."""

from __future__ import annotations

import stat
from pathlib import Path

from exporters.state import StateStore
from growthwatch.stores.ledger import Ledger
from growthwatch.stores.series import SeriesStore
from growthwatch.stores.spool import Spool


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_every_file_holding_customer_data_is_readable_by_its_owner_only(tmp_path: Path) -> None:
    state = StateStore(tmp_path / "exporters.sqlite")
    state.inbox_put("acme/stripe", "evt_1", "{}", "webhook")
    with Ledger(tmp_path / "ledger.duckdb"), SeriesStore(tmp_path / "series.duckdb"):
        pass
    spooled = Spool(tmp_path / "spool").put(b"payload", 1)
    for path in (tmp_path / "exporters.sqlite", tmp_path / "ledger.duckdb",
                 tmp_path / "series.duckdb", spooled):  # fmt: skip
        assert mode(path) == 0o600, path
    state.close()


def test_the_same_bad_record_is_recorded_once(tmp_path: Path) -> None:
    state = StateStore(tmp_path / "exporters.sqlite")
    assert state.reject("acme/csv", "invalid_ts", "x.csv:3: column ts", '{"ts": "soon"}')
    assert not state.reject("acme/csv", "invalid_ts", "x.csv:3: column ts", '{"ts": "soon"}')
    assert state.reject("acme/csv", "invalid_ts", "x.csv:4: column ts", '{"ts": "later"}')
    assert len(state.rejected()) == 2
    state.close()


def test_prune_drops_old_processed_payloads_and_rejections_never_pending_ones(
    tmp_path: Path,
) -> None:
    state = StateStore(tmp_path / "exporters.sqlite")
    for event_id in ("evt_old_done", "evt_old_pending", "evt_new_done"):
        state.inbox_put("acme/stripe", event_id, "{}", "webhook")
    with state.transaction() as con:
        con.execute("UPDATE inbox SET processed_at = '2020-01-01T00:00:00+00:00', "
                    "received_at = '2020-01-01T00:00:00+00:00' WHERE event_id = 'evt_old_done'")
        con.execute("UPDATE inbox SET received_at = '2020-01-01T00:00:00+00:00' "
                    "WHERE event_id = 'evt_old_pending'")  # fmt: skip
        con.execute("UPDATE inbox SET processed_at = '2999-01-01T00:00:00+00:00' "
                    "WHERE event_id = 'evt_new_done'")  # fmt: skip
    state.reject("acme/stripe", "old", "long ago", None)
    with state.transaction() as con:
        con.execute("UPDATE rejected SET rejected_at = '2020-01-01T00:00:00+00:00'")
    state.reject("acme/stripe", "new", "just now", None)
    assert state.prune(inbox_days=30, rejected_days=90) == (1, 1)
    assert {i.event_id for i in state.inbox_pending()} == {"evt_old_pending"}
    assert state.inbox_count() == 2
    assert [r["reason"] for r in state.rejected()] == ["new"]
    state.close()
