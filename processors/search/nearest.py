"""Merging approximate (HNSW) hits with exact hits over a small set of unindexed vectors (pure)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from processors.embedders.base import Vector


def unit_rows(matrix: np.ndarray) -> np.ndarray:
    """Rows scaled to length 1 (zero rows stay zero), so a dot product is the cosine."""
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    unit: np.ndarray = np.divide(matrix, norms, out=np.zeros_like(matrix), where=norms > 0)
    return unit.astype(np.float32)


def merge_exact(
    approximate: Sequence[Sequence[tuple[str, float]]],
    queries: Sequence[Vector],
    exclude: Sequence[str],
    unindexed_ids: Sequence[str],
    unindexed: np.ndarray,
    limit: int,
) -> list[list[tuple[str, float]]]:
    """Per query: the `limit` most similar of its approximate hits and the unindexed rows
    (compared exactly, cosine), best first, without the query's own id, each id once.

    `unindexed` holds unit-length rows in the order of `unindexed_ids`."""
    exact = np.empty((len(queries), 0), dtype=np.float32)
    if len(unindexed_ids) and len(queries):
        exact = unit_rows(np.vstack(queries).astype(np.float32)) @ unindexed.T
    take = min(limit + 1, len(unindexed_ids))  # one spare: the query's own id may be among them
    merged: list[list[tuple[str, float]]] = []
    for i, hits in enumerate(approximate):
        best: dict[str, float] = {t: s for t, s in hits if t != exclude[i]}
        if take:
            row = exact[i]
            top = np.argpartition(-row, take - 1)[:take] if take < len(row) else range(len(row))
            for j in top:
                task_id = unindexed_ids[j]
                if task_id != exclude[i]:
                    best[task_id] = max(best.get(task_id, -2.0), float(row[j]))
        merged.append(sorted(best.items(), key=lambda pair: (-pair[1], pair[0]))[:limit])
    return merged
