"""Embedding usage under concurrent calls (processors/embedders/metered.py): every call is
counted once in embedding_usage, and calls made while another call's counts are written share
that writer's statement instead of queueing one each."""

from __future__ import annotations

import asyncio

from processors.embedders import create_embedder
from processors.embedders.metered import MeteredEmbedder, Usage
from processors.postgres.migrations import migrate
from processors.postgres.pool import connect, create_pool
from processors.postgres.usage import PostgresUsageLedger
from streams.settings import Settings


class CountingLedger(PostgresUsageLedger):
    """The real ledger, counting the statements it runs."""

    statements = 0

    async def record(self, usage: Usage) -> None:
        self.statements += 1
        await super().record(usage)


async def test_concurrent_calls_are_all_counted_in_fewer_statements(endpoints) -> None:
    conn = await connect(endpoints.dsn)
    await migrate(conn)
    pool = await create_pool(endpoints.dsn)
    ledger = CountingLedger(pool)
    inner = create_embedder(Settings().embedder_config())
    embedder = MeteredEmbedder(inner, ledger, provider="hash", price_usd_per_million=1.0)
    try:
        texts = [[f"text {i} {j}" for j in range(i % 3 + 1)] for i in range(40)]
        await asyncio.gather(*(embedder.embed(t) for t in texts))
        await embedder.flush()
        row = await conn.fetchrow("SELECT texts, requests, tokens, cost_usd FROM embedding_usage")
        tokens = sum(inner.count_tokens(t) for batch in texts for t in batch)
    finally:
        await pool.close()
        await conn.close()
    assert (row["texts"], row["requests"], row["tokens"]) == (sum(map(len, texts)), 40, tokens)
    assert abs(row["cost_usd"] - tokens / 1_000_000) < 1e-12
    assert 1 <= ledger.statements < 40


async def test_counts_written_once_an_interval_are_all_counted(endpoints) -> None:
    """With a record interval (the API's), no call writes: a task writes the interval's calls
    merged, and closing the embedder writes what is left."""
    conn = await connect(endpoints.dsn)
    await migrate(conn)
    await conn.execute("DELETE FROM embedding_usage")
    pool = await create_pool(endpoints.dsn)
    ledger = CountingLedger(pool)
    inner = create_embedder(Settings().embedder_config())
    embedder = MeteredEmbedder(
        inner, ledger, provider="hash", price_usd_per_million=1.0, record_interval_s=0.2
    )
    try:
        for i in range(30):
            await embedder.embed([f"text {i}"])
        assert ledger.statements == 0  # nobody waited for a write
        await asyncio.sleep(0.5)
        assert ledger.statements == 1  # the interval's thirty calls in one statement
        await embedder.embed(["one more"])
        await embedder.aclose()
        row = await conn.fetchrow("SELECT texts, requests FROM embedding_usage")
    finally:
        await pool.close()
        await conn.close()
    assert (row["texts"], row["requests"]) == (31, 31)
    assert ledger.statements == 2
