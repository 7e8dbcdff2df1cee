"""Private, throw-away instances of the real servers, for tests and benchmarks.

Each instance lives in its own temp folder on free loopback ports, so a test never touches
a server it did not start (a developer's InfluxDB on 8086 stays untouched) and two runs can
go side by side. Start-up waits on the server's own health signal, not a sleep.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import requests

INFLUXD = os.environ.get("GROWTHWATCH_INFLUXD", "/usr/bin/influxd")
PG_BIN = Path(os.environ.get("GROWTHWATCH_PG_BIN", "/usr/lib/postgresql/15/bin"))


class ServerUnavailable(RuntimeError):
    """The server binary is missing or did not come up; the message says how to fix it."""


def free_port() -> int:
    with contextlib.closing(socket.socket(socket.AF_INET, socket.SOCK_STREAM)) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def terminate(process: subprocess.Popen[bytes] | None) -> None:
    """SIGTERM a server and wait for its clean exit; SIGKILL it after 15 s."""
    if process is None or process.poll() is not None:
        return
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


@dataclass
class InfluxServer:
    """A real InfluxDB 1.x (``influxd``) in a private folder.

    ``stop()`` and ``start()`` keep the data folder, so a test can take the server away in
    the middle of an ingest and bring the same database back.
    """

    root: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="gw-influx-")))
    http_port: int = field(default_factory=free_port)
    rpc_port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    def _write_config(self) -> Path:
        conf = self.root / "influxdb.conf"
        conf.write_text(
            f"""
reporting-enabled = false
bind-address = "127.0.0.1:{self.rpc_port}"
[meta]
  dir = "{self.root}/meta"
[data]
  dir = "{self.root}/data"
  wal-dir = "{self.root}/wal"
  query-log-enabled = false
  wal-fsync-delay = "0s"
[monitor]
  store-enabled = false
[http]
  bind-address = "127.0.0.1:{self.http_port}"
  log-enabled = false
  max-body-size = 0
[continuous_queries]
  enabled = false
"""
        )
        return conf

    def start(self, timeout: float = 30.0) -> InfluxServer:
        if not Path(INFLUXD).exists():
            raise ServerUnavailable(
                f"{INFLUXD} not found: install it with `apt-get install -y influxdb` "
                "(scripts/test does this) or set GROWTHWATCH_INFLUXD"
            )
        conf = self._write_config()
        log = open(self.root / "influxd.log", "ab")  # noqa: SIM115 - lives with the process
        self.process = subprocess.Popen(
            [INFLUXD, "-config", str(conf)], stdout=log, stderr=subprocess.STDOUT
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise ServerUnavailable(
                    f"influxd exited with {self.process.returncode}; see {self.root}/influxd.log"
                )
            with contextlib.suppress(requests.RequestException):
                if requests.get(f"{self.url}/ping", timeout=0.5).status_code == 204:
                    return self
            time.sleep(0.05)
        self.stop()
        raise ServerUnavailable(f"influxd did not answer /ping within {timeout}s")

    def stop(self) -> None:
        terminate(self.process)
        self.process = None

    def kill(self) -> None:
        """Stop without a clean shutdown (SIGKILL), as a crash would."""
        if self.process is not None:
            self.process.kill()
            self.process.wait()
        self.process = None

    def query(self, q: str, db: str) -> list[dict[str, object]]:
        """Run InfluxQL directly (tests use this as the independent reader)."""
        resp = requests.post(f"{self.url}/query", params={"db": db, "q": q}, timeout=30)
        resp.raise_for_status()
        result = resp.json()["results"][0]
        if "error" in result:
            raise RuntimeError(result["error"])
        rows: list[dict[str, object]] = []
        for series in result.get("series", []):
            for values in series["values"]:
                row = dict(zip(series["columns"], values, strict=True))
                row.update(series.get("tags", {}))
                rows.append(row)
        return rows

    def cleanup(self) -> None:
        self.stop()
        shutil.rmtree(self.root, ignore_errors=True)


@contextlib.contextmanager
def influx_server() -> Iterator[InfluxServer]:
    server = InfluxServer().start()
    try:
        yield server
    finally:
        server.cleanup()


@dataclass
class PostgresServer:
    """A real PostgreSQL cluster owned by the ``postgres`` user in a private folder.

    initdb refuses to run as root, so when we are root the cluster is created and run
    as ``postgres`` through ``runuser``; the socket lives in the cluster folder.
    """

    root: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="gw-pg-")))
    port: int = field(default_factory=free_port)

    @property
    def url(self) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres"

    def _run(self, *args: str) -> None:
        cmd = [str(PG_BIN / args[0]), *args[1:]]
        if os.geteuid() == 0:
            cmd = ["runuser", "-u", "postgres", "--", *cmd]
        subprocess.run(cmd, check=True, capture_output=True)

    def start(self) -> PostgresServer:
        if not (PG_BIN / "initdb").exists():
            raise ServerUnavailable(
                f"{PG_BIN}/initdb not found: `apt-get install -y postgresql` (scripts/test does)"
            )
        data = self.root / "data"
        if os.geteuid() == 0:
            shutil.chown(self.root, "postgres", "postgres")
        self._run("initdb", "-D", str(data), "-A", "trust", "-U", "postgres")
        self._run(
            "pg_ctl", "-D", str(data), "-w", "-l", str(self.root / "log"), "-o",
            f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1", "start",
        )  # fmt: skip
        return self

    def stop(self) -> None:
        with contextlib.suppress(subprocess.CalledProcessError):
            self._run("pg_ctl", "-D", str(self.root / "data"), "-m", "fast", "stop")

    def cleanup(self) -> None:
        self.stop()
        shutil.rmtree(self.root, ignore_errors=True)


BQEMULATOR = os.environ.get("GROWTHWATCH_BQEMULATOR", "")
_DUCKDB_VERSION = "v1.5.5"  # the duckdb pin in pyproject.toml; the extension must match


# scripts/test installs the emulator in its own venv (its pytest plugin and dependencies
# stay out of growthwatch's); GROWTHWATCH_BQEMULATOR_VENV points at another one.
BQ_VENV = Path(os.environ.get("GROWTHWATCH_BQEMULATOR_VENV",
                              Path(__file__).resolve().parents[2] / ".venv-bq"))  # fmt: skip


def _spatial_extension() -> Path:
    """The DuckDB spatial extension shipped by ``duckdb-extension-spatial`` in the
    emulator's venv (the version must be that venv's duckdb, pinned to 1.5.5)."""
    found = sorted(BQ_VENV.glob(f"lib/python*/site-packages/duckdb_extension_spatial/extensions/"
                                f"{_DUCKDB_VERSION}/spatial.duckdb_extension"))  # fmt: skip
    if not found:
        raise ServerUnavailable(
            f"duckdb-extension-spatial=={_DUCKDB_VERSION[1:]} not found in {BQ_VENV} "
            "(scripts/test installs it with the emulator)"
        )
    return found[0]


@dataclass
class BigQueryEmulator:
    """The BigQuery emulator (``bqemulator``, DuckDB inside) on free loopback ports.

    It loads DuckDB's ``spatial`` extension on start and, offline, cannot download it: the
    file from ``duckdb-extension-spatial`` is copied into ``$HOME/.duckdb/extensions`` of a
    private HOME given to the emulator's process only. In-memory (ephemeral) storage.
    """

    project: str = "growthwatch-test"
    root: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="gw-bq-")))
    rest_port: int = field(default_factory=free_port)
    grpc_port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.rest_port}"

    @property
    def storage_endpoint(self) -> str:
        """host:port of its BigQuery Storage Read API (plain gRPC)."""
        return f"127.0.0.1:{self.grpc_port}"

    def _binary(self) -> str:
        if BQEMULATOR:
            return BQEMULATOR
        candidate = BQ_VENV / "bin" / "bqemulator"
        if not candidate.exists():
            raise ServerUnavailable(
                f"{candidate} not found: scripts/test installs bqemulator==1.4.0 there "
                "(or set GROWTHWATCH_BQEMULATOR to its binary)"
            )
        return str(candidate)

    def start(self, timeout: float = 60.0) -> BigQueryEmulator:
        binary = self._binary()
        home = self.root / "home"
        ext_dir = home / ".duckdb" / "extensions" / _DUCKDB_VERSION / "linux_amd64"
        ext_dir.mkdir(parents=True, exist_ok=True)
        shutil.copy(_spatial_extension(), ext_dir / "spatial.duckdb_extension")
        # Its Storage Read API sends each stream's batches of 65,536 rows as single gRPC
        # messages, capped by this setting (default 10 MiB + 1): archive event rows (~250 B)
        # make 16 MB messages. Real BigQuery sizes its messages itself.
        env = {**os.environ, "HOME": str(home),
               "BQEMU_WRITE_API_MAX_REQUEST_BYTES": str(256 * 1024 * 1024)}  # fmt: skip
        log = open(self.root / "bqemulator.log", "ab")  # noqa: SIM115 - lives with the process
        self.process = subprocess.Popen(
            [binary, "start", "--rest-host", "127.0.0.1", "--rest-port", str(self.rest_port),
             "--grpc-host", "127.0.0.1", "--grpc-port", str(self.grpc_port),
             "--project", self.project, "--log-level", "warning"],
            stdout=log, stderr=subprocess.STDOUT, env=env,
        )  # fmt: skip
        probe = f"{self.url}/bigquery/v2/projects/{self.project}/datasets"
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise ServerUnavailable(
                    f"bqemulator exited with {self.process.returncode}; see {self.root}/bqemulator.log"
                )
            with contextlib.suppress(requests.RequestException):
                if requests.get(probe, timeout=0.5).status_code == 200:
                    return self
            time.sleep(0.1)
        self.stop()
        raise ServerUnavailable(f"bqemulator did not answer within {timeout}s")

    def client(self) -> object:
        """A real ``google.cloud.bigquery.Client`` pointed at the emulator."""
        from google.api_core.client_options import ClientOptions
        from google.auth.credentials import AnonymousCredentials
        from google.cloud import bigquery

        return bigquery.Client(project=self.project, credentials=AnonymousCredentials(),
                               client_options=ClientOptions(api_endpoint=self.url))  # fmt: skip

    def stop(self) -> None:
        terminate(self.process)
        self.process = None

    def cleanup(self) -> None:
        self.stop()
        shutil.rmtree(self.root, ignore_errors=True)
