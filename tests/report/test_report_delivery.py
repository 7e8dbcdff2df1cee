"""Delivery of the board report through apprise, against local endpoints that speak the
real wire formats: apprise's ``json://`` (an HTTP server that records what it is posted)
and e-mail to a real SMTP server (aiosmtpd) that receives the PDF attachment. The
scheduler in ``growthwatch serve`` sends a month once, and retries a failed target."""

from __future__ import annotations

import base64
import email
import email.policy
import json
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from report_fixtures import MONTH, Demo

from growthwatch import RetryPolicy
from growthwatch.testing.servers import free_port
from reports.build import BuiltReport
from reports.deliver import SentRecord, send
from reports.service import ReportScheduler, ReportSettings, attach

pytestmark = [pytest.mark.influx, pytest.mark.slow]


class JsonEndpoint:
    """What apprise's ``json://`` plugin posts to: records bodies, answers ``statuses`` in
    turn (then 200)."""

    def __init__(self) -> None:
        self.posts: list[dict[str, Any]] = []
        self.statuses: list[int] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                outer.posts.append(json.loads(body))
                status = outer.statuses.pop(0) if outer.statuses else 200
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"json://127.0.0.1:{self.server.server_address[1]}/"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def endpoint() -> Iterator[JsonEndpoint]:
    server = JsonEndpoint()
    yield server
    server.close()


class Mailbox:
    def __init__(self) -> None:
        self.messages: list[Message] = []

    async def handle_DATA(self, server: object, session: object, envelope: Any) -> str:
        self.messages.append(
            email.message_from_bytes(envelope.content, policy=email.policy.default)
        )
        return "250 OK"


@pytest.fixture
def smtp() -> Iterator[tuple[Mailbox, int]]:
    box = Mailbox()
    port = free_port()
    controller = Controller(box, hostname="127.0.0.1", port=port)
    controller.start()
    yield box, port
    controller.stop()


def no_wait() -> RetryPolicy:
    return RetryPolicy(max_retries=2, backoff=0.01, jitter=False, sleep=lambda s: None)


def test_json_target_gets_the_pdf_and_the_record_says_so(
    built: BuiltReport, endpoint: JsonEndpoint, tmp_path: Path
) -> None:
    assert built.pdf is not None
    record = SentRecord(tmp_path / "sent.jsonl")
    (result,) = send(built.pdf, month=str(MONTH), urls=[endpoint.url], title="Board report",
                     body="highlights", record=record, policy=no_wait())  # fmt: skip
    assert result.ok and result.attempts == 1
    (post,) = endpoint.posts
    assert post["title"] == "Board report" and post["message"] == "highlights"
    (attachment,) = post["attachments"]
    content = base64.b64decode(attachment["base64"])
    assert content.startswith(b"%PDF-") and content == built.pdf.read_bytes()
    assert attachment["mimetype"] == "application/pdf"
    (entry,) = record.entries()
    assert entry.month == "2026-10" and entry.ok and entry.target.startswith("json://127.0.0.1")
    assert len(entry.sha256) == 64 and record.delivered("2026-10") == {entry.target_id}


def test_a_failing_target_is_retried_by_the_policy_then_recorded_as_failed(
    built: BuiltReport, endpoint: JsonEndpoint, tmp_path: Path
) -> None:
    assert built.pdf is not None
    record = SentRecord(tmp_path / "sent.jsonl")
    endpoint.statuses = [500, 503]  # two failures, then the third attempt goes through
    (ok,) = send(built.pdf, month="2026-10", urls=[endpoint.url], title="t", body="b",
                 record=record, policy=no_wait())  # fmt: skip
    assert ok.ok and ok.attempts == 3 and len(endpoint.posts) == 3
    endpoint.statuses = [500, 500, 500]
    (failed,) = send(built.pdf, month="2026-11", urls=[endpoint.url], title="t", body="b",
                     record=record, policy=no_wait())  # fmt: skip
    assert not failed.ok and failed.attempts == 3 and "did not accept" in failed.error
    assert record.delivered("2026-11") == set()


def test_email_to_a_real_smtp_server_carries_the_pdf(
    built: BuiltReport, smtp: tuple[Mailbox, int]
) -> None:
    assert built.pdf is not None
    box, port = smtp
    url = f"mailto://127.0.0.1:{port}?from=reports@example.com&to=board@example.com&mode=insecure"
    (result,) = send(built.pdf, month="2026-10", urls=[url], title="Board report · October 2026",
                     body="The report is attached.", policy=no_wait())  # fmt: skip
    assert result.ok
    (message,) = box.messages
    assert message["To"] == "board@example.com" and "October 2026" in str(message["Subject"])
    pdfs = [p for p in message.walk() if p.get_content_type() == "application/pdf"]
    assert len(pdfs) == 1 and pdfs[0].get_filename() == built.pdf.name
    payload = pdfs[0].get_payload(decode=True)
    assert isinstance(payload, bytes) and payload.startswith(b"%PDF-")
    assert payload == built.pdf.read_bytes()


def test_the_scheduler_sends_a_month_once_and_retries_a_failure(
    demo: Demo, endpoint: JsonEndpoint, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("BOARD_JSON_URL", endpoint.url)
    settings = ReportSettings.from_section({"day": 2, "time": "06:00", "delivery": ["${BOARD_JSON_URL}"],
                                            "retry_interval": "10m", "link_base": "https://reports.example.com/board"})  # fmt: skip
    scheduler = ReportScheduler(settings, demo.series, tmp_path, policy=no_wait())
    # before the send time of November (2 Nov 06:00) the owed month is September
    assert str(scheduler.due_month(datetime(2026, 11, 2, 5, 59, tzinfo=UTC))) == "2026-09"
    assert str(scheduler.due_month(datetime(2026, 11, 2, 6, 0, tzinfo=UTC))) == "2026-10"
    endpoint.statuses = [500, 500, 500]
    first = scheduler.tick(datetime(2026, 11, 2, 6, 0, 30, tzinfo=UTC))
    assert [r.ok for r in first] == [False] and len(endpoint.posts) == 3
    assert scheduler.tick(datetime(2026, 11, 2, 6, 5, tzinfo=UTC)) == []  # waits retry_interval
    second = scheduler.tick(datetime(2026, 11, 2, 6, 11, tzinfo=UTC))
    assert [r.ok for r in second] == [True] and len(endpoint.posts) == 4
    assert (
        "https://reports.example.com/board/board-report-2026-10.pdf"
        in endpoint.posts[-1]["message"]
    )
    assert (tmp_path / "reports" / "board-report-2026-10.pdf").read_bytes().startswith(b"%PDF-")
    assert scheduler.tick(datetime(2026, 11, 20, 6, 0, tzinfo=UTC)) == []  # sent once
    assert len(endpoint.posts) == 4
    # a new scheduler (a restart of serve) reads the record and does not send again
    again = ReportScheduler(settings, demo.series, tmp_path, policy=no_wait())
    assert again.tick(datetime(2026, 11, 21, tzinfo=UTC)) == [] and len(endpoint.posts) == 4


def test_serve_attaches_the_scheduler_only_with_a_report_section(
    demo: Demo, tmp_path: Path
) -> None:
    from growthwatch.config.loader import build_config

    class FakeService:
        def __init__(self, raw: dict[str, Any]) -> None:
            self.config = build_config(raw, base=tmp_path)
            self.series = demo.series

    assert attach(FakeService({"products": [{"id": "acme-crm"}]})) is None
    attached = attach(FakeService({"products": [{"id": "acme-crm"}], "report": {"day": 1}}))
    assert isinstance(attached, ReportScheduler) and attached.settings.at.hour == 6
    attached.close()


def test_the_command_sends_to_the_configured_targets(
    demo: Demo, endpoint: JsonEndpoint, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    from growthwatch.cli import main

    monkeypatch.setenv("BOARD_JSON_URL", endpoint.url)
    config = tmp_path / "growthwatch.yaml"
    config.write_text(
        f"storage: {{data_dir: {demo.data_dir}}}\n"
        "products: [{id: acme-crm, name: Acme CRM}, {id: kumo-invoicing}]\n"
        "report: {products: [acme-crm, kumo-invoicing], delivery: ['${BOARD_JSON_URL}'],"
        " attach_pdf: false}\n"
    )
    out = tmp_path / "board.pdf"
    code = main(["report", "--config", str(config), "--month", "2026-10", "--send",
                 "--out", str(out)])  # fmt: skip
    assert code == 0, capsys.readouterr().err
    (post,) = endpoint.posts
    assert post["attachments"] == [] and "Selected products MRR" in post["message"]
    assert "sent to json://127.0.0.1" in capsys.readouterr().out
    assert SentRecord(demo.data_dir / "reports" / "sent.jsonl").delivered("2026-10")


def test_the_real_serve_service_attaches_the_report(tmp_path: Path) -> None:
    from exporters.service import Service
    from growthwatch.config.loader import build_config

    config = build_config({"products": [{"id": "acme-crm"}], "report": {"time": "07:00"}},
                          base=tmp_path)  # fmt: skip
    service = Service(config)
    try:
        service._attach_components()
        scheduler = service.components["reports.service"]
        assert isinstance(scheduler, ReportScheduler) and scheduler.reader is service.series
        assert scheduler.settings.at.hour == 7
    finally:
        service.close()
