"""New message vectors wait for the index merger (sql/0008); duplicate checks and searches find
them before and after it has indexed them, on this worker and on any other."""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from pgvector.asyncpg import register_vector

from processors.contracts import MessageIngested, encode
from processors.embedders.hashing import HashingEmbedder
from processors.pipeline.embedding import content_hash
from processors.postgres import embedding_models, index_queue
from processors.postgres.migrations import DEFAULT_SQL_DIR, migrate
from processors.postgres.search import SearchRepository, SearchTuning
from processors.records import Incoming, SourceRef
from processors.search.types import VectorCapabilities
from streams.runtime import Runtime, open_runtime
from tests.support.topics import send_raw, wait_consumed
from tests.support.waiting import eventually

T0 = datetime(2026, 5, 4, 9, 0, tzinfo=UTC)
CERTIFICATES = "The TLS certificates of the billing gateway expire on Friday, who renews them?"
NEWSLETTER = "Draft of the quarterly newsletter about hiring is in the shared folder."


@pytest.fixture
def sql_dir_before_0008(tmp_path: Path) -> Path:
    target = tmp_path / "sql"
    shutil.copytree(DEFAULT_SQL_DIR, target)
    (target / "0008_message_index_queue.sql").unlink()
    return target


def message(message_id: str, content: str, n: int = 0) -> MessageIngested:
    return MessageIngested(
        event_id=f"ingested-{message_id}-{n}",
        occurred_at=T0 + timedelta(minutes=n),
        message_id=message_id,
        source="chat",
        author="ana",
        content=content,
    )


async def _process(runtime: Runtime, messages: list[MessageIngested], offset: int) -> None:
    items = [Incoming(m, SourceRef("in", 0, offset + i), b"") for i, m in enumerate(messages)]
    await runtime.pipeline.messages.process(items, [], [SourceRef("in", 0, offset + len(messages) - 1)])


async def _queued(conn: asyncpg.Connection) -> list[str]:
    rows = await conn.fetch("SELECT message_id FROM message_embeddings WHERE NOT indexed ORDER BY 1")
    return [r["message_id"] for r in rows]


async def _duplicate_of(conn: asyncpg.Connection, message_id: str) -> str | None:
    value = await conn.fetchval("SELECT duplicate_of FROM messages WHERE message_id = $1", message_id)
    return None if value is None else str(value)


async def test_duplicates_are_found_among_queued_vectors_of_any_worker_and_after_the_merge(
    make_settings, endpoints
) -> None:
    first = await open_runtime(make_settings(), endpoints)
    second = await open_runtime(make_settings(), endpoints)  # another worker: knows none of first's
    conn = await asyncpg.connect(endpoints.dsn)
    try:
        await _process(first, [message("m1", CERTIFICATES)], 0)
        assert await _queued(conn) == ["m1"]  # stored, not in the HNSW index yet

        await _process(second, [message("m2", CERTIFICATES.upper()), message("n1", NEWSLETTER)], 10)
        assert await _duplicate_of(conn, "m2") == "m1"  # found by comparing the queued vector
        assert await _duplicate_of(conn, "n1") is None
        assert await _queued(conn) == ["m1", "m2", "n1"]

        assert await index_queue.merge_messages(conn, 2) == 2  # oldest first
        assert await index_queue.merge_messages(conn, 10) == 1
        assert await _queued(conn) == []
        assert (await first.pipeline.messages.queued.read(conn)).ids == ()  # indexed: forgotten

        await _process(first, [message("n2", NEWSLETTER.replace("Draft", "draft"))], 20)
        assert await _duplicate_of(conn, "n2") == "n1"  # now through the index
    finally:
        await conn.close()
        await first.close()
        await second.close()


async def test_a_queued_message_is_found_by_search(make_settings, endpoints) -> None:
    runtime = await open_runtime(make_settings(), endpoints)
    conn = await asyncpg.connect(endpoints.dsn)
    try:
        await _process(runtime, [message("m1", CERTIFICATES), message("n1", NEWSLETTER)], 0)
        await index_queue.merge_messages(conn, 1)
        assert await _queued(conn) == ["n1"]
        model = await embedding_models.active_model(conn)
        assert model is not None
        caps = VectorCapabilities(await embedding_models.pgvector_version(conn))
        repository = SearchRepository(runtime.pool, model, caps, SearchTuning())
        embedder = runtime.pipeline.messages.embedder
        for text, expected in ((NEWSLETTER, "n1"), (CERTIFICATES, "m1")):
            found = await repository.search("messages", (await embedder.embed([text]))[0], limit=2)
            assert found.hits[0].id == expected
    finally:
        await conn.close()
        await runtime.close()


class _MergeAfterFirstRead:
    """A pool whose connections let the index merger commit all queued messages right after a
    search's first read: the moment between its index read and its read of the queue."""

    def __init__(self, pool: asyncpg.Pool, merger: asyncpg.Connection) -> None:
        self.pool = pool
        self.merger = merger
        self.merged = 0

    @asynccontextmanager
    async def acquire(self) -> AsyncIterator[Any]:
        async with self.pool.acquire() as conn:
            yield _Interleaved(conn, self)


class _Interleaved:
    def __init__(self, conn: Any, pool: _MergeAfterFirstRead) -> None:
        self._conn = conn
        self._pool = pool

    def __getattr__(self, name: str) -> Any:
        return getattr(self._conn, name)

    async def fetch(self, sql: str, *args: Any) -> Any:
        rows = await self._conn.fetch(sql, *args)
        if self._pool.merged == 0 and "distance" in sql:
            self._pool.merged = await index_queue.merge_messages(self._pool.merger, 100)
        return rows


async def test_a_merge_during_a_search_loses_no_message(make_settings, endpoints) -> None:
    runtime = await open_runtime(make_settings(), endpoints)
    conn = await asyncpg.connect(endpoints.dsn)
    try:
        texts = [f"{CERTIFICATES} Reminder number {i}." for i in range(5)]
        await _process(runtime, [message(f"m{i}", text, i) for i, text in enumerate(texts)], 0)
        model = await embedding_models.active_model(conn)
        assert model is not None
        caps = VectorCapabilities(await embedding_models.pgvector_version(conn))
        interleaved = _MergeAfterFirstRead(runtime.pool, conn)
        repository = SearchRepository(interleaved, model, caps, SearchTuning())  # type: ignore[arg-type]
        vector = (await runtime.pipeline.messages.embedder.embed([CERTIFICATES]))[0]
        found = await repository.search("messages", vector, limit=10)
        assert interleaved.merged == 5  # all five moved from the queue to the index mid-search
        assert sorted(h.id for h in found.hits) == [f"m{i}" for i in range(5)]
    finally:
        await conn.close()
        await runtime.close()


async def test_past_the_queue_limit_a_batch_indexes_its_messages_itself(make_settings, endpoints) -> None:
    runtime = await open_runtime(make_settings(index_queue_limit=2), endpoints)
    conn = await asyncpg.connect(endpoints.dsn)
    try:
        await _process(runtime, [message("a", CERTIFICATES), message("b", NEWSLETTER)], 0)
        await _process(runtime, [message("c", "Lunch is at noon today.")], 10)  # queue full: inline
        assert await _queued(conn) == ["a", "b"]
        indexed = await conn.fetch("SELECT message_id FROM message_embeddings WHERE indexed")
        assert [r["message_id"] for r in indexed] == ["c"]
    finally:
        await conn.close()
        await runtime.close()


async def test_an_edited_message_leaves_the_index_and_waits_again(make_settings, endpoints) -> None:
    runtime = await open_runtime(make_settings(), endpoints)
    conn = await asyncpg.connect(endpoints.dsn)
    try:
        await _process(runtime, [message("m1", CERTIFICATES)], 0)
        await index_queue.merge_messages(conn, 10)
        await _process(runtime, [message("m1", NEWSLETTER, n=1)], 10)
        assert await _queued(conn) == ["m1"]
        queued = await runtime.pipeline.messages.queued.read(conn)
        newsletter = (await runtime.pipeline.messages.embedder.embed([NEWSLETTER]))[0]
        assert queued.ids == ("m1",)
        assert float(queued.matrix[0] @ newsletter) > 0.999  # the new text's vector, not the old
    finally:
        await conn.close()
        await runtime.close()


async def test_the_worker_merges_the_message_queue(make_settings, endpoints, worker_factory) -> None:
    settings = make_settings(index_merge_batch=3)
    messages = [message(f"m{i}", f"{CERTIFICATES} Reminder number {i}.") for i in range(10)]
    conn = await asyncpg.connect(endpoints.dsn)
    try:
        async with worker_factory(settings):
            await send_raw(
                settings,
                settings.topic_message_ingested,
                [(m.message_id.encode(), encode(m)) for m in messages],
            )
            await wait_consumed(conn, settings, {settings.topic_message_ingested: len(messages)})
            await eventually(lambda: _queued(conn), lambda q: q == [], timeout_s=30)
        rows = await conn.fetchval("SELECT count(*) FROM message_embeddings WHERE indexed")
        assert rows == len(messages)
    finally:
        await conn.close()


async def test_upgrading_keeps_stored_messages_indexed_under_the_new_predicate(
    endpoints, sql_dir_before_0008: Path
) -> None:
    embedder = HashingEmbedder(384)
    conn = await asyncpg.connect(endpoints.dsn)
    try:
        await migrate(conn, sql_dir_before_0008)  # a database from before sql/0008
        await register_vector(conn)
        await embedding_models.register_model(conn, embedder.model_name, embedder.dimension, "hash")
        await conn.execute(
            """INSERT INTO messages (message_id, source, author, content, occurred_at, content_hash, created_event_id)
               VALUES ('old', 'chat', 'ana', $1, now(), $2, 'e-old')""",
            CERTIFICATES,
            content_hash(CERTIFICATES),
        )
        await conn.execute(
            "INSERT INTO message_embeddings (message_id, model, content_hash, embedding) VALUES ('old', $1, $2, $3)",
            embedder.model_name,
            content_hash(CERTIFICATES),
            embedder.embed_sync([CERTIFICATES])[0],
        )
        name = embedding_models.index_name("message_embeddings", embedder.model_name, embedder.dimension)
        await conn.execute(
            f"""CREATE INDEX {name} ON message_embeddings USING hnsw
                ((embedding::vector(384)) vector_cosine_ops) WHERE model = 'hash-384'"""
        )  # as ensure_indexes made it before

        assert [m.name for m in await migrate(conn)] == ["message_index_queue"]
        assert await _queued(conn) == []  # what was stored stays indexed
        assert await conn.fetchval("SELECT to_regclass($1)", name) is None  # dropped by the migration
        await embedding_models.ensure_indexes(conn, embedder.model_name, embedder.dimension)  # as at start-up
        definition = await conn.fetchval("SELECT pg_get_indexdef(to_regclass($1))", name)
        assert definition.endswith("WHERE ((model = 'hash-384'::text) AND indexed)"), definition
    finally:
        await conn.close()
