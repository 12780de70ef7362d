"""What the API holds while it runs: the database pool, the search session of the active
model, the planner that decides schedules exactly as the worker does, and the publisher."""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field

from processors.contracts import TaskCreated, TaskSchedule
from processors.errors import ConfigurationError
from processors.pipeline.results import ResultApplier
from processors.pipeline.tasks import TaskCreatedProcessor
from processors.postgres import knowledge, task_views
from processors.postgres.errors import PostgresError
from processors.postgres.pool import Pool
from streams.client import TasksagePublisher
from streams.runtime import Endpoints, open_pool, pipeline_config
from streams.search_runtime import SearchSession, open_search
from streams.settings import Settings

log = logging.getLogger(__name__)
# The tier table is the worker's (written at its start): read again after this long.
TIERS_TTL_S = 10.0
# The query embeddings' usage counts are written once a second, merged, instead of once per
# request: every request would otherwise upsert the same row of embedding_usage.
USAGE_INTERVAL_S = 1.0


@dataclass(slots=True)
class ApiRuntime:
    settings: Settings
    endpoints: Endpoints
    pool: Pool
    publisher: TasksagePublisher | None = None
    _search: SearchSession | None = None
    _planner: TaskCreatedProcessor | None = None
    _tiers_read_at: float = 0.0
    _lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    @classmethod
    async def open(cls, settings: Settings, endpoints: Endpoints) -> ApiRuntime:
        try:
            # The API keeps no session state on its connections and releases several per
            # request: skipping the reset round trip on release is a tenth of its CPU.
            pool = await open_pool(
                settings, endpoints.dsn, application_name="tasksage-api", reset_sessions=False
            )
        except ValueError as exc:  # the pool's vector codec: the extension is not installed yet
            raise ConfigurationError(
                f"the database has no tasksage schema yet ({exc})",
                hint="run `tasksage migrate` or start the worker once",
            ) from None
        except (OSError, PostgresError) as exc:
            raise ConfigurationError(
                f"cannot connect to PostgreSQL: {exc}", hint="check DATABASE_URL"
            ) from None
        runtime = cls(settings, endpoints, pool)
        try:
            runtime.publisher = TasksagePublisher(settings, endpoints.bootstrap)
            await runtime.publisher.__aenter__()
        except Exception as exc:
            await pool.close()
            raise ConfigurationError(
                f"cannot connect to Kafka at {endpoints.bootstrap}: {exc}",
                hint="check KAFKA_BOOTSTRAP_SERVERS",
            ) from None
        return runtime

    async def close(self) -> None:
        if self.publisher is not None:
            await self.publisher.__aexit__(None, None, None)
        if self._search is not None:
            await self._search.aclose()
        await self.pool.close()

    async def search(self) -> SearchSession:
        """The active model's search session, opened on first use (the worker registers the
        model; until then searches and recommendations answer 503 and /readyz says why)."""
        if self._search is None:
            async with self._lock:
                if self._search is None:
                    self._search = await open_search(
                        self.settings, self.pool, usage_interval_s=USAGE_INTERVAL_S
                    )
        return self._search

    async def planner(self) -> TaskCreatedProcessor:
        """The worker's own task processor, used only for its read-only `plan` (embed, read the
        history, search neighbours, decide): the API's schedules are the worker's by
        construction. Its tier table is the one the worker stored."""
        session = await self.search()
        now = time.monotonic()
        if self._planner is None or now - self._tiers_read_at > TIERS_TTL_S:
            async with self.pool.acquire() as conn:
                tiers = await knowledge.load_tiers(conn)
            if not tiers:
                raise ConfigurationError(
                    "no tier table is stored yet", hint="start the worker once: it stores the tier table"
                )
            if self._planner is None:
                config = pipeline_config(self.settings)
                applier = ResultApplier(
                    session.embedder.model_name,
                    config.learning_rate,
                    config.max_event_bytes,
                    learned=config.learned,
                )
                self._planner = TaskCreatedProcessor(
                    self.pool,
                    session.embedder,
                    config,
                    tiers,
                    applier,
                    history_max_age_s=self.settings.api_history_max_age_s,
                )
            else:
                self._planner.tiers = list(tiers)
            self._tiers_read_at = now
        return self._planner

    async def recommend(self, task: TaskCreated) -> TaskSchedule:
        planner = await self.planner()
        _, schedules = await planner.plan([task])
        return schedules[0]

    async def ready(self) -> dict[str, str]:
        """What is not ready, by component (empty: ready)."""
        problems: dict[str, str] = {}
        try:
            async with self.pool.acquire() as conn:
                await task_views.ping(conn)
        except Exception as exc:
            problems["database"] = f"{type(exc).__name__}: {exc}"
            return problems
        try:
            await self.search()
        except Exception as exc:
            problems["model"] = str(exc)
        return problems
