"""Real processes for fault tests: `tasksage worker` subprocesses that can be killed, a dedicated
PostgreSQL that can be stopped and started, a broker that can be restarted, raw record I/O.

Workers get their whole configuration from the environment (TASKSAGE_*, KAFKA_BOOTSTRAP_SERVERS,
DATABASE_URL), exactly as in production.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from aiokafka import TopicPartition
from pydantic import SecretStr

from streams.kafka import ensure_topics, make_consumer, make_producer, partitions_of
from streams.settings import Settings

_ALIASES = {
    "kafka_bootstrap_servers": "KAFKA_BOOTSTRAP_SERVERS",
    "database_url": "DATABASE_URL",
    "openai_base_url": "OPENAI_BASE_URL",
    "openai_api_key": "OPENAI_API_KEY",
}


def settings_env(settings: Settings) -> dict[str, str]:
    """Environment variables that reproduce `settings` in another process (fields left at their
    defaults are not set; complex values are JSON, as pydantic-settings reads them)."""
    env: dict[str, str] = {}
    for name, info in type(settings).model_fields.items():
        value = getattr(settings, name)
        if value is None or (name not in _ALIASES and value == info.default):
            continue
        if isinstance(value, SecretStr):
            value = value.get_secret_value()
        if isinstance(value, dict | list | tuple | set):
            text = json.dumps(value if not isinstance(value, set) else sorted(value), default=str)
        else:
            text = str(value)
        env[_ALIASES.get(name, f"TASKSAGE_{name.upper()}")] = text
    return env


def child_env(settings: Settings) -> dict[str, str]:
    """This process' environment without tasksage settings, plus those of `settings`."""
    env = {
        k: v for k, v in os.environ.items() if not k.startswith("TASKSAGE_") and k not in _ALIASES.values()
    }
    env.update(settings_env(settings))
    env["PYTHONUNBUFFERED"] = "1"
    return env


def run_cli(settings: Settings, *args: str, timeout_s: float = 120.0) -> subprocess.CompletedProcess[str]:
    """Run `tasksage ARGS...` configured by `settings`, the way an operator would."""
    return subprocess.run(
        [*_command(), *args],
        check=False,
        env=child_env(settings),
        capture_output=True,
        text=True,
        timeout=timeout_s,
    )


def _command() -> list[str]:
    script = Path(sys.executable).with_name("tasksage")
    if script.exists():
        return [str(script)]
    return [sys.executable, "-c", "from streams.commands.cli import main; main()"]


class WorkerProcess:
    """One `tasksage worker` subprocess; its log goes to a file the test can show on failure."""

    def __init__(
        self,
        settings: Settings,
        log_dir: Path,
        name: str = "worker",
        command: list[str] | None = None,
        **overrides: Any,
    ) -> None:
        self.settings = settings.model_copy(update=overrides) if overrides else settings
        # The program to run instead of `tasksage worker` (a worker with a test hook).
        self.command = command
        self.log_dir = log_dir
        self.name = name
        self.process: subprocess.Popen[bytes] | None = None
        self.starts = 0
        self.log_dir.mkdir(parents=True, exist_ok=True)

    @property
    def log_path(self) -> Path:
        return self.log_dir / f"{self.name}.log"

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process else None

    @property
    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def start(self) -> WorkerProcess:
        assert not self.alive, f"{self.name} is already running"
        env = child_env(self.settings)
        self.starts += 1
        log = open(self.log_path, "ab")  # noqa: SIM115 - the child owns it until it exits
        log.write(f"\n===== start #{self.starts} at {time.strftime('%H:%M:%S')} =====\n".encode())
        log.flush()
        self.process = subprocess.Popen(
            self.command or [*_command(), "worker"],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=str(self.log_dir),
        )
        log.close()
        return self

    def kill(self) -> None:
        """SIGKILL: no cleanup, no goodbye to the group, nothing flushed."""
        if self.alive:
            assert self.process is not None
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(10)

    def terminate(self) -> None:
        if self.alive:
            assert self.process is not None
            self.process.send_signal(signal.SIGTERM)

    def wait(self, timeout_s: float) -> int:
        assert self.process is not None
        return self.process.wait(timeout_s)

    def stop(self, timeout_s: float = 30.0) -> None:
        """SIGTERM, then SIGKILL if it does not exit in time (cleanup after a test)."""
        if not self.alive:
            return
        self.terminate()
        try:
            self.wait(timeout_s)
        except subprocess.TimeoutExpired:
            self.kill()

    def tail(self, lines: int = 60) -> str:
        if not self.log_path.exists():
            return ""
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


@contextlib.contextmanager
def worker_processes(*workers: WorkerProcess) -> Iterator[tuple[WorkerProcess, ...]]:
    """Stop every worker at the end; print their log tails if the test failed."""
    try:
        yield workers
    except BaseException:
        for w in workers:
            sys.stderr.write(f"\n----- {w.name} (last lines of {w.log_path}) -----\n{w.tail()}\n")
        raise
    finally:
        for w in workers:
            w.stop()


class ControlledPostgres:
    """A PostgreSQL server of its own (pgserver) that a test may stop and start again."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self.server: Any = None
        self.dsn = ""

    def start(self) -> str:
        import pgserver  # type: ignore[import-untyped,unused-ignore]

        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.server = pgserver.get_server(str(self.data_dir.resolve()), cleanup_mode="stop")
        self.dsn = str(self.server.get_uri())
        return self.dsn

    def _pg_ctl(self, *args: str) -> None:
        from pgserver import _commands  # type: ignore[import-untyped,unused-ignore]

        _commands.pg_ctl(list(args), pgdata=self.data_dir.resolve(), user=self.server.system_user, timeout=30)

    def stop_server(self) -> None:
        """Fast shutdown: open connections are terminated, like a database restart in production."""
        self._pg_ctl("-w", "-m", "fast", "stop")

    def start_server(self) -> None:
        # The options pgserver starts it with: no TCP, a Unix socket in the directory of the DSN.
        socket_dir = parse_qs(urlsplit(self.dsn).query)["host"][0]
        self._pg_ctl("-w", "-o", '-h ""', "-o", f"-k {socket_dir}", "-l", str(self.data_dir / "log"), "start")

    def close(self) -> None:
        if self.server is not None:
            with contextlib.suppress(Exception):
                self.server.cleanup()
            self.server = None
        shutil.rmtree(self.data_dir, ignore_errors=True)


@dataclass(frozen=True, slots=True)
class Placed:
    """Where a published record landed."""

    topic: str
    partition: int
    offset: int


class RawProducer:
    """Sends (topic, key, value) as they are: no validation, like a broken upstream producer."""

    def __init__(self, settings: Settings) -> None:
        assert settings.kafka_bootstrap_servers
        self.producer = make_producer(settings, settings.kafka_bootstrap_servers, max_request_size=16_000_000)

    async def __aenter__(self) -> RawProducer:
        await self.producer.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.producer.stop()

    async def send(self, records: Iterable[tuple[str, bytes | None, bytes | None]]) -> list[Placed]:
        futures = [await self.producer.send(t, v, key=k) for t, k, v in records]
        placed = []
        for f in futures:
            meta = await f
            placed.append(Placed(meta.topic, meta.partition, meta.offset))
        return placed


async def send_records(
    settings: Settings, records: Iterable[tuple[str, bytes | None, bytes | None]]
) -> list[Placed]:
    async with RawProducer(settings) as producer:
        return await producer.send(records)


@dataclass(frozen=True, slots=True)
class ReadRecord:
    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: Mapping[str, bytes]


async def read_all(settings: Settings, topics: Iterable[str], idle_s: float = 1.0) -> list[ReadRecord]:
    """Every record of `topics` from the beginning until nothing new arrives for `idle_s`."""
    bootstrap = settings.kafka_bootstrap_servers
    assert bootstrap
    wanted = list(topics)
    await ensure_topics(settings, bootstrap, wanted)
    consumer = make_consumer(settings, bootstrap, group_id=None, fetch_max_wait_ms=50)
    await consumer.start()
    out: list[ReadRecord] = []
    try:
        # Assigned explicitly and read at least to the end offsets: on a loaded machine the first
        # fetch can take longer than idle_s, and an idle wait alone would return nothing.
        known = await partitions_of(settings, bootstrap, wanted)
        tps = [TopicPartition(t, p) for t in wanted for p in known[t]]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        ends = await consumer.end_offsets(tps)
        seen = {tp: 0 for tp in tps}
        quiet_since = time.monotonic()
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            reached = all(seen[tp] >= ends[tp] for tp in tps)
            if reached and time.monotonic() - quiet_since >= idle_s:
                break
            batch = await consumer.getmany(timeout_ms=200)
            for tp, records in batch.items():
                quiet_since = time.monotonic()
                seen[tp] = records[-1].offset + 1
                out.extend(
                    ReadRecord(r.topic, r.partition, r.offset, r.key, r.value, dict(r.headers or ()))
                    for r in records
                )
    finally:
        await consumer.stop()
    return sorted(out, key=lambda r: (r.topic, r.partition, r.offset))


async def wait_for_log(worker: WorkerProcess, text: str, timeout_s: float = 60.0, count: int = 1) -> None:
    """Until `text` appears `count` times in the worker's log (it is still running)."""
    import asyncio

    deadline = time.monotonic() + timeout_s
    while worker.log_text().count(text) < count:
        if not worker.alive:
            raise AssertionError(f"{worker.name} exited:\n{worker.tail()}")
        if time.monotonic() > deadline:
            raise AssertionError(f"{worker.name} did not log {text!r} within {timeout_s}s:\n{worker.tail()}")
        await asyncio.sleep(0.1)
