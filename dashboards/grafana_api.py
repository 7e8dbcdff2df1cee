"""Grafana's HTTP API through ``grafana-client``: upload boards, post annotations.

File provisioning is the normal path (``provisioning/``); the API is for a Grafana that
cannot mount our files (Grafana Cloud) and for the detector's annotations.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any
from urllib.parse import urlparse

from grafana_client import GrafanaApi

from growthwatch import resolve_env


def grafana_client(section: Mapping[str, Any], *, timeout: float = 10.0) -> GrafanaApi:
    """A client for the ``grafana`` config section (``url``, ``token`` as ``${ENV}``)."""
    url = urlparse(str(section["url"]))
    token = resolve_env(section["token"], "grafana.token") if section.get("token") else None
    return GrafanaApi(
        auth=token, host=url.hostname or "localhost", port=url.port, protocol=url.scheme,
        url_path_prefix=url.path.strip("/"), timeout=timeout,
    )  # fmt: skip


def upload_dashboards(api: GrafanaApi, models: Iterable[Mapping[str, Any]], *,
                      folder_uid: str = "growthwatch") -> list[dict[str, Any]]:  # fmt: skip
    """Create the folder if needed, then create-or-overwrite every board in it."""
    try:
        api.folder.get_folder(folder_uid)
    except Exception:  # grafana_client raises GrafanaClientError subclasses on 404
        api.folder.create_folder("growthwatch", uid=folder_uid)
    results = []
    for model in models:
        body = {"dashboard": {**model, "id": None}, "folderUid": folder_uid, "overwrite": True,
                "message": "growthwatch dashboards upload"}  # fmt: skip
        results.append(api.dashboard.update_dashboard(body))
    return results


def annotate(api: GrafanaApi, *, time_ms: int, text: str, tags: Sequence[str],
             dashboard_uid: str | None = None, time_end_ms: int | None = None) -> dict[str, Any]:  # fmt: skip
    """Post an organisation annotation (tagged so the boards' "Detector notes" show it)."""
    result: dict[str, Any] = api.annotations.add_annotation(
        dashboard_uid=dashboard_uid, time_from=time_ms, time_to=time_end_ms, tags=list(tags),
        text=text,
    )
    return result
