"""Embed texts once: reuse stored vectors of identical text, call the provider for the rest."""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass

from processors.embedders.base import Embedder, Vector
from processors.errors import WrongDimension
from processors.postgres import stored_vectors
from processors.postgres.pool import Conn, Pool

log = logging.getLogger(__name__)


def content_hash(text: str) -> bytes:
    return hashlib.sha256(text.encode("utf-8")).digest()


@dataclass(frozen=True, slots=True)
class Embedded:
    content_hash: bytes
    vector: Vector


@dataclass(slots=True)
class EmbeddingStats:
    texts: int = 0
    reused: int = 0
    tokens: int = 0
    seconds: float = 0.0


async def embed_texts(
    pool: Pool, embedder: Embedder, kind: str, texts: Mapping[str, str], stats: EmbeddingStats | None = None
) -> dict[str, Embedded]:
    """id -> (hash, vector) for every text; only texts never embedded by this model hit the provider."""
    hashes = {row_id: content_hash(text) for row_id, text in texts.items()}
    async with pool.acquire() as conn:
        known = await stored_vectors.vectors_by_hash(conn, kind, embedder.model_name, list(hashes.values()))
    return await _embed_missing(embedder, texts, hashes, known, stats)


async def embed_texts_on(
    conn: Conn, embedder: Embedder, kind: str, texts: Mapping[str, str], stats: EmbeddingStats | None = None
) -> dict[str, Embedded]:
    """embed_texts on a connection the caller holds (and keeps during the provider's call)."""
    hashes = {row_id: content_hash(text) for row_id, text in texts.items()}
    known = await stored_vectors.vectors_by_hash(conn, kind, embedder.model_name, list(hashes.values()))
    return await _embed_missing(embedder, texts, hashes, known, stats)


async def _embed_missing(
    embedder: Embedder,
    texts: Mapping[str, str],
    hashes: dict[str, bytes],
    known: dict[bytes, Vector],
    stats: EmbeddingStats | None,
) -> dict[str, Embedded]:
    missing: dict[bytes, str] = {}
    for row_id, h in hashes.items():
        if h not in known:
            missing.setdefault(h, texts[row_id])
    if missing:
        started = time.perf_counter()
        vectors = await embedder.embed(list(missing.values()))
        elapsed = time.perf_counter() - started
        for vector in vectors:
            if vector.shape != (embedder.dimension,):
                raise WrongDimension(
                    f"{embedder.model_name} returned a vector of shape {vector.shape}, expected ({embedder.dimension},)"
                )
        known.update(zip(missing.keys(), vectors, strict=True))
        if stats is not None:
            stats.texts += len(missing)
            stats.tokens += sum(embedder.count_tokens(t) for t in missing.values())
            stats.seconds += elapsed
    if stats is not None:
        stats.reused += len(texts) - len(missing)
    return {row_id: Embedded(h, known[h]) for row_id, h in hashes.items()}
