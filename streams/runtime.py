"""Resolve services (embedded or configured), open the database, build the pipeline."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from types import TracebackType

from processors.embedders import create_embedder
from processors.embedders.base import Embedder
from processors.errors import ConfigurationError
from processors.failures import Backoff, Verdict
from processors.pipeline.assembly import Pipeline, build_pipeline
from processors.pipeline.config import PipelineConfig
from processors.postgres import knowledge
from processors.postgres.embedding_models import ensure_indexes, register_model
from processors.postgres.errors import InsufficientPrivilege
from processors.postgres.migrations import migrate_database, startup_lock
from processors.postgres.pool import Conn, Pool, create_pool
from processors.scheduling.tiers import load_tiers
from streams.embedded import (
    EmbeddedBroker,
    EmbeddedPostgres,
    ServiceInfo,
    read_service_info,
    write_service_info,
)
from streams.embedded_kafka import EmbeddedKafka, fetch_jars
from streams.search_runtime import metered
from streams.settings import Settings

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Endpoints:
    bootstrap: str
    dsn: str
    embedded: bool = False


def resolve_endpoints(settings: Settings) -> Endpoints:
    """Configured services first, then those of a running `tasksage up`."""
    running = read_service_info(settings.data_dir)
    bootstrap = settings.kafka_bootstrap_servers or (running.kafka_bootstrap_servers if running else None)
    dsn = settings.database_url.get_secret_value() if settings.database_url else None
    dsn = dsn or (running.database_url if running else None)
    if not bootstrap or not dsn:
        missing = [n for n, v in (("KAFKA_BOOTSTRAP_SERVERS", bootstrap), ("DATABASE_URL", dsn)) if not v]
        raise ConfigurationError(
            f"no {' or '.join(missing)} configured and no `tasksage up` running in {settings.data_dir}",
            hint="start the embedded services with `tasksage up`, or set the environment variables",
        )
    return Endpoints(bootstrap, dsn)


def _embedded_broker(s: Settings, port: int) -> EmbeddedBroker | EmbeddedKafka:
    """The broker settings.embedded_broker names; Apache Kafka's jars are fetched on first use."""
    if s.embedded_broker == "kafka":
        jars = fetch_jars(s.kafka_jars_dir or s.data_dir)
        return EmbeddedKafka(port, s.data_dir / "kafka", jars=jars, heap=s.embedded_kafka_heap)
    return EmbeddedBroker(port, s.data_dir / "broker.log")


class EmbeddedServices(AbstractAsyncContextManager["EmbeddedServices"]):
    """Starts what is not configured: the Tansu broker and/or pgserver PostgreSQL."""

    def __init__(self, settings: Settings, *, kafka_port: int | None = None) -> None:
        self.settings = settings
        self.broker: EmbeddedBroker | EmbeddedKafka | None = None
        self.postgres: EmbeddedPostgres | None = None
        self.kafka_port = kafka_port or settings.embedded_kafka_port
        self.endpoints: Endpoints | None = None

    async def __aenter__(self) -> EmbeddedServices:
        import os

        s = self.settings
        s.data_dir.mkdir(parents=True, exist_ok=True)
        bootstrap = s.kafka_bootstrap_servers
        if not bootstrap:
            self.broker = _embedded_broker(s, self.kafka_port)
            self.broker.start()
            bootstrap = self.broker.bootstrap
        dsn = s.database_url.get_secret_value() if s.database_url else None
        if not dsn:
            self.postgres = EmbeddedPostgres(s.data_dir / "pg", s.embedded_postgres_shared_buffers_mb)
            dsn = self.postgres.start()
        self.endpoints = Endpoints(
            bootstrap, dsn, embedded=self.broker is not None or self.postgres is not None
        )
        write_service_info(s.data_dir, ServiceInfo(bootstrap, dsn, os.getpid()))
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        (self.settings.data_dir / "services.json").unlink(missing_ok=True)
        if self.broker:
            self.broker.stop()
        if self.postgres:
            self.postgres.stop()


async def open_pool(
    settings: Settings,
    dsn: str,
    *,
    max_size: int | None = None,
    min_size: int | None = None,
    application_name: str = "tasksage",
    setup: Callable[[Conn], Awaitable[None]] | None = None,
    reset_sessions: bool = True,
) -> Pool:
    """The pool every tasksage process uses; `setup` runs on each acquire (the bench's loggers)."""
    return await create_pool(
        dsn,
        min_size=settings.db_pool_min if min_size is None else min_size,
        max_size=max_size or settings.db_pool_max,
        server_settings={
            "hnsw.ef_search": str(settings.hnsw_ef_search),
            "application_name": application_name,
        },
        setup=setup,
        reset_sessions=reset_sessions,
    )


async def prepare_database(settings: Settings, dsn: str) -> None:
    """Migrations, in their own connection (the pool's codec needs the vector type to exist)."""
    await migrate_database(dsn)


async def prepare_model(settings: Settings, pool: Pool, embedder: Embedder) -> None:
    async with pool.acquire() as conn:
        await register_model(conn, embedder.model_name, embedder.dimension, settings.embedder)
        try:
            created = await ensure_indexes(
                conn,
                embedder.model_name,
                embedder.dimension,
                m=settings.hnsw_m,
                ef_construction=settings.hnsw_ef_construction,
            )
        except InsufficientPrivilege:
            # A least-privilege worker role (deploy/worker-role.sql) may not run DDL.
            log.warning(
                "no right to create the vector indexes of model %s: similarity searches scan without "
                "them until the owner role creates them (start the worker once with the owner's "
                "DATABASE_URL)",
                embedder.model_name,
            )
            return
        if created:
            log.info("created vector indexes: %s", ", ".join(created))


def pipeline_config(settings: Settings) -> PipelineConfig:
    return PipelineConfig(
        group_id=settings.consumer_group,
        schedules_topic=settings.topic_task_schedules,
        duplicates_topic=settings.topic_message_duplicates,
        dead_letter_topics={t: settings.dead_letter_topic(t) for t in settings.input_topics.values()},
        scheduler=settings.scheduler_config(),
        ranking=settings.ranking_config(),
        learned=settings.learned_config(),
        learning_rate=settings.learning_rate,
        duplicate_threshold=settings.duplicate_threshold,
        max_event_bytes=settings.max_event_bytes,
        index_queue_limit=settings.index_queue_limit,
        neighbour_ef_search=settings.neighbour_ef_search,
    )


@dataclass(slots=True)
class Runtime:
    settings: Settings
    endpoints: Endpoints
    pool: Pool
    embedder: Embedder
    pipeline: Pipeline

    async def close(self) -> None:
        await self.embedder.aclose()
        await self.pool.close()


async def open_runtime(
    settings: Settings,
    endpoints: Endpoints,
    *,
    on_retry: Callable[[Verdict, int, float], Awaitable[None]] | None = None,
    on_recovered: Callable[[], None] | None = None,
) -> Runtime:
    await prepare_database(settings, endpoints.dsn)
    pool = await open_pool(settings, endpoints.dsn)
    # Metered: every call is counted in embedding_usage and capped by the daily budget.
    embedder = metered(settings, pool, create_embedder(settings.embedder_config()), settings.embedder)
    tiers = load_tiers(settings.tiers_file)
    # Workers starting together take turns: creating indexes and replacing the tier table
    # concurrently collide on unique keys (and the loser would crash at start).
    async with pool.acquire() as conn, startup_lock(conn):
        await prepare_model(settings, pool, embedder)
        await knowledge.replace_tiers(conn, tiers)
    pipeline = build_pipeline(
        pool,
        embedder,
        pipeline_config(settings),
        tiers,
        settings.input_topics,
        Backoff(settings.retry_initial_s, settings.retry_max_s),
        settings.snapshot_size,
        on_retry=on_retry,
        on_recovered=on_recovered,
    )
    return Runtime(settings, endpoints, pool, embedder, pipeline)


__all__ = [
    "EmbeddedServices",
    "Endpoints",
    "Runtime",
    "Verdict",
    "open_runtime",
    "resolve_endpoints",
]
