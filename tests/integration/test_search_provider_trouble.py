"""Embedding provider trouble and the daily budget: consumption waits, nothing is dropped or
dead-lettered, and everything pending is embedded once the provider (or the budget) allows."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import pytest
from prometheus_client import REGISTRY

from processors.backfill import Backfill
from processors.contracts import MessageIngested
from processors.embedders import create_embedder
from processors.postgres.pool import create_pool
from processors.search.corpus import Corpus
from streams.client import TasksagePublisher
from streams.search_runtime import metered
from streams.settings import Settings
from tests.support.fake_openai import FakeOpenAIServer, Fault
from tests.support.waiting import eventually

MODEL = "text-embedding-3-small"
T0 = datetime(2026, 7, 1, tzinfo=UTC)


@pytest.fixture
def server() -> Iterator[FakeOpenAIServer]:
    with FakeOpenAIServer(default_dimension=1536, hang_s=3.0) as running:
        yield running


def openai_settings(
    make_settings: Callable[..., Settings], server: FakeOpenAIServer, **extra: Any
) -> Settings:
    return make_settings(
        embedder="openai",
        embedding_model=MODEL,
        embedding_dimension=64,
        openai_base_url=server.base_url,
        embed_timeout_s=0.5,  # a hanging provider times out quickly
        embed_max_retries=1,
        embed_circuit_reset_s=0.3,
        batch_max_records=20,
        **extra,
    )


async def publish(settings: Settings, count: int, seed: int) -> None:
    async with TasksagePublisher(settings) as publisher:
        for i, m in enumerate(Corpus(seed=3).messages(count, seed=seed, prefix=f"s{seed}-")):
            await publisher.publish_message(
                MessageIngested(
                    event_id=f"e-{m.message_id}",
                    occurred_at=T0 + timedelta(seconds=i),
                    message_id=m.message_id,
                    source=m.source,
                    author=m.author,
                    content=m.text,
                ),
                wait=False,
            )
        await publisher.flush()


async def counts(dsn: str) -> tuple[int, int, int]:
    """(messages stored, messages with a vector, dead letters written)."""
    conn = await asyncpg.connect(dsn)
    try:
        return (
            int(await conn.fetchval("SELECT count(*) FROM messages")),
            int(await conn.fetchval("SELECT count(*) FROM message_embeddings WHERE model = $1", MODEL)),
            int(await conn.fetchval("SELECT count(*) FROM inbox WHERE event_id LIKE 'rejected:%'")),
        )
    finally:
        await conn.close()


def sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


async def test_rate_limits_errors_timeouts_and_an_outage_delay_but_never_drop_messages(
    make_settings: Callable[..., Settings], endpoints: Any, worker_factory: Any, server: FakeOpenAIServer
) -> None:
    settings = openai_settings(make_settings, server)
    retries_before = sample("tasksage_retries_total", topic="*", error="EmbeddingUnavailable")
    # Throttling, server errors, hanging requests, then an outage long enough to open the circuit.
    server.inject(Fault.RATE_LIMIT, 3, retry_after_s=0.05)
    server.inject(Fault.SERVER_ERROR, 3)
    server.inject(Fault.HANG, 2)
    server.inject(Fault.SERVER_ERROR, 12)
    async with worker_factory(settings) as (_, worker):
        await publish(settings, 60, seed=1)
        seen_failing = False

        async def progress() -> tuple[int, int, int]:
            nonlocal seen_failing
            seen_failing = seen_failing or not worker.health.ok
            return await counts(endpoints.dsn)

        await eventually(progress, lambda c: c == (60, 60, 0), timeout_s=90, interval_s=0.05)
        assert worker.health.ok, worker.health.reason
    statuses = [r.status for r in server.requests]
    assert statuses.count(429) == 3 and statuses.count(500) == 15  # every fault was served...
    assert seen_failing, "the worker reported the provider outage on /healthz while it waited"
    assert sample("tasksage_retries_total", topic="*", error="EmbeddingUnavailable") > retries_before
    embedded = [t for r in server.requests if r.status == 200 for t in r.inputs]
    assert len(set(embedded)) == 60  # ...and every message was embedded after all


async def test_daily_budget_pauses_embedding_without_losing_events(
    make_settings: Callable[..., Settings], endpoints: Any, worker_factory: Any, server: FakeOpenAIServer
) -> None:
    prices = {MODEL: 20.0}  # USD per million tokens: the 40 messages need about 0.01
    tight = openai_settings(
        make_settings, server, embedding_prices_usd_per_million=prices, embedding_daily_budget_usd=0.0001
    )
    refusals_before = sample("tasksage_embedding_budget_refusals_total", provider="openai", model=MODEL)
    async with worker_factory(tight) as (_, worker):
        await publish(tight, 40, seed=2)

        async def refused() -> float:
            return sample("tasksage_embedding_budget_refusals_total", provider="openai", model=MODEL)

        await eventually(refused, lambda n: n >= refusals_before + 2, timeout_s=30)
        assert sample("tasksage_embedding_budget_exceeded") == 1.0
        assert "daily embedding budget" in (worker.health.reason or "")
        assert await counts(endpoints.dsn) == (0, 0, 0)  # waiting: nothing stored, nothing dead-lettered
    assert server.requests == []  # refused before any paid call was made

    # A bigger budget (a restart with the new setting): every waiting event is embedded.
    relaxed = tight.model_copy(update={"embedding_daily_budget_usd": 1.0})
    async with worker_factory(relaxed):
        await eventually(lambda: counts(endpoints.dsn), lambda c: c == (40, 40, 0), timeout_s=60)
    assert sample("tasksage_embedding_budget_exceeded") == 0.0
    pool = await create_pool(endpoints.dsn)
    try:
        async with pool.acquire() as conn:
            usage = await conn.fetchrow(
                "SELECT texts, tokens, requests, cost_usd FROM embedding_usage WHERE provider = 'openai' AND model = $1",
                MODEL,
            )
        assert usage is not None and usage["texts"] == 40 and usage["requests"] >= 1
        assert usage["tokens"] == sum(
            len(t) // 4 + (len(t) % 4 > 0) for r in server.requests for t in r.inputs
        )
        assert usage["cost_usd"] == pytest.approx(usage["tokens"] * 20.0 / 1_000_000)

        # A backfill over the budget stops with the reason, and leaves the rows for a later run.
        await pool.execute("DELETE FROM message_embeddings")
        embedder = metered(tight, pool, create_embedder(tight.embedder_config()), "openai")
        try:
            report = await Backfill(pool, embedder, batch_size=10).run(["messages"])
        finally:
            with contextlib.suppress(Exception):
                await embedder.aclose()
        assert report.stopped is not None and "daily embedding budget" in report.stopped
        assert report.remaining == {"messages": 40}
    finally:
        await pool.close()
