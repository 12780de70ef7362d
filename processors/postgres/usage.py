"""The embedding_usage table: what each day's embedding calls cost (sql/0003 adds cost_usd)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from processors.embedders.metered import Usage
from processors.postgres.pool import Conn, Pool


class PostgresUsageLedger:
    """UsageLedger over the pool; each call is one short statement outside any batch
    transaction, because a provider call is paid for whether or not its batch commits."""

    def __init__(self, pool: Pool) -> None:
        self.pool = pool

    async def spent_on(self, day: date) -> float:
        async with self.pool.acquire() as conn:
            value = await conn.fetchval(
                "SELECT coalesce(sum(cost_usd), 0) FROM embedding_usage WHERE day = $1", day
            )
        return float(value)

    async def record(self, usage: Usage) -> None:
        async with self.pool.acquire() as conn:
            await conn.execute(
                """INSERT INTO embedding_usage (day, provider, model, texts, tokens, requests, cost_usd)
                   VALUES ($1, $2, $3, $4, $5, $6, $7)
                   ON CONFLICT (day, provider, model) DO UPDATE SET
                       texts = embedding_usage.texts + EXCLUDED.texts,
                       tokens = embedding_usage.tokens + EXCLUDED.tokens,
                       requests = embedding_usage.requests + EXCLUDED.requests,
                       cost_usd = embedding_usage.cost_usd + EXCLUDED.cost_usd""",
                usage.day,
                usage.provider,
                usage.model,
                usage.texts,
                usage.tokens,
                usage.requests,
                usage.cost_usd,
            )


@dataclass(frozen=True, slots=True)
class UsageTotal:
    provider: str
    model: str
    texts: int
    tokens: int
    requests: int
    cost_usd: float


async def usage_totals(conn: Conn, since: date | None = None) -> list[UsageTotal]:
    """Totals per provider and model, all days or from `since` on."""
    rows = await conn.fetch(
        """SELECT provider, model, sum(texts) AS texts, sum(tokens) AS tokens, sum(requests) AS requests,
                  sum(cost_usd) AS cost_usd
           FROM embedding_usage WHERE $1::date IS NULL OR day >= $1
           GROUP BY provider, model ORDER BY provider, model""",
        since,
    )
    return [
        UsageTotal(
            r["provider"],
            r["model"],
            int(r["texts"]),
            int(r["tokens"]),
            int(r["requests"]),
            float(r["cost_usd"]),
        )
        for r in rows
    ]
