"""Backfill: interrupted at random points and rerun, every row ends up embedded, and every text
reaches the provider exactly once (counted in the fake OpenAI server's request log)."""

from __future__ import annotations

import asyncio
import hashlib
import logging
import random
from collections import Counter
from collections.abc import AsyncIterator, Iterator, Sequence
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pytest

from processors.backfill import Backfill, BackfillBusy
from processors.embedders import EmbedderConfig, OpenAIEmbedder
from processors.embedders.base import Vector
from processors.postgres import coverage, embedding_models
from processors.postgres.pool import Pool, create_pool
from processors.postgres.stored_vectors import vectors_for
from streams.runtime import prepare_database
from streams.settings import Settings
from tests.support.fake_openai import FakeOpenAIServer, Fault

DIMENSION = 64
MODEL = "text-embedding-3-small"


@pytest.fixture
def server() -> Iterator[FakeOpenAIServer]:
    with FakeOpenAIServer(default_dimension=1536) as running:
        running.latency_s = 0.02  # long enough for cancellations to land inside a provider call
        yield running


@pytest.fixture
async def pool(settings: Settings, endpoints: Any) -> AsyncIterator[Pool]:
    await prepare_database(settings, endpoints.dsn)
    opened = await create_pool(endpoints.dsn, max_size=4)
    yield opened
    await opened.close()


def openai_embedder(server: FakeOpenAIServer) -> OpenAIEmbedder:
    return OpenAIEmbedder(
        EmbedderConfig(
            provider="openai",
            model=MODEL,
            dimension=DIMENSION,
            base_url=server.base_url,
            api_key="sk-test",
            max_retries=3,
            backoff_initial_s=0.01,
            backoff_max_s=0.05,
        )
    )


def texts(count: int, seed: int, prefix: str) -> list[str]:
    rng = random.Random(seed)
    words = ["invoice", "refund", "deploy", "rollback", "login", "token", "cache", "index", "query", "crash"]
    out = [f"{prefix} {i}: " + " ".join(rng.choices(words, k=6)) for i in range(count)]
    # Some rows repeat earlier text: one provider call must serve all of them.
    return out + [out[i] for i in range(0, count, 10)]


async def insert_rows(pool: Pool, messages: Sequence[str], tasks: Sequence[str]) -> None:
    """Rows as the seed document found them: stored, never embedded."""
    now = datetime.now(UTC)
    async with pool.acquire() as conn:
        await conn.executemany(
            """INSERT INTO messages (message_id, source, author, content, occurred_at, content_hash, created_event_id)
               VALUES ($1, 'chat', 'ana', $2, $3, $4, $1)""",
            [(f"m{i:04d}", t, now, hashlib.sha256(t.encode()).digest()) for i, t in enumerate(messages)],
        )
        await conn.executemany(
            """INSERT INTO tasks (task_id, description, occurred_at, content_hash, created_event_id)
               VALUES ($1, $2, $3, $4, $1)""",
            [(f"t{i:04d}", t, now, hashlib.sha256(t.encode()).digest()) for i, t in enumerate(tasks)],
        )


async def register(pool: Pool, embedder: OpenAIEmbedder) -> None:
    async with pool.acquire() as conn:
        await embedding_models.register_model(conn, embedder.model_name, embedder.dimension, "openai")
        await embedding_models.ensure_indexes(conn, embedder.model_name, embedder.dimension)


def provider_calls_per_text(server: FakeOpenAIServer) -> Counter[str]:
    """Texts the provider embedded (answered 200): each is a paid-for vector."""
    return Counter(text for r in server.requests if r.status == 200 for text in r.inputs)


def unit(vector: Vector) -> Vector:
    return (vector / np.linalg.norm(vector)).astype(np.float32)


async def test_interrupted_backfills_embed_every_row_once(
    pool: Pool, server: FakeOpenAIServer, caplog: pytest.LogCaptureFixture
) -> None:
    messages, tasks = texts(220, 1, "message"), texts(60, 2, "task")
    await insert_rows(pool, messages, tasks)
    embedder = openai_embedder(server)
    await register(pool, embedder)
    server.inject(Fault.SERVER_ERROR, 2)  # provider trouble on the way: retried, never counted twice
    server.inject(Fault.RATE_LIMIT, 1, retry_after_s=0.01)
    rng = random.Random(4)
    caplog.set_level(logging.INFO, logger="processors.backfill")
    interrupted = 0
    try:
        for _ in range(12):
            run = asyncio.create_task(Backfill(pool, embedder, batch_size=16).run(["messages", "tasks"]))
            await asyncio.sleep(rng.uniform(0.0, 0.25))
            if run.done():
                break
            run.cancel()
            with pytest.raises(asyncio.CancelledError):
                await run
            interrupted += 1
        report = await Backfill(pool, embedder, batch_size=16).run(["messages", "tasks"])
    finally:
        await embedder.aclose()

    assert interrupted >= 3, "the test must actually interrupt backfills"
    assert any("finishing the page in flight" in r.message for r in caplog.records), (
        "no cancellation hit a page"
    )
    assert report.remaining == {"messages": 0, "tasks": 0}
    calls = provider_calls_per_text(server)
    distinct = set(messages) | set(tasks)
    assert set(calls) == distinct, "every text embedded, nothing else"
    assert max(calls.values()) == 1, [t for t, n in calls.items() if n > 1][:5]
    async with pool.acquire() as conn:
        assert await coverage.missing_count(conn, "messages", MODEL) == 0
        assert await coverage.missing_count(conn, "tasks", MODEL) == 0
        stored = await vectors_for(conn, "message", MODEL, ["m0000", "m0220"])  # m0220 repeats m0000
    expected = unit(server.vector_for(messages[0], DIMENSION))
    assert np.allclose(stored["m0000"], expected, atol=1e-5)
    assert np.allclose(stored["m0220"], expected, atol=1e-5)


async def test_a_row_changed_during_its_page_is_embedded_for_its_new_text(
    pool: Pool, server: FakeOpenAIServer
) -> None:
    await insert_rows(pool, ["first text of m0", "text of m1"], [])
    embedder = openai_embedder(server)
    await register(pool, embedder)

    class RacingWriter:
        """The provider answers while a writer changes m0's text: the vector is of old text."""

        def __init__(self) -> None:
            self.raced = False

        def __getattr__(self, name: str) -> Any:
            return getattr(embedder, name)

        async def embed(self, batch: Sequence[str]) -> list[Vector]:
            if not self.raced:
                self.raced = True
                async with pool.acquire() as conn:
                    new = "second text of m0"
                    await conn.execute(
                        "UPDATE messages SET content = $1, content_hash = $2 WHERE message_id = 'm0000'",
                        new,
                        hashlib.sha256(new.encode()).digest(),
                    )
            return await embedder.embed(batch)

    try:
        report = await Backfill(pool, RacingWriter(), batch_size=10).run(["messages"])  # type: ignore[arg-type]
    finally:
        await embedder.aclose()
    assert report.kinds["messages"].skipped == 1  # the stale vector was not stored...
    assert report.kinds["messages"].passes == 2  # ...and the next pass embedded the new text
    assert report.remaining == {"messages": 0}
    async with pool.acquire() as conn:
        stored = await vectors_for(conn, "message", MODEL, ["m0000"])
    assert np.allclose(stored["m0000"], unit(server.vector_for("second text of m0", DIMENSION)), atol=1e-5)


async def test_only_one_backfill_per_model_runs_at_a_time(pool: Pool, server: FakeOpenAIServer) -> None:
    await insert_rows(pool, texts(40, 3, "message"), [])
    embedder = openai_embedder(server)
    await register(pool, embedder)
    server.latency_s = 0.2
    try:
        first = asyncio.create_task(Backfill(pool, embedder, batch_size=8).run(["messages"]))
        await asyncio.sleep(0.1)
        with pytest.raises(BackfillBusy):
            await Backfill(pool, embedder, batch_size=8).run(["messages"])
        report = await first
    finally:
        await embedder.aclose()
    assert report.remaining == {"messages": 0}
    assert max(provider_calls_per_text(server).values()) == 1
