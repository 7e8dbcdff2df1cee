"""A local HTTP server that answers the parts of Grafana's HTTP API growthwatch uses, as
Grafana's API documentation describes them, and records every request.

- ``POST /api/live/push/:streamId`` (line protocol body, bearer token): 200 ``{}``
- ``POST /api/annotations``: 200 ``{"message": "Annotation added", "id": N}``
- ``GET /api/folders/:uid``: 404 ``{"message": "folder not found"}`` until created
- ``POST /api/folders``: 200 with the folder (``uid``, ``title``, ``id``)
- ``POST /api/dashboards/db``: 200 ``{"id", "uid", "url", "status": "success", "version", "slug"}``
Wrong or missing bearer token: 401 ``{"message": "Unauthorized"}``.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Recorded:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class FakeGrafana:
    token: str = "glsa_test"
    requests: list[Recorded] = field(default_factory=list)
    fail_next: list[int] = field(default_factory=list)  # statuses to answer before succeeding
    folders: dict[str, dict[str, Any]] = field(default_factory=dict)
    dashboards: dict[str, dict[str, Any]] = field(default_factory=dict)

    def start(self) -> FakeGrafana:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def _answer(self, status: int, body: Any) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                rec = Recorded(self.command, self.path, dict(self.headers.items()), body)
                fake.requests.append(rec)
                if self.headers.get("Authorization") != f"Bearer {fake.token}":
                    return self._answer(401, {"message": "Unauthorized"})
                if fake.fail_next:
                    return self._answer(fake.fail_next.pop(0), {"message": "internal error"})
                self._answer(*fake.route(rec))

            do_GET = do_POST = _handle

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        return self

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def route(self, rec: Recorded) -> tuple[int, Any]:
        path = rec.path.split("?")[0]
        if rec.method == "POST" and path.startswith("/api/live/push/"):
            return 200, {}
        if rec.method == "POST" and path == "/api/annotations":
            n = sum(1 for r in self.requests if r.path == "/api/annotations")
            return 200, {"message": "Annotation added", "id": n}
        if rec.method == "GET" and path.startswith("/api/folders/"):
            uid = path.rsplit("/", 1)[1]
            if uid in self.folders:
                return 200, self.folders[uid]
            return 404, {"message": "folder not found", "status": "not-found"}
        if rec.method == "POST" and path == "/api/folders":
            body = rec.json()
            folder = {"id": len(self.folders) + 1, "uid": body["uid"], "title": body["title"]}
            self.folders[body["uid"]] = folder
            return 200, folder
        if rec.method == "POST" and path == "/api/dashboards/db":
            body = rec.json()
            board = body["dashboard"]
            if body.get("folderUid") not in self.folders:
                return 400, {"message": "folder not found"}
            version = self.dashboards.get(board["uid"], {}).get("version", 0) + 1
            self.dashboards[board["uid"]] = {**board, "version": version}
            return 200, {"id": len(self.dashboards), "uid": board["uid"], "status": "success",
                         "url": f"/d/{board['uid']}/x", "version": version, "slug": "x"}  # fmt: skip
        return 404, {"message": "Not found"}

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
