"""Session fixtures: one real Tansu broker and one real PostgreSQL + pgvector for the whole run.

Each test gets its own database (created from scratch) and its own topic names and consumer
group, so tests never see each other's data.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
import tempfile
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from streams.embedded import EmbeddedBroker, EmbeddedPostgres, free_port
from streams.runtime import Endpoints, Runtime, open_runtime
from streams.settings import Settings
from streams.worker.loop import Worker

_counter = itertools.count(1)


@pytest.fixture(scope="session")
def service_dir() -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="tasksage-test-") as tmp:
        yield Path(tmp)


@pytest.fixture(scope="session")
def broker(service_dir: Path) -> Iterator[EmbeddedBroker]:
    """The embedded Kafka-protocol broker, or none when KAFKA_BOOTSTRAP_SERVERS points elsewhere."""
    b = EmbeddedBroker(free_port(), service_dir / "broker.log")
    b.start()
    yield b
    b.stop()


@pytest.fixture(scope="session")
def postgres(service_dir: Path) -> Iterator[EmbeddedPostgres]:
    pg = EmbeddedPostgres(service_dir / "pg")
    pg.start()
    yield pg
    pg.stop()


def _dsn_for(base: str, database: str) -> str:
    head, _, query = base.partition("?")
    root = head.rsplit("/", 1)[0]
    return f"{root}/{database}" + (f"?{query}" if query else "")


@pytest.fixture
async def endpoints(broker: EmbeddedBroker, postgres: EmbeddedPostgres) -> AsyncIterator[Endpoints]:
    """A fresh database for this test on the shared server, and the shared broker."""
    name = f"t{os.getpid()}_{next(_counter)}"
    admin = await asyncpg.connect(postgres.dsn)
    try:
        await admin.execute(f"CREATE DATABASE {name}")
    finally:
        await admin.close()
    yield Endpoints(broker.bootstrap, _dsn_for(postgres.dsn, name))
    admin = await asyncpg.connect(postgres.dsn)
    try:
        await admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
    finally:
        await admin.close()


@pytest.fixture
def make_settings(endpoints: Endpoints, tmp_path: Path) -> Callable[..., Settings]:
    """Settings with topics and consumer group unique to this test."""
    prefix = f"t{next(_counter)}-"

    def build(**overrides: Any) -> Settings:
        values: dict[str, Any] = {
            "kafka_bootstrap_servers": endpoints.bootstrap,
            "database_url": endpoints.dsn,
            "data_dir": tmp_path / "data",
            **Settings.model_validate({}).namespaced(prefix),
            "topic_partitions": 2,
            "metrics_port": 0,
            "session_timeout_ms": 6000,
            "heartbeat_interval_ms": 500,
            "snapshot_interval_s": 0.5,
            "retry_initial_s": 0.05,
            "retry_max_s": 0.5,
        }
        values.update(overrides)
        return Settings.model_validate(values)

    return build


@pytest.fixture
def settings(make_settings: Callable[..., Settings]) -> Settings:
    return make_settings()


@contextlib.asynccontextmanager
async def running_worker(settings: Settings, endpoints: Endpoints) -> AsyncIterator[tuple[Runtime, Worker]]:
    """A worker consuming in this process; stopped (gracefully) on exit."""
    runtime = await open_runtime(settings, endpoints)
    worker = Worker(runtime)
    ready = asyncio.Event()
    task = asyncio.create_task(worker.run(ready))
    try:
        await asyncio.wait_for(ready.wait(), 60)
        yield runtime, worker
    finally:
        worker.stop()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(task, 30)
        await runtime.close()


@pytest.fixture
def worker_factory(endpoints: Endpoints) -> Callable[[Settings], Any]:
    """`async with worker_factory(settings) as (runtime, worker): ...`"""

    def make(s: Settings) -> Any:
        return running_worker(s, Endpoints(s.kafka_bootstrap_servers or endpoints.bootstrap, endpoints.dsn))

    return make
