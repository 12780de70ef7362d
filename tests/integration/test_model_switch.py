"""Changing the embedding model without losing search: a second model of the same dimension is
backfilled next to the active one while searches keep answering, reads switch in one step,
the old vectors are dropped, and the two models never share an index."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from processors.backfill import Backfill
from processors.contracts import MessageIngested, TaskCreated
from processors.embedders import create_embedder
from processors.postgres import coverage
from processors.postgres.model_admin import (
    ModelChangeRefused,
    drop_model_vectors,
    switch_active,
    vector_indexes,
)
from processors.postgres.pool import Pool, create_pool
from processors.search.corpus import Corpus
from streams.client import TasksagePublisher
from streams.runtime import prepare_model
from streams.search_runtime import metered, open_search
from streams.settings import Settings
from tests.support.fake_openai import FakeOpenAIServer
from tests.support.waiting import eventually

OLD, NEW = "hash-64", "text-embedding-3-small"
T0 = datetime(2026, 6, 1, tzinfo=UTC)
CORPUS = Corpus(seed=11)


@pytest.fixture
def server() -> Iterator[FakeOpenAIServer]:
    with FakeOpenAIServer(default_dimension=1536) as running:
        yield running


def new_model_settings(settings: Settings, server: FakeOpenAIServer) -> Settings:
    return settings.model_copy(
        update={
            "embedder": "openai",
            "embedding_model": NEW,
            "embedding_dimension": 64,
            "openai_base_url": server.base_url,
            "openai_api_key": None,
        }
    )


async def publish(settings: Settings, start: int, count: int) -> list[str]:
    texts = CORPUS.messages(count, seed=start, prefix=f"m{start}-")
    async with TasksagePublisher(settings) as publisher:
        for i, m in enumerate(texts):
            await publisher.publish_message(
                MessageIngested(
                    event_id=f"e-{m.message_id}",
                    occurred_at=T0 + timedelta(seconds=start + i),
                    message_id=m.message_id,
                    source=m.source,
                    author=m.author,
                    content=m.text,
                ),
                wait=False,
            )
        if start == 0:
            for i in range(40):
                await publisher.publish_task(
                    TaskCreated(
                        event_id=f"te-{i}",
                        occurred_at=T0,
                        task_id=f"task-{i}",
                        description=CORPUS.messages(1, seed=900 + i)[0].text,
                        kind="ops",
                    ),
                    wait=False,
                )
        await publisher.flush()
    return [m.message_id for m in texts]


async def missing(pool: Pool, model: str) -> tuple[int, int, int, int]:
    """(messages, of them without a current vector, tasks, of them without one)."""
    async with pool.acquire() as conn:
        messages = await coverage.coverage(conn, "messages", model)
        tasks = await coverage.coverage(conn, "tasks", model)
    return messages.total, messages.missing, tasks.total, tasks.missing


def complete(messages: int) -> Callable[[tuple[int, int, int, int]], bool]:
    return lambda v: v == (messages, 0, 40, 0)


@dataclass
class Searcher:
    """Searches in a loop the way `tasksage search` does: the active model, read each time."""

    settings: Settings
    pool: Pool
    query: str
    answers: list[tuple[str, int]] = field(default_factory=list)  # (model, hits)
    errors: list[BaseException] = field(default_factory=list)

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                session = await open_search(self.settings, self.pool)
                try:
                    vector = (await session.embedder.embed([self.query]))[0]
                    result = await session.repository.search("messages", vector, limit=10)
                    self.answers.append((result.model, len(result.hits)))
                finally:
                    await session.aclose()
            except Exception as exc:
                self.errors.append(exc)
            await asyncio.sleep(0.02)


async def test_model_switch_keeps_search_answering_and_ends_with_only_the_new_vectors(
    make_settings: Callable[..., Settings], endpoints: Any, worker_factory: Any, server: FakeOpenAIServer
) -> None:
    old_settings = make_settings(embedding_dimension=64)
    new_settings = new_model_settings(old_settings, server)
    async with worker_factory(old_settings) as (runtime, _):
        assert runtime.embedder.model_name == OLD
        first = await publish(old_settings, 0, 150)
        pool = await create_pool(endpoints.dsn)
        try:
            await eventually(lambda: missing(pool, OLD), complete(150), timeout_s=60)
            # The searcher's settings know both providers (the fake OpenAI URL), as a CLI would.
            searcher = Searcher(new_settings, pool, CORPUS.messages(1, seed=0, prefix="m0-")[0].text)
            stop_search = asyncio.Event()
            searching = asyncio.create_task(searcher.run(stop_search))

            # Register the new model: inactive, with its own indexes. Switching now is refused.
            new_embedder = metered(
                new_settings, pool, create_embedder(new_settings.embedder_config()), "openai"
            )
            await prepare_model(new_settings, pool, new_embedder)
            async with pool.acquire() as conn:
                with pytest.raises(ModelChangeRefused, match="rows have no current vector"):
                    await switch_active(conn, NEW)

                # Two models of one dimension, never one index: each index names exactly one model.
                indexes = await vector_indexes(conn)
                assert sorted((i.table, i.models) for i in indexes) == sorted(
                    (t, (m,)) for t in ("message_embeddings", "task_embeddings") for m in (OLD, NEW)
                )

            # Backfill the new model in the background, following new rows, while search uses the old.
            stop_backfill = asyncio.Event()
            backfill = asyncio.create_task(
                Backfill(pool, new_embedder, batch_size=32).run(
                    ["messages", "tasks"], follow=True, follow_interval_s=0.2, stop=stop_backfill
                )
            )
            arrived = await publish(old_settings, 1000, 40)  # written by the worker with the old model
            await eventually(lambda: missing(pool, OLD), complete(190), timeout_s=60)
            await eventually(lambda: missing(pool, NEW), complete(190), timeout_s=60)
            answers_before = len(searcher.answers)
            async with pool.acquire() as conn:
                outcome = await switch_active(conn, NEW)
            assert (outcome.previous, outcome.active, outcome.forced) == (OLD, NEW, False)

            async def last_model() -> str:
                return searcher.answers[-1][0]

            await eventually(last_model, lambda m: m == NEW, timeout_s=10)

            # Rows arriving after the switch (old worker still running) are filled by the follow.
            await publish(old_settings, 2000, 20)
            await eventually(lambda: missing(pool, OLD), complete(210), timeout_s=60)
            await eventually(lambda: missing(pool, NEW), complete(210), timeout_s=60)
            stop_backfill.set()
            report = await backfill
            stop_search.set()
            await searching
        finally:
            with contextlib.suppress(Exception):
                await new_embedder.aclose()
            await pool.close()

    # Search never failed and never came back empty, before, during and after the switch.
    assert not searcher.errors, searcher.errors[:3]
    assert all(hits == 10 for _, hits in searcher.answers)
    models_seen = [m for m, _ in searcher.answers]
    assert models_seen[answers_before - 1] == OLD and models_seen[-1] == NEW
    assert models_seen == sorted(models_seen, key=lambda m: m == NEW), "reads switched once, in one step"
    assert report.kinds["messages"].rows >= 150 + len(arrived) + 20
    # The backfill sent every text to the new provider once (the searcher's query aside).
    sent = [t for r in server.requests if r.status == 200 for t in r.inputs if t != searcher.query]
    assert len(sent) == len(set(sent)) >= 200

    # Workers restart with the new model; then the old vectors can go.
    async with worker_factory(new_settings) as (runtime, _):
        assert runtime.embedder.model_name == NEW
        await publish(new_settings, 3000, 10)
        pool = await create_pool(endpoints.dsn)
        try:
            await eventually(lambda: missing(pool, NEW), complete(220), timeout_s=60)
            async with pool.acquire() as conn:
                with pytest.raises(ModelChangeRefused, match="active model"):
                    await drop_model_vectors(conn, NEW)
                with pytest.raises(ModelChangeRefused, match="still embeds"):
                    await drop_model_vectors(conn, OLD)  # the old worker wrote it moments ago
                # The old model's learned layer and an outcome still queued for it: they live in
                # its vector space, so they go with its vectors.
                await conn.execute(
                    "INSERT INTO learned_layers (embedding_model, version) VALUES ($1, 1)", OLD
                )
                await conn.execute(
                    """INSERT INTO learned_queue (embedding_model, task_id, agent, model, success, features)
                       VALUES ($1, 't', 'a', 'm', true, '{0}')""",
                    OLD,
                )
                dropped = await drop_model_vectors(conn, OLD, force=True)
                for table in ("learned_layers", "learned_queue"):
                    left = await conn.fetchval(
                        f"SELECT count(*) FROM {table} WHERE embedding_model = $1", OLD
                    )
                    assert left == 0, table
                assert dropped.vectors_deleted >= 150 + 40 + 40 + 20
                assert len(dropped.indexes_dropped) == 2
                assert {i.models for i in await vector_indexes(conn)} == {(NEW,)}
                old_left = await conn.fetchval(
                    "SELECT count(*) FROM message_embeddings WHERE model = $1", OLD
                )
                assert old_left == 0
            assert await missing(pool, NEW) == (220, 0, 40, 0)  # every row has the new model's vector
            session = await open_search(new_settings, pool)
            try:
                vector = (await session.embedder.embed([searcher.query]))[0]
                result = await session.repository.search("messages", vector, limit=10)
            finally:
                await session.aclose()
            assert result.model == NEW and len(result.hits) == 10
            assert set(first[:1]) <= {h.id for h in result.hits}  # the query is message m0-...0's text
        finally:
            await pool.close()
