"""A tiny run of `tasksage bench-search` (the real one is 100k messages, run by hand): the
report has every figure the README quotes, and its recall is measured, not assumed."""

from __future__ import annotations

from typing import Any

import asyncpg

from streams.bench.search import BenchOptions, run_benchmark


async def test_search_benchmark_reports_latency_and_recall(endpoints: Any) -> None:
    options = BenchOptions(messages=1_500, queries=20, warmup=5, exact_samples=3)
    report = await run_benchmark(endpoints.dsn, options)
    assert report["messages"] == 1_500 and report["pgvector"] == "0.6.2"
    for phase in ("vector", "filtered_broad", "filtered_selective", "hybrid", "exact_scan"):
        stats = report[phase]
        assert 0 < stats["p50_ms"] <= stats["p95_ms"] <= stats["p99_ms"] <= stats["max_ms"]
    assert 0.8 <= report["vector"]["recall_at_10"] <= 1.0
    assert report["filtered_selective"]["short_answers"] == 0
    assert report["index"] and report["index"][0]["name"].startswith("message_embeddings_hnsw_")
    assert report["load"]["hnsw"] == {"m": 16, "ef_construction": 64}
    assert isinstance(report["targets"]["met"], bool)
    # A second run on the same database reuses the loaded corpus.
    again = await run_benchmark(
        endpoints.dsn, BenchOptions(messages=1_500, queries=10, warmup=2, exact_samples=2)
    )
    assert again["load"]["reused"] is True
    conn = await asyncpg.connect(endpoints.dsn)
    try:
        assert await conn.fetchval("SELECT count(*) FROM messages") == 1_500
    finally:
        await conn.close()
