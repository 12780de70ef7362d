"""Wiring for search, backfill and cost: embedders from the registry, the budget meter around
every embedder, the coverage gauges. Used by the worker (runtime.py), the CLI and the benchmark."""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from typing import get_args

from processors.embedders import create_embedder
from processors.embedders.base import Embedder, ProviderName
from processors.embedders.metered import MeteredEmbedder, Usage, price_per_million
from processors.errors import ConfigurationError
from processors.postgres import coverage, embedding_models
from processors.postgres.pool import Pool
from processors.postgres.search import SearchRepository, SearchTuning
from processors.postgres.usage import PostgresUsageLedger
from processors.search.types import SEARCH_KINDS, VectorCapabilities
from streams import metrics
from streams.settings import Settings

log = logging.getLogger(__name__)


def _count_usage(usage: Usage) -> None:
    metrics.EMBED_USAGE_TOKENS.labels(usage.provider, usage.model).inc(usage.tokens)
    metrics.EMBED_COST.labels(usage.provider, usage.model).inc(usage.cost_usd)
    metrics.EMBED_BUDGET_EXCEEDED.set(0)


def _count_refusal(provider: str, model: str, spent: float, budget: float) -> None:
    metrics.EMBED_BUDGET_REFUSALS.labels(provider, model).inc()
    metrics.EMBED_BUDGET_EXCEEDED.set(1)
    log.warning(
        "embedding budget reached: $%.4f spent today of $%.4f; %s calls wait (events are not dropped)",
        spent,
        budget,
        model,
    )


def metered(
    settings: Settings,
    pool: Pool,
    embedder: Embedder,
    provider: str,
    *,
    enforce_budget: bool = True,
    record_interval_s: float = 0.0,
) -> MeteredEmbedder:
    """Wrap an embedder so its calls are counted and, if a daily budget is set, capped;
    `record_interval_s` > 0 writes the counts at most that often (MeteredEmbedder)."""
    price = price_per_million(provider, embedder.model_name, settings.embedding_prices_usd_per_million)
    if price is None and settings.embedding_daily_budget_usd is not None:
        raise ConfigurationError(
            f"a daily embedding budget is set but model {embedder.model_name} has no price",
            hint="add it to TASKSAGE_EMBEDDING_PRICES_USD_PER_MILLION (JSON: model -> USD per million tokens)",
        )
    if price is None:
        log.warning("no price for embedding model %s: its cost is counted as 0", embedder.model_name)
    return MeteredEmbedder(
        embedder,
        PostgresUsageLedger(pool),
        provider=provider,
        price_usd_per_million=price,
        daily_budget_usd=settings.embedding_daily_budget_usd,
        enforce_budget=enforce_budget,
        on_usage=_count_usage,
        on_refused=_count_refusal,
        record_interval_s=record_interval_s,
    )


def embedder_for_model(settings: Settings, model: embedding_models.EmbeddingModel) -> Embedder:
    """An embedder producing `model`'s vectors, from its registry row (provider, name, size)
    and the connection settings (base URL, key). Search embeds queries with it."""
    if model.provider not in get_args(ProviderName):
        raise ConfigurationError(f"model {model.name} has an unknown provider {model.provider!r}")
    provider: ProviderName = model.provider  # type: ignore[assignment]
    config = replace(
        settings.embedder_config(),
        provider=provider,
        model=None if provider == "hash" else model.name,  # the hash embedder names itself by size
        dimension=model.dimension,
    )
    embedder = create_embedder(config)
    if embedder.model_name != model.name or embedder.dimension != model.dimension:
        raise ConfigurationError(
            f"cannot rebuild embedding model {model.name} ({model.dimension}-d) from its registry entry: "
            f"got {embedder.model_name} ({embedder.dimension}-d)",
        )
    return embedder


async def capabilities(pool: Pool) -> VectorCapabilities:
    async with pool.acquire() as conn:
        return VectorCapabilities(await embedding_models.pgvector_version(conn))


def search_tuning(settings: Settings) -> SearchTuning:
    return SearchTuning(
        ef_search=settings.search_ef_search,
        oversample=settings.search_oversample,
        rrf_k=settings.search_rrf_k,
        vector_weight=settings.search_vector_weight,
        text_weight=settings.search_text_weight,
        exact_max_rows=settings.search_exact_max_rows,
    )


@dataclass(slots=True)
class SearchSession:
    """The active model, an embedder for its queries, and the repository that searches it."""

    repository: SearchRepository
    embedder: Embedder

    async def aclose(self) -> None:
        await self.embedder.aclose()


async def open_search(settings: Settings, pool: Pool, *, usage_interval_s: float = 0.0) -> SearchSession:
    """`usage_interval_s` > 0: the query embeddings' counts are written at most that often,
    merged (the API: one upsert of the day's usage row per interval, not one per request)."""
    async with pool.acquire() as conn:
        model = await embedding_models.active_model(conn)
    if model is None:
        raise ConfigurationError(
            "no embedding model is registered yet, so nothing is searchable",
            hint="start the worker (it registers its model) or run `tasksage backfill`",
        )
    embedder = metered(
        settings,
        pool,
        embedder_for_model(settings, model),
        model.provider,
        enforce_budget=False,
        record_interval_s=usage_interval_s,
    )
    repository = SearchRepository(pool, model, await capabilities(pool), search_tuning(settings))
    return SearchSession(repository, embedder)


# The worker counts coverage in slices with pauses, never one long statement (see coverage()).
COVERAGE_SLICE_ROWS = 5000
COVERAGE_SLICE_PAUSE_S = 0.05


async def refresh_coverage(pool: Pool) -> None:
    """Set the coverage gauges for every registered model."""
    async with pool.acquire() as conn:
        readings = []
        for name, is_active in await embedding_models.all_models(conn):
            active = "true" if is_active else "false"
            for kind in SEARCH_KINDS:
                cov = await coverage.coverage(
                    conn, kind, name, slice_rows=COVERAGE_SLICE_ROWS, pause_s=COVERAGE_SLICE_PAUSE_S
                )
                readings.append((cov, active))
    # Cleared first: a model that stopped being active must not keep its old label set.
    metrics.EMBEDDING_COVERAGE.clear()
    metrics.EMBEDDING_MISSING.clear()
    for cov, active in readings:
        metrics.EMBEDDING_COVERAGE.labels(cov.table, cov.model, active).set(cov.ratio)
        metrics.EMBEDDING_MISSING.labels(cov.table, cov.model, active).set(cov.missing)
