"""Deliver a report through apprise (e-mail with the PDF attached, Slack with the file or a
link, any other apprise target), with growthwatch's one ``RetryPolicy`` and a record of
what was sent.

apprise because it speaks every notification service a board's assistant might ask for
with one URL each (``mailtos://``, ``slack://``, ``msteams://``, ``json://`` ...) and
attaches files where the service can take them. Each URL is sent on its own: one failing
target is retried and recorded without holding back the others.

The record (``reports/sent.jsonl`` in the data dir, one JSON line per attempt) holds the
month, the target (apprise's privacy form of the URL: no secrets, plus a hash of the full
URL to recognise it again), outcome, attempts and the PDF's SHA-256. The scheduler reads it
so that a month already delivered to a target is never sent there again.
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

import apprise

from growthwatch import RetriesExhausted, Retryable, RetryPolicy

log = logging.getLogger(__name__)
RECORD_FILE = Path("reports") / "sent.jsonl"


@dataclass(frozen=True)
class Delivery:
    month: str
    target: str  # apprise's privacy form of the URL
    target_id: str  # sha256 of the full URL, first 16 hex digits
    ok: bool
    attempts: int
    error: str
    at: str  # ISO time, UTC
    file: str
    sha256: str


def target_id(url: str) -> str:
    return hashlib.sha256(url.encode()).hexdigest()[:16]


class SentRecord:
    """Append-only JSON lines of deliveries; safe to share between threads."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()

    def add(self, delivery: Delivery) -> None:
        with self._lock:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with self.path.open("a") as out:
                out.write(json.dumps(asdict(delivery), sort_keys=True) + "\n")

    def entries(self) -> list[Delivery]:
        if not self.path.exists():
            return []
        out = []
        for line in self.path.read_text().splitlines():
            try:
                out.append(Delivery(**json.loads(line)))
            except (ValueError, TypeError):
                log.warning("report record %s: unreadable line skipped", self.path)
        return out

    def delivered(self, month: str) -> set[str]:
        """Target ids the report of ``month`` reached."""
        return {d.target_id for d in self.entries() if d.month == month and d.ok}


def _privacy(url: str) -> str:
    server = apprise.Apprise()
    if not server.add(url):
        return url.split(":", 1)[0] + "://(invalid)"
    return str(server[0].url(privacy=True))


def send(
    pdf: Path,
    *,
    month: str,
    urls: Sequence[str],
    title: str,
    body: str,
    attach: bool = True,
    policy: RetryPolicy | None = None,
    record: SentRecord | None = None,
    now: datetime | None = None,
) -> list[Delivery]:
    """Send to every URL (retrying each through ``policy``); record and return outcomes."""
    policy = policy or RetryPolicy(max_retries=3, backoff=2.0, max_delay=60.0)
    digest = hashlib.sha256(pdf.read_bytes()).hexdigest()
    results = []
    for url in urls:
        shown = _privacy(url)
        attempts = 0
        error = ""
        server = apprise.Apprise()
        if not server.add(url):
            error = "not an apprise URL apprise can use"
        else:

            def attempt(server: apprise.Apprise = server, shown: str = shown) -> None:
                nonlocal attempts
                attempts += 1
                files = apprise.AppriseAttachment(str(pdf)) if attach else None
                if not server.notify(title=title, body=body, attach=files):
                    raise Retryable(f"{shown}: the service did not accept the notification")

            try:
                policy.call(attempt, what=f"board report {month} to {shown}")
            except RetriesExhausted as exc:
                error = exc.last
        delivery = Delivery(
            month=month, target=shown, target_id=target_id(url), ok=not error,
            attempts=attempts, error=error,
            at=(now or datetime.now(UTC)).strftime("%Y-%m-%dT%H:%M:%SZ"),
            file=str(pdf), sha256=digest,
        )  # fmt: skip
        if record is not None:
            record.add(delivery)
        (log.info if delivery.ok else log.error)(
            "board report %s -> %s: %s", month, shown, "sent" if delivery.ok else error
        )
        results.append(delivery)
    return results


def message(title: str, highlights: Sequence[str], pdf: Path, link_base: str | None,
            attach: bool) -> str:  # fmt: skip
    """The notification's text: the highlights, and where the PDF is."""
    lines = [title, "", *(f"• {h}" for h in highlights), ""]
    if link_base:
        lines.append(f"Report: {link_base.rstrip('/')}/{pdf.name}")
    if attach:
        lines.append(f"The report is attached ({pdf.name}).")
    return "\n".join(lines).strip() + "\n"
