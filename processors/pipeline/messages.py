"""message-ingested: every message is embedded on arrival, stored, and checked for duplicates."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import UTC, datetime

import numpy as np

from processors.contracts import MessageDuplicate, MessageIngested, encode
from processors.embedders.base import Embedder, Vector
from processors.pipeline.batch_steps import finish_batch, search_in_chunks, unseen_events
from processors.pipeline.config import PipelineConfig
from processors.pipeline.embedding import Embedded, EmbeddingStats, embed_texts
from processors.postgres import index_queue, ledger, message_store, stored_vectors
from processors.postgres.pool import Conn, Pool
from processors.records import BatchResult, Incoming, OutgoingRecord, Rejected, SourceRef, output_event_id
from processors.search.nearest import merge_exact

STREAM = "message-ingested"


class MessageIngestedProcessor:
    changes_history = False  # messages are not part of what task plans read

    def __init__(
        self, pool: Pool, embedder: Embedder, config: PipelineConfig, search_concurrency: int = 4
    ) -> None:
        self.pool = pool
        self.embedder = embedder
        self.config = config
        dim = int(embedder.dimension)
        self.nearest_many_sql = message_store.nearest_many_sql(embedder.model_name, dim)
        self.search_concurrency = max(1, search_concurrency)
        self.search_slots = asyncio.Semaphore(self.search_concurrency)
        self.embedding_stats = EmbeddingStats()
        self.queued = index_queue.QueuedMessages(embedder.model_name, dim)

    async def _nearest_chunk(self, vectors: Sequence[Vector]) -> list[list[tuple[str, float]]]:
        """Each vector's two nearest indexed messages (one may be the message itself)."""
        async with self.search_slots, self.pool.acquire() as conn:
            return await message_store.nearest_many(conn, self.nearest_many_sql, vectors)

    async def _nearest_all(
        self, messages: Sequence[MessageIngested], embedded: dict[str, Embedded]
    ) -> list[tuple[str, float] | None]:
        """Each message's nearest other stored message: the index, plus an exact comparison
        with the vectors still queued for it (sql/0008), read once per batch."""
        async with self.pool.acquire() as conn:
            queued = await self.queued.read(conn)
        vectors = [embedded[m.message_id].vector for m in messages]
        approximate = await search_in_chunks(vectors, self.search_concurrency, self._nearest_chunk)
        nearest = merge_exact(
            approximate, vectors, [m.message_id for m in messages], queued.ids, queued.matrix, 1
        )
        return [found[0] if found else None for found in nearest]

    def _duplicates(
        self,
        messages: Sequence[MessageIngested],
        embedded: dict[str, Embedded],
        stored: Sequence[tuple[str, float] | None],
    ) -> dict[str, tuple[str, float]]:
        """Nearest earlier message above the threshold, among stored ones and earlier ones in this batch."""
        threshold = self.config.duplicate_threshold
        out: dict[str, tuple[str, float]] = {}
        # Every pair in one matrix product: the pairwise loop was a tenth of the worker's time
        # at 500-message batches.
        matrix = np.stack([embedded[m.message_id].vector for m in messages]) if messages else None
        similarities = matrix @ matrix.T if matrix is not None else None
        for i, msg in enumerate(messages):
            best = stored[i]
            if i and similarities is not None:
                j = int(np.argmax(similarities[i, :i]))  # the first of equals, as before
                sim = float(similarities[i, j])
                if best is None or sim > best[1]:
                    best = (messages[j].message_id, sim)
            if best is not None and best[1] >= threshold:
                out[msg.message_id] = best
        return out

    async def process(
        self,
        items: Sequence[Incoming[MessageIngested]],
        rejected: Sequence[Rejected],
        sources: Sequence[SourceRef],
    ) -> BatchResult:
        result = BatchResult()
        fresh = await unseen_events(self.pool, STREAM, items, result)
        latest = list({i.event.message_id: i for i in fresh}.values())
        messages = [i.event for i in latest]
        embedded: dict[str, Embedded] = {}
        duplicates: dict[str, tuple[str, float]] = {}
        if messages:
            with result.timed("plan"):
                embedded, duplicates = await self._plan(messages)
        with result.timed("commit"):
            await self._commit(result, fresh, messages, embedded, duplicates, rejected, sources)
        return result

    async def _plan(
        self, messages: Sequence[MessageIngested]
    ) -> tuple[dict[str, Embedded], dict[str, tuple[str, float]]]:
        embedded = await embed_texts(
            self.pool,
            self.embedder,
            "message",
            {m.message_id: m.content for m in messages},
            self.embedding_stats,
        )
        nearest = await self._nearest_all(messages, embedded)
        return embedded, self._duplicates(messages, embedded, nearest)

    async def _commit(
        self,
        result: BatchResult,
        fresh: Sequence[Incoming[MessageIngested]],
        messages: Sequence[MessageIngested],
        embedded: dict[str, Embedded],
        duplicates: dict[str, tuple[str, float]],
        rejected: Sequence[Rejected],
        sources: Sequence[SourceRef],
    ) -> None:
        outputs: list[OutgoingRecord] = []
        async with self.pool.acquire() as conn, conn.transaction():
            claimed = await ledger.claim_events(conn, STREAM, [(i.event.event_id, i.source) for i in fresh])
            result.duplicates += len(fresh) - len(claimed)
            winners = [m for m in messages if m.event_id in claimed]
            if winners:
                await self._store(conn, winners, embedded, duplicates)
                now = datetime.now(UTC)
                for m in winners:
                    if m.message_id in duplicates:
                        other, sim = duplicates[m.message_id]
                        notice = MessageDuplicate(
                            event_id=output_event_id("duplicate", m.event_id),
                            occurred_at=now,
                            message_id=m.message_id,
                            duplicate_of=other,
                            similarity=round(sim, 6),
                            embedding_model=self.embedder.model_name,
                        )
                        outputs.append(
                            OutgoingRecord(
                                self.config.duplicates_topic, m.message_id.encode(), encode(notice)
                            )
                        )
            result.processed = len(claimed)
            await finish_batch(conn, self.config, STREAM, rejected, sources, outputs, result)

    async def _store(
        self,
        conn: Conn,
        messages: Sequence[MessageIngested],
        embedded: dict[str, Embedded],
        duplicates: dict[str, tuple[str, float]],
    ) -> None:
        await message_store.store_messages(
            conn,
            [
                (
                    m.message_id,
                    m.source,
                    m.author,
                    m.content,
                    m.thread_id,
                    m.task_id,
                    m.occurred_at,
                    embedded[m.message_id].content_hash,
                    m.event_id,
                    duplicates[m.message_id][0] if m.message_id in duplicates else None,
                    duplicates[m.message_id][1] if m.message_id in duplicates else None,
                )
                for m in messages
            ],
        )
        rows = [
            (m.message_id, embedded[m.message_id].content_hash, embedded[m.message_id].vector)
            for m in messages
        ]
        # The HNSW inserts wait for the index merger, on another backend (sql/0008), unless the
        # queue this batch read in its plan is at the limit.
        queue = len(self.queued) < self.config.index_queue_limit
        await stored_vectors.store_vectors(
            conn, "message", self.embedder.model_name, rows, queue_messages=queue
        )
        if queue:
            self.queued.remember(rows)
