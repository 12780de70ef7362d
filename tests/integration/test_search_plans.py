"""Search at a realistic size (3,000 messages, 600 tasks): the planner picks the HNSW index by
itself, filtered searches return a full page on pgvector 0.6 (oversampling, exact ranking of
selective filters), and hybrid search surfaces exact keywords that vectors rank low."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pytest

from processors.embedders.hashing import HashingEmbedder
from processors.pipeline.embedding import content_hash
from processors.postgres import embedding_models
from processors.postgres.pool import Pool, create_pool
from processors.postgres.search import SearchRepository, SearchTuning
from processors.postgres.stored_vectors import as_array
from processors.search.corpus import Corpus
from processors.search.types import Filters, VectorCapabilities
from streams.bench.preload import load_messages
from streams.runtime import prepare_database
from streams.settings import Settings

EMBEDDER = HashingEmbedder(384)
MESSAGES, TASKS = 3_000, 600
KEYWORD_ROW = "m0001234"


@pytest.fixture
async def repo(settings: Settings, endpoints: Any) -> AsyncIterator[SearchRepository]:
    await prepare_database(settings, endpoints.dsn)
    pool = await create_pool(endpoints.dsn)
    try:
        await load(pool)
        async with pool.acquire() as conn:
            model = await embedding_models.active_model(conn)
            caps = VectorCapabilities(await embedding_models.pgvector_version(conn))
        assert model is not None
        yield SearchRepository(pool, model, caps, SearchTuning())
    finally:
        await pool.close()


async def load(pool: Pool) -> None:
    corpus = Corpus(seed=5)
    messages = corpus.messages(MESSAGES, seed=1)
    texts = [m.text for m in messages]
    texts[1234] = "ERR4711 " + texts[1234]  # an error code: rare as a word, invisible to the vector
    tasks = [m.text for m in corpus.messages(TASKS, seed=2)]
    now = datetime.now(UTC)
    async with pool.acquire() as conn:
        await embedding_models.register_model(conn, EMBEDDER.model_name, EMBEDDER.dimension, "hash")
        await load_messages(
            conn,
            [(m.message_id, m.source, m.author, t) for m, t in zip(messages, texts, strict=True)],
            EMBEDDER.model_name,
            EMBEDDER.embed_sync(texts),
            occurred_at=now,
        )
        task_digests = [content_hash(t) for t in tasks]
        await conn.copy_records_to_table(
            "tasks",
            records=[
                (f"t{i:05d}", t, "ops", now, h, f"t{i}")
                for i, (t, h) in enumerate(zip(tasks, task_digests, strict=True))
            ],
            columns=["task_id", "description", "kind", "occurred_at", "content_hash", "created_event_id"],
        )
        await conn.copy_records_to_table(
            "task_embeddings",
            records=[
                (f"t{i:05d}", EMBEDDER.model_name, h, v, i % 6 != 0)  # one in six has no outcome yet
                for i, (h, v) in enumerate(zip(task_digests, EMBEDDER.embed_sync(tasks), strict=True))
            ],
            columns=["task_id", "model", "content_hash", "embedding", "has_outcome"],
        )
        await conn.execute("ANALYZE")
        await embedding_models.ensure_indexes(conn, EMBEDDER.model_name, EMBEDDER.dimension)
        await conn.execute("ANALYZE")


async def exact_ids(repo: SearchRepository, table: str, key: str, vector: Any, where: str = "") -> list[str]:
    async with repo.pool.acquire() as conn:
        rows = await conn.fetch(
            f"SELECT {key} AS id, embedding FROM {table} WHERE model = 'hash-384' {where}"
        )
    sims = np.stack([as_array(r["embedding"]) for r in rows]) @ vector
    return [rows[i]["id"] for i in np.argsort(-sims, kind="stable")[:10]]


def query_vector(seed: int) -> Any:
    return EMBEDDER.embed_sync([Corpus(seed=5).messages(1, seed=seed)[0].text])[0]


async def test_search_plans_use_the_hnsw_index_at_a_realistic_size(repo: SearchRepository) -> None:
    vector = query_vector(77)
    # No planner settings changed: at a few thousand rows the index is the cheapest plan.
    plan = "\n".join(await repo.explain("messages", vector))
    assert "Index Scan using message_embeddings_hnsw_hash_384_384_" in plan, plan
    # A filter keeping most rows is searched through the index too (oversampled; at this size
    # ranking its 2,000 rows exactly would be chosen, so that choice is turned off here).
    oversampling = SearchRepository(
        repo.pool, repo.model, repo.capabilities, replace(repo.tuning, exact_max_rows=0)
    )
    broad = "\n".join(await oversampling.explain("messages", vector, filters=Filters(source="chat")))
    assert "Index Scan using message_embeddings_hnsw_hash_384_384_" in broad, broad
    tasks = "\n".join(await repo.explain("tasks", vector))
    assert "Index Scan using task_embeddings_hnsw_hash_384_384_" in tasks, tasks
    # And the answers are (approximate search: at least nine of ten) the exact ones.
    found = await repo.search("messages", vector, limit=10)
    exact = await exact_ids(repo, "message_embeddings", "message_id", vector)
    assert len({h.id for h in found.hits} & set(exact)) >= 9
    # Tasks outside the partial index (no outcome yet) are still found: every task is searchable.
    found_tasks = await repo.search("tasks", vector, limit=10)
    exact_tasks = await exact_ids(repo, "task_embeddings", "task_id", vector)
    assert len({h.id for h in found_tasks.hits} & set(exact_tasks)) >= 9
    pending = [h.id for h in (await repo.search("tasks", vector, limit=100)).hits if int(h.id[1:]) % 6 == 0]
    assert pending, "tasks without outcomes appear in results"


async def test_filtered_searches_return_a_full_page_on_pgvector_without_iterative_scans(
    repo: SearchRepository,
) -> None:
    assert not repo.capabilities.iterative_scan  # 0.6.2 here; the 0.8 path is checked in unit tests
    vector = query_vector(78)
    pager = Filters(source="pager")  # about 5% of the rows
    # What a naive query gets: the index's first ten rows, then the filter leaves one or none.
    async with repo.pool.acquire() as conn:
        naive = await conn.fetch(
            """SELECT nn.message_id FROM (SELECT message_id, embedding::vector(384) <=> $1::vector(384) AS d
                   FROM message_embeddings WHERE model = 'hash-384'
                   ORDER BY embedding::vector(384) <=> $1::vector(384) LIMIT 10) nn
               JOIN messages USING (message_id) WHERE source = 'pager'""",
            vector,
        )
    assert len(naive) < 10
    expected = await exact_ids(
        repo,
        "message_embeddings",
        "message_id",
        vector,
        "AND message_id IN (SELECT message_id FROM messages WHERE source = 'pager')",
    )
    # Selective filter, few rows: ranked exactly.
    exact = await repo.search("messages", vector, limit=10, filters=pager)
    assert exact.exact_fallback and [h.id for h in exact.hits] == expected
    # The same through oversampling (exact ranking disabled): a full page, all matching, accurate.
    oversampling = SearchRepository(
        repo.pool, repo.model, repo.capabilities, replace(repo.tuning, exact_max_rows=0)
    )
    sampled = await oversampling.search("messages", vector, limit=10, filters=pager)
    assert not sampled.exact_fallback and sampled.candidates_scanned > 10
    assert len(sampled.hits) == 10 and all(h.details["source"] == "pager" for h in sampled.hits)
    assert len({h.id for h in sampled.hits} & set(expected)) >= 9
    # A broad filter goes through the index with a small oversample.
    chat = await oversampling.search("messages", vector, limit=10, filters=Filters(source="chat"))
    assert len(chat.hits) == 10 and all(h.details["source"] == "chat" for h in chat.hits)
    # A filter nothing matches: an empty answer, not an error.
    nothing = await repo.search("messages", vector, limit=10, filters=Filters(source="fax"))
    assert nothing.hits == ()


async def test_hybrid_search_fuses_keywords_and_meaning(repo: SearchRepository) -> None:
    text = "ERR4711"
    vector = EMBEDDER.embed_sync([text])[0]
    hybrid = await repo.hybrid("messages", text, vector, limit=10)
    # The only row with the code is ranked first by full text, so no vector-only hit (at best
    # 1/(60+1)) can score above it, wherever the vector ranking puts it.
    keyword = next(h for h in hybrid.hits if h.id == KEYWORD_ROW)
    assert keyword.text_rank == 1 and keyword.score == max(h.score for h in hybrid.hits)
    assert keyword.similarity is not None  # its cosine is reported too
    assert all(h.text_rank is None for h in hybrid.hits if h.id != KEYWORD_ROW)
    # Each score is the reciprocal rank fusion of the hit's two ranks (k = 60, weights 1).
    for hit in hybrid.hits:
        ranks = [r for r in (hit.vector_rank, hit.text_rank) if r is not None]
        assert hit.score == pytest.approx(sum(1 / (60 + r) for r in ranks))
    scores = [h.score for h in hybrid.hits]
    assert scores == sorted(scores, reverse=True)
    # A threshold drops weak vector-only hits but keeps the keyword match.
    strict = await repo.hybrid("messages", text, vector, limit=10, threshold=0.99)
    assert [h.id for h in strict.hits] == [KEYWORD_ROW]
    # Weights decide between the rankings.
    text_only = SearchRepository(repo.pool, repo.model, repo.capabilities, SearchTuning(vector_weight=0.0))
    fused = await text_only.hybrid("messages", text, vector, limit=3)
    assert [h.id for h in fused.hits][:1] == [KEYWORD_ROW] and fused.hits[-1].text_rank is None
