"""Session fixtures: one real broker per broker kind (Tansu, Apache Kafka) and one real
PostgreSQL + pgvector for the whole run.

Every test that reaches the broker runs once per broker kind: `--broker tansu|kafka|both` (or
TASKSAGE_TEST_BROKERS=tansu,kafka; default both). Without Java the Apache Kafka leg is skipped
with a notice; with CI=true a skipped Apache Kafka leg fails the run instead.
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
from streams.embedded_kafka import INSTALL_HINT, EmbeddedKafka, fetch_jars, java_missing
from streams.runtime import Endpoints, Runtime, open_runtime
from streams.settings import REPO_ROOT, Settings
from streams.worker.loop import Worker

_counter = itertools.count(1)
BROKER_KINDS = ("tansu", "kafka")
# Where `make kafka` puts the Apache Kafka jars (the project's default data dir).
JARS_DATA_DIR = REPO_ROOT / ".tasksage"
AnyBroker = EmbeddedBroker | EmbeddedKafka


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--broker",
        choices=("tansu", "kafka", "both"),
        default=None,
        help="which broker(s) the integration and fault tests run on [env TASKSAGE_TEST_BROKERS; default both]",
    )


def selected_brokers(config: pytest.Config) -> list[str]:
    chosen = config.getoption("--broker") or os.environ.get("TASKSAGE_TEST_BROKERS", "both")
    kinds = list(BROKER_KINDS) if chosen == "both" else [k.strip() for k in chosen.split(",") if k.strip()]
    unknown = [k for k in kinds if k not in BROKER_KINDS]
    if unknown:
        raise pytest.UsageError(f"unknown broker {unknown}: choose from tansu, kafka, both")
    return kinds


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Run every test that needs a broker once per selected broker kind (grouped by kind)."""
    if "broker_kind" in metafunc.fixturenames:
        kinds = selected_brokers(metafunc.config)
        metafunc.parametrize("broker_kind", kinds, indirect=True, scope="session", ids=kinds)


@pytest.fixture(scope="session")
def broker_kind(request: pytest.FixtureRequest) -> str:
    kind: str = request.param
    if kind == "kafka":
        problem = java_missing()
        if problem:
            message = f"Apache Kafka leg skipped: {problem}; {INSTALL_HINT}"
            if os.environ.get("CI", "").lower() == "true":
                pytest.fail(f"{message} (CI=true: the Apache Kafka leg must run)", pytrace=False)
            pytest.skip(message)
    return kind


@pytest.fixture(scope="session")
def service_dir() -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="tasksage-test-") as tmp:
        yield Path(tmp)


@pytest.fixture(scope="session")
def broker_factory(broker_kind: str) -> Callable[[Path], AnyBroker]:
    """Makes a new (not started) broker of this leg's kind with its files under a directory."""

    def make(where: Path) -> AnyBroker:
        where.mkdir(parents=True, exist_ok=True)
        if broker_kind == "kafka":
            return EmbeddedKafka(free_port(), where / "kafka", jars=fetch_jars(JARS_DATA_DIR))
        return EmbeddedBroker(free_port(), where / "broker.log")

    return make


@pytest.fixture(scope="session")
def broker(
    broker_factory: Callable[[Path], AnyBroker], service_dir: Path, broker_kind: str
) -> Iterator[AnyBroker]:
    """This leg's shared broker."""
    b = broker_factory(service_dir / broker_kind)
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
async def endpoints(broker: AnyBroker, postgres: EmbeddedPostgres) -> AsyncIterator[Endpoints]:
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
