"""CSV import of growth events: bad rows rejected one by one, a second import changes nothing."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from exporter_fakes import source

from exporters.base import Ingestor
from exporters.csv_import import CsvStream
from exporters.state import StateStore
from growthwatch.stores.ledger import Ledger

HEADER = "type,ts,value,currency,subject,mrr_before,mrr_after,metadata,source_id\n"


def test_csv_import_rejects_bad_rows_and_is_idempotent(
    tmp_path: Path, ledger: Ledger, state: StateStore, ingestor: Ingestor
) -> None:
    good = [f"payment,2024-0{m}-15T10:00:00Z,49.90,EUR,cus_{m},,,,inv-{m}\n" for m in range(1, 8)]
    rows = [
        *good,
        'subscription_started,2024-02-01T00:00:00+00:00,30,USD,cus_9,0,30,"{""plan"": ""pro""}",sub-9\n',
        "payment,2024-03-01 10:00:00,10,USD,cus_1,,,,naive-1\n",  # no zone: rejected
        "payment,2024-03-02T10:00:00Z,10,XYZ,cus_1,,,,badcur-1\n",  # unknown currency
        "payment,2024-03-03T10:00:00Z,10,USD\n",  # short row
        "signup,2024-03-04T10:00:00Z,1,,user_1,,,,\n",  # no source_id
    ]
    path = tmp_path / "history.csv"
    path.write_text(HEADER + "".join(rows))
    s = CsvStream(source("csv", path=str(path)), state)
    s.chunk_rows = 3
    since = datetime(2024, 1, 1, tzinfo=UTC)
    result = ingestor.sync(s, since=since, backfill=True)
    assert result.inserted == 8 and result.rejected == 4
    reasons = sorted(r["reason"] for r in state.rejected())
    assert reasons == ["invalid_currency", "invalid_source_id", "invalid_ts", "malformed_row"]
    assert len(ledger.rejected()) == 3  # the ledger keeps the rows it refused, too
    stored = ledger.read()
    assert set(stored["product"]) == {"acme"} and set(stored["source"]) == {"csv"}
    assert stored.loc[stored["type"] == "subscription_started", "plan"].item() == "pro"
    again = ingestor.sync(s, since=since, backfill=True)
    assert again.inserted == 0 and again.duplicates == 8
    later = ingestor.sync(s, since=datetime(2024, 6, 1, tzinfo=UTC), backfill=True)
    assert later.duplicates == 2  # June and July only (rows without a usable time: rejected)
