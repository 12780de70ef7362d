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
