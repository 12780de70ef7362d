"""`tasksage bench-search`: search latency and recall@10 against exact search.

Loads N synthetic messages (processors/search/corpus.py) with their hash-384 vectors by COPY,
builds the HNSW index the worker would build (parameters by table size), then runs Q queries
through the same SearchRepository that `tasksage search` uses, one at a time on one connection,
after a warm-up. Recall@10 compares each answer with the exact top 10 computed in numpy over all
vectors (a row counts if it is at least as similar as the exact 10th, so ties are not misses).

By default it starts its own PostgreSQL (pgserver) in a temporary directory with
shared_buffers large enough for the index (`--shared-buffers`); `--data-dir` keeps that server's
files so a rerun skips the load, `--dsn` uses an existing server (a scratch database is created).
"""

from __future__ import annotations

import asyncio
import os
import platform
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click
import numpy as np
import orjson

from processors.embedders.hashing import HashingEmbedder
from processors.postgres import bench_store, bulk_load, embedding_models
from processors.postgres.databases import create_database, drop_database
from processors.postgres.migrations import migrate_database
from processors.postgres.model_admin import vector_indexes
from processors.postgres.pool import Pool, create_pool
from processors.postgres.search import SearchRepository, SearchTuning
from processors.postgres.stored_vectors import as_array
from processors.search.corpus import Corpus, CorpusShape
from processors.search.tuning import build_params, ef_search_for
from processors.search.types import Filters, VectorCapabilities
from streams.bench.preload import load_messages
from streams.commands.session import console, out

P95_TARGET_MS = 50.0
RECALL_TARGET = 0.95
_CHUNK = 5_000


@dataclass(frozen=True, slots=True)
class BenchOptions:
    messages: int = 100_000
    queries: int = 300
    warmup: int = 300
    corpus: CorpusShape = "topics"
    seed: int = 7
    dimension: int = 384
    ef_search: int | None = None  # None: by table size, as `tasksage search` does
    exact_samples: int = 20  # queries also timed as an exact (sequential) scan, for comparison


def _latency(samples: Sequence[float]) -> dict[str, float]:
    ms = np.asarray(samples) * 1000
    return {
        "p50_ms": round(float(np.percentile(ms, 50)), 3),
        "p95_ms": round(float(np.percentile(ms, 95)), 3),
        "p99_ms": round(float(np.percentile(ms, 99)), 3),
        "mean_ms": round(float(ms.mean()), 3),
        "max_ms": round(float(ms.max()), 3),
    }


async def _load(pool: Pool, options: BenchOptions, embedder: HashingEmbedder) -> dict[str, Any]:
    """Messages and vectors by binary COPY, then the index; skipped when already loaded."""
    meta = f"{options.corpus}:{options.seed}:{options.messages}:{embedder.model_name}"
    async with pool.acquire() as conn:
        loaded = await bench_store.loaded_corpus(conn, meta)
        if loaded is not None:
            return dict(orjson.loads(loaded), reused=True)
        await bench_store.clear_corpus(conn)
        await embedding_models.register_model(conn, embedder.model_name, embedder.dimension, "hash")
        corpus = Corpus(options.seed, options.corpus)
        started = time.perf_counter()
        now = datetime.now(UTC)
        embed_s = 0.0
        for start in range(0, options.messages, _CHUNK):
            batch = corpus.messages(
                min(_CHUNK, options.messages - start),
                seed=options.seed * 1000 + start,
                prefix=f"m{start:07d}-",
            )
            t0 = time.perf_counter()
            vecs = embedder.embed_sync([m.text for m in batch])
            embed_s += time.perf_counter() - t0
            await load_messages(
                conn,
                [(m.message_id, m.source, m.author, m.text) for m in batch],
                embedder.model_name,
                vecs,
                occurred_at=now,
                event_id_prefix="bench-",
            )
        load_s = time.perf_counter() - started
        await bulk_load.analyze(conn, "messages")
        started = time.perf_counter()
        # A parallel worker uses the second core of the build.
        await bulk_load.build_index_in_bulk(conn, embedder.model_name, embedder.dimension, parallel_workers=1)
        await bulk_load.analyze(conn)
        index_s = time.perf_counter() - started
        params = build_params(options.messages)
        report = {
            "load_s": round(load_s, 2),
            "embed_s": round(embed_s, 2),
            "index_build_s": round(index_s, 2),
            "hnsw": {"m": params.m, "ef_construction": params.ef_construction},
        }
        await bench_store.remember_corpus(conn, meta, orjson.dumps(report).decode())
        return dict(report, reused=False)


def _recall(
    hits: Sequence[str], exact_sims: np.ndarray[Any, Any], position: dict[str, int], k: int = 10
) -> float:
    kth = np.partition(exact_sims, -k)[-k]
    good = sum(1 for h in hits[:k] if exact_sims[position[h]] >= kth - 1e-6)
    return good / k


async def run_benchmark(dsn: str, options: BenchOptions, progress: Any = None) -> dict[str, Any]:
    await migrate_database(dsn)
    pool = await create_pool(dsn, min_size=1, max_size=2)
    try:
        embedder = HashingEmbedder(options.dimension)
        load = await _load(pool, options, embedder)
        async with pool.acquire() as conn:
            model = await embedding_models.active_model(conn)
            assert model is not None and model.name == embedder.model_name
            caps = VectorCapabilities(await embedding_models.pgvector_version(conn))
            rows = await bench_store.message_vectors(conn, model.name)
            index = [i for i in await vector_indexes(conn) if i.table == "message_embeddings"]
            server = await bench_store.server_settings(conn)
        ids = [r["message_id"] for r in rows]
        matrix = np.stack([as_array(r["embedding"]) for r in rows])
        position = {m: i for i, m in enumerate(ids)}
        async with pool.acquire() as conn:
            source_of = await bench_store.message_sources(conn)
        sources = np.asarray([source_of[m] for m in ids])
        repo = SearchRepository(pool, model, caps, SearchTuning(ef_search=options.ef_search))
        corpus = Corpus(options.seed, options.corpus)
        texts = [q.text for q in corpus.messages(options.queries, seed=options.seed + 99_991, prefix="q")]
        warm = [q.text for q in corpus.messages(options.warmup, seed=options.seed + 77_777, prefix="w")]
        # Warm-up with a wide beam so the graph's pages are in shared buffers: the figures are
        # those of a running server, not of its first minute.
        warm_repo = SearchRepository(pool, model, caps, SearchTuning(ef_search=400))
        for text in warm:
            await warm_repo.search("messages", (await embedder.embed([text]))[0], limit=10)

        async def phase(name: str, filters: Filters | None = None, hybrid: bool = False) -> dict[str, Any]:
            latencies, results = [], []
            vectors_used = []
            for i, text in enumerate(texts):
                started = time.perf_counter()
                vector = (await embedder.embed([text]))[0]
                if hybrid:
                    result = await repo.hybrid("messages", text, vector, limit=10)
                else:
                    result = await repo.search("messages", vector, limit=10, filters=filters)
                latencies.append(time.perf_counter() - started)
                results.append(result)
                vectors_used.append(vector)
                if progress is not None:
                    progress(name, i + 1, len(texts))
            # Exact answers only after the timed loop: a 100k x 384 product between queries
            # would evict the index from the CPU caches and steal the core from PostgreSQL.
            recalls = []
            if not hybrid:
                for vector, result in zip(vectors_used, results, strict=True):
                    sims = matrix @ vector
                    if filters is not None and filters.source is not None:
                        sims = np.where(sources == filters.source, sims, -2.0)
                    recalls.append(_recall([h.id for h in result.hits], sims, position))
            stats: dict[str, Any] = dict(_latency(latencies))
            if recalls:
                stats["recall_at_10"] = round(float(np.mean(recalls)), 4)
            if filters is not None:
                stats |= {
                    "filter": f"source = {filters.source!r} ({float(np.mean(sources == filters.source)):.1%} of rows)",
                    "exact_answers": sum(r.exact_fallback for r in results),
                    "mean_candidates": round(float(np.mean([r.candidates_scanned for r in results])), 1),
                    "short_answers": sum(len(r.hits) < 10 for r in results),
                }
            return stats

        vector_stats = await phase("vector")
        broad = await phase("filtered (broad)", Filters(source="email"))
        selective = await phase("filtered (selective)", Filters(source="pager"))
        hybrid = await phase("hybrid", hybrid=True)
        exact = []
        for text in texts[: options.exact_samples]:
            vector = (await embedder.embed([text]))[0]
            async with pool.acquire() as conn:
                started = time.perf_counter()
                await bench_store.exact_top10(conn, model.name, model.dimension, vector)
                exact.append(time.perf_counter() - started)
        report: dict[str, Any] = {
            "benchmark": "search",
            "at": datetime.now(UTC).isoformat(timespec="seconds"),
            "messages": len(ids),
            "queries": options.queries,
            "warmup_queries": options.warmup,
            "corpus": options.corpus,
            "seed": options.seed,
            "model": model.name,
            "dimension": model.dimension,
            "pgvector": caps.label,
            "iterative_scan": caps.iterative_scan,
            "ef_search": ef_search_for(len(ids), 10, options.ef_search),
            "index": [{"name": i.name, "size_mb": round(i.size_bytes / 2**20, 1)} for i in index],
            "load": load,
            "server": server,
            "machine": {
                "cpus": os.cpu_count(),
                "load_average": [round(x, 2) for x in os.getloadavg()],
                "python": platform.python_version(),
            },
            "vector": vector_stats,
            "filtered_broad": broad,
            "filtered_selective": selective,
            "hybrid": hybrid,
            "exact_scan": _latency(exact) | {"samples": len(exact)},
        }
        report["targets"] = {
            "p95_ms": P95_TARGET_MS,
            "recall_at_10": RECALL_TARGET,
            "met": vector_stats["p95_ms"] < P95_TARGET_MS and vector_stats["recall_at_10"] >= RECALL_TARGET,
        }
        return report
    finally:
        await pool.close()


async def _with_server(data_dir: Path | None, shared_buffers: str, body: Any) -> dict[str, Any]:
    """Run `body(dsn)` against a pgserver in `data_dir` (or a temporary one) sized for the index."""
    from streams.embedded import EmbeddedPostgres

    with tempfile.TemporaryDirectory(prefix="tasksage-bench-search-") as tmp:
        directory = data_dir or Path(tmp)
        server = EmbeddedPostgres(directory / "pg", shared_buffers)
        dsn = server.start()
        try:
            result: dict[str, Any] = await body(dsn)
            return result
        finally:
            server.stop()


@click.command("bench-search")
@click.option("--messages", type=click.IntRange(100), default=100_000, show_default=True)
@click.option("--queries", type=click.IntRange(10), default=300, show_default=True)
@click.option("--corpus", type=click.Choice(["topics", "uniform"]), default="topics", show_default=True)
@click.option("--seed", type=int, default=7, show_default=True)
@click.option("--ef-search", type=click.IntRange(1, 1000), default=None, help="[default: by table size]")
@click.option("--json", "json_path", type=click.Path(dir_okay=False, path_type=Path), default=None)
@click.option("--dsn", default=None, help="Use this PostgreSQL server (a scratch database is created).")
@click.option(
    "--data-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Keep the server here; reruns skip the load.",
)
@click.option("--shared-buffers", default="1GB", show_default=True, help="For the server it starts.")
def bench_search(
    messages: int,
    queries: int,
    corpus: CorpusShape,
    seed: int,
    ef_search: int | None,
    json_path: Path | None,
    dsn: str | None,
    data_dir: Path | None,
    shared_buffers: str,
) -> None:
    """Search latency (p95 target 50 ms) and recall@10 (target 0.95) at N messages."""
    options = BenchOptions(messages=messages, queries=queries, corpus=corpus, seed=seed, ef_search=ef_search)

    def show(kind: str, done: int, total: int) -> None:
        if done % 50 == 0 or done == total:
            console.print(f"  {kind}: {done}/{total} queries")

    async def body(target: str) -> dict[str, Any]:
        console.print(f"loading {messages} messages and building the index (reused when already there)...")
        return await run_benchmark(target, options, show)

    async def main() -> dict[str, Any]:
        if dsn is None:
            return await _with_server(data_dir, shared_buffers, body)
        name = f"tasksage_bench_search_{os.getpid()}"
        target = await create_database(dsn, name, purpose="the search benchmark")
        try:
            return await body(target)
        finally:
            await drop_database(dsn, name)

    report = asyncio.run(main())
    v, b, f, h, e = (
        report[k] for k in ("vector", "filtered_broad", "filtered_selective", "hybrid", "exact_scan")
    )
    out.print(
        f"{report['messages']} messages, {report['model']}, pgvector {report['pgvector']}, ef_search {report['ef_search']}\n"
        f"vector   p50 {v['p50_ms']} ms  p95 {v['p95_ms']} ms  p99 {v['p99_ms']} ms  recall@10 {v['recall_at_10']}\n"
        f"filtered {b['filter']}: p50 {b['p50_ms']} ms  p95 {b['p95_ms']} ms  recall@10 {b['recall_at_10']}\n"
        f"filtered {f['filter']}: p50 {f['p50_ms']} ms  p95 {f['p95_ms']} ms  recall@10 {f['recall_at_10']}\n"
        f"hybrid   p50 {h['p50_ms']} ms  p95 {h['p95_ms']} ms\n"
        f"exact    p50 {e['p50_ms']} ms  p95 {e['p95_ms']} ms (sequential scan, {e['samples']} queries)\n"
        f"targets (p95 < {P95_TARGET_MS} ms, recall >= {RECALL_TARGET}): {'met' if report['targets']['met'] else 'MISSED'}"
    )
    if json_path is not None:
        json_path.write_bytes(orjson.dumps(report, option=orjson.OPT_INDENT_2))
        out.print(f"wrote {json_path}")


COMMANDS = [bench_search]
