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
    assert reasons == ["invalid_currency", "invalid_source_id", "malformed_row", "naive_timestamp"]
    details = {r["reason"]: r["detail"] for r in state.rejected()}
    # every rejection names the file line (header = line 1) and the column
    assert details["naive_timestamp"].startswith("history.csv:10: column ts='2024-03-01 10:00:00'")
    assert details["invalid_currency"].startswith("history.csv:11: column currency='XYZ'")
    assert details["malformed_row"].startswith("history.csv:12:")
    assert details["invalid_source_id"].startswith("history.csv:13: column source_id=")
    assert len(ledger.rejected()) == 2  # the ledger keeps the rows it refused, too
    stored = ledger.read()
    assert set(stored["product"]) == {"acme"} and set(stored["source"]) == {"csv"}
    assert stored.loc[stored["type"] == "subscription_started", "plan"].item() == "pro"
    again = ingestor.sync(s, since=since, backfill=True)
    assert again.inserted == 0 and again.duplicates == 8
    assert len(state.rejected()) == 4  # a re-import does not record the same bad rows again
    later = ingestor.sync(s, since=datetime(2024, 6, 1, tzinfo=UTC), backfill=True)
    assert later.duplicates == 2  # June and July only (rows without a usable time: rejected)


def test_excel_bom_bad_dates_and_excess_precision(
    tmp_path: Path, ledger: Ledger, state: StateStore, ingestor: Ingestor
) -> None:
    path = tmp_path / "excel.csv"
    path.write_bytes("\ufeff".encode() + (HEADER
        + "payment,2024-01-15T10:00:00Z,49.90,EUR,cus_1,,,,inv-1\n"
        + "payment,2024-01-32T10:00:00Z,1,EUR,cus_2,,,,inv-2\n"  # no 32 January
        + "payment,2024-01-16T10:00:00Z,1.1234567,EUR,cus_3,,,,inv-3\n"  # 7 decimals
        + "payment,2024-01-17T10:00:00Z,1.1234560,EUR,cus_4,,,,inv-4\n"  # 6 significant
    ).encode())  # fmt: skip
    s = CsvStream(source("csv", path=str(path)), state)
    result = ingestor.sync(s, since=datetime(2024, 1, 1, tzinfo=UTC), backfill=True)
    assert result.inserted == 2 and result.rejected == 2  # the BOM did not break the header
    details = sorted(r["detail"] for r in state.rejected())
    assert details[0].startswith("excel.csv:3: column ts='2024-01-32T10:00:00Z': not an ISO 8601")
    assert details[1].startswith("excel.csv:4: column value='1.1234567': more than 6 decimals")
