"""Google Analytics 4: sessions and users by channel per day from the Data API ``runReport``.

``POST {api_base}/v1beta/properties/{id}:runReport`` over REST with a service account
(google-auth signs a JWT and exchanges it at the key file's ``token_uri``; the session
refreshes the token by itself). Dimensions ``date`` and ``sessionDefaultChannelGroup``,
metrics ``sessions`` and ``totalUsers``, paged with ``limit``/``offset`` until
``rowCount``.

Freshness: GA4 standard data is hours late and revised for 24-48 hours, so every run
re-reads ``lookback`` (default 3 days) before the cursor, and the per-(day, channel) value
already stored is kept in the state file:

- sessions are additive: the first read of a day/channel stores a ``session`` event with
  its sessions, each later read that finds more stores the difference as a revision
  (``...:r1``, ``:r2``; same revision, same key). GA4 rarely revises down; a decrease is
  logged and counted (reason ``revised_down``) and the higher figure stays;
- users are not additive (one user in two reads is one user), so the day's users per
  channel become a ``kpi`` event (``ga4_users_<channel>``) once the day is older than the
  lookback, i.e. final.

Dates are the property's reporting days, stored at 00:00 UTC of that date.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator, Mapping
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any, ClassVar

import google.auth.exceptions
import requests
from google.auth.transport.requests import AuthorizedSession
from google.oauth2 import service_account

from exporters.base import (
    Batch,
    HttpStream,
    Rejection,
    SourceAuthError,
    day_windows,
    invalid_reason,
)
from growthwatch import clock
from growthwatch.config.schema import SECRET
from growthwatch.events import EventType, EventValidationError, GrowthEvent

log = logging.getLogger(__name__)

SOURCE = "ga4"
SCOPE = "https://www.googleapis.com/auth/analytics.readonly"
DEFAULT_BASE = "https://analyticsdata.googleapis.com"
DIMENSIONS = ("date", "sessionDefaultChannelGroup")
METRICS = ("sessions", "totalUsers")


def channel_slug(channel: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", channel.lower()).strip("_") or "unassigned"


class GA4Stream(HttpStream):
    source_type: ClassVar[str] = SOURCE
    options: ClassVar[Mapping[str, Any]] = {
        "property_id": {"type": ["integer", "string"]},
        "credentials_file": SECRET,
        "api_base": {"type": "string", "format": "uri"},
    }
    required: ClassVar[tuple[str, ...]] = ("property_id", "credentials_file")
    replication_key: ClassVar[str] = "date"
    schema: ClassVar[dict[str, str]] = {
        "date": "string YYYYMMDD (dimension; the replication key)",
        "sessionDefaultChannelGroup": "string (dimension; becomes metadata.channel)",
        "sessions": "integer as string (metric)",
        "totalUsers": "integer as string (metric)",
    }
    window_days: ClassVar[int] = 90
    page_size: int = 10_000

    default_base: ClassVar[str] = DEFAULT_BASE

    def setup(self, options: Mapping[str, Any]) -> None:
        self.property_id = str(options["property_id"])

    def open_session(self) -> requests.Session:
        path = self.config.secret("credentials_file")
        try:
            credentials = service_account.Credentials.from_service_account_file(
                path, scopes=[SCOPE]
            )
        except (OSError, ValueError) as exc:
            raise SourceAuthError(
                f"ga4: cannot read the service-account key file {path}: {exc}"
            ) from exc
        return AuthorizedSession(credentials)

    def run(self, since: datetime, until: datetime) -> Iterator[Batch]:
        final_before = clock.now().date() - timedelta(days=max(self.lookback.days, 1))
        for window in day_windows(since, until, self.window_days):
            yield self._batch(list(self._report(window.first, window.last)), final_before)
            yield window.checkpoint

    def _report(self, first: date, last: date) -> Iterator[dict[str, Any]]:
        url = f"{self.base}/v1beta/properties/{self.property_id}:runReport"
        offset = 0
        while True:
            body = {
                "dateRanges": [{"startDate": first.isoformat(), "endDate": last.isoformat()}],
                "dimensions": [{"name": d} for d in DIMENSIONS],
                "metrics": [{"name": m} for m in METRICS],
                "limit": self.page_size,
                "offset": offset,
                "keepEmptyRows": False,
            }
            try:
                resp = self.request(
                    "POST", url, json=body, timeout=(10, 120),
                    auth_hint="check that the service account in credentials_file has the "
                    f"Viewer role on GA4 property {self.property_id}",
                )  # fmt: skip
            except google.auth.exceptions.RefreshError as exc:
                raise SourceAuthError(
                    f"ga4: the service account could not obtain an access token ({exc}); "
                    "check credentials_file (key revoked? wrong project?)"
                ) from exc
            page = resp.json()
            rows = page.get("rows") or []
            yield from rows
            offset += len(rows)
            if not rows or offset >= int(page.get("rowCount") or 0):
                return

    def _batch(self, rows: list[dict[str, Any]], final_before: date) -> Batch:
        events: list[GrowthEvent] = []
        rejected: list[Rejection] = []
        updates: dict[str, dict[str, Any]] = {}
        for row in rows:
            try:
                day_text, channel = (v["value"] for v in row["dimensionValues"])
                sessions, users = (int(v["value"]) for v in row["metricValues"])
                day = datetime.strptime(day_text, "%Y%m%d").replace(tzinfo=UTC)
            except (KeyError, TypeError, ValueError) as exc:
                rejected.append(Rejection("malformed_record", f"{exc!r}", repr(row)[:2000]))
                continue
            key = f"{day_text}:{channel}"
            known = self.state.get_object(self.stream_id, key) or {"sessions": 0, "rev": -1}
            record: dict[str, Any] = dict(known)
            base_id = f"{self.property_id}:{day_text}:{channel_slug(channel)}"
            try:
                if sessions > known["sessions"]:
                    rev = int(known["rev"]) + 1
                    events.append(GrowthEvent(
                        product=self.product, type=EventType.SESSION, timestamp=day,
                        value=Decimal(sessions - known["sessions"]),
                        metadata={"channel": channel, "revision": rev, "users": users},
                        source=SOURCE, source_id=f"{base_id}:r{rev}", kind="session",
                    ))  # fmt: skip
                    record.update(sessions=sessions, rev=rev)
                elif sessions < known["sessions"]:
                    rejected.append(Rejection(
                        "revised_down",
                        f"{key}: GA4 now reports {sessions} sessions, {known['sessions']} stored",
                    ))  # fmt: skip
                if day.date() < final_before and not known.get("users_final"):
                    events.append(GrowthEvent(
                        product=self.product, type=EventType.KPI, timestamp=day,
                        value=Decimal(users),
                        metadata={"kpi": f"ga4_users_{channel_slug(channel)}",
                                  "channel": channel},
                        source=SOURCE, source_id=f"{base_id}:users", kind="kpi",
                    ))  # fmt: skip
                    record["users_final"] = True
            except EventValidationError as exc:
                rejected.append(Rejection(invalid_reason(exc.field), str(exc), repr(row)[:2000]))
                continue
            if record != known:
                updates[key] = record

        def commit() -> None:
            for key, value in updates.items():
                self.state.put_object(self.stream_id, key, value)

        return Batch(events=events, rejected=rejected, on_commit=commit)
