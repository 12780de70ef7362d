"""HNSW parameters chosen by table size, and the candidate plan of filtered searches (pure).

Build parameters (m, ef_construction) are fixed when an index is created, so they follow the
row count at that moment (a new model's index is created by its backfill, when the table is
already full). Query parameters (ef_search) follow the current row count. Measured with
`tasksage bench-search` (README "Search, backfill and model changes"): at 100k messages x 384-d
m=16, ef_construction=64 gave recall@10 0.98 at ef_search=40 and 0.995 at 80; larger graphs buy
recall on bigger tables at a higher insert cost, which every ingested row pays.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

# pgvector caps hnsw.ef_search at 1000; an HNSW scan yields at most ef_search rows before 0.8.
MAX_EF_SEARCH = 1000


@dataclass(frozen=True, slots=True)
class HnswBuild:
    m: int
    ef_construction: int


# (rows below, parameters): the first tier whose bound exceeds the row count applies.
_BUILD_TIERS: tuple[tuple[float, HnswBuild], ...] = (
    (500_000, HnswBuild(16, 64)),  # pgvector's defaults; recall >= 0.95 at ef_search 40-80
    (2_000_000, HnswBuild(24, 100)),
    (float("inf"), HnswBuild(32, 128)),
)
# Query-time breadth by row count: bigger graphs need a wider beam for the same recall. 80 at
# up to 200k rows: recall@10 0.995 at 100k in the benchmark, where 40 gave 0.976.
_EF_SEARCH_TIERS: tuple[tuple[float, int], ...] = (
    (200_000, 80),
    (1_000_000, 120),
    (5_000_000, 200),
    (float("inf"), 400),
)


def build_params(rows: int, m: int | None = None, ef_construction: int | None = None) -> HnswBuild:
    """m and ef_construction for an index over `rows` rows. Configured values are floors: the
    size tier can raise them, never lower them."""
    chosen = next(params for bound, params in _BUILD_TIERS if rows < bound)
    m = max(chosen.m, m or 0)
    ef = max(chosen.ef_construction, ef_construction or 0, 2 * m)
    if m > 100:
        raise ValueError("hnsw m must be at most 100")
    return HnswBuild(m, ef)


def ef_search_for(rows: int, limit: int, configured: int | None = None) -> int:
    """ef_search for a top-`limit` query: never below the limit (the scan could not return it),
    the size tier's value unless configured, capped at pgvector's maximum."""
    base = next(ef for bound, ef in _EF_SEARCH_TIERS if rows < bound) if configured is None else configured
    return max(1, min(MAX_EF_SEARCH, max(base, limit)))


def candidate_plan(
    limit: int,
    oversample: int,
    *,
    selectivity: float | None = None,
    max_candidates: int = MAX_EF_SEARCH,
) -> list[int]:
    """Candidate counts to try, in order, for a filtered search without iterative scans.

    The first count expects `limit` x `oversample` rows to pass a filter that keeps `selectivity`
    of the rows (the planner's estimate); without an estimate it is limit x oversample. The
    margin is for recall, not only for count: the rows that pass sit deep in the candidate list,
    where an HNSW answer is least exact (search scans with ef_search = 2 x candidates). Each further step is 4x larger, up to what one HNSW scan can yield. An
    empty plan means the filter is too selective for the index: rank the filtered rows exactly.
    """
    if limit < 1 or oversample < 1:
        raise ValueError("limit and oversample must be at least 1")
    if selectivity is not None and selectivity <= 0:
        return []
    first = (
        limit * oversample if selectivity is None else math.ceil(limit * oversample / min(1.0, selectivity))
    )
    if first > max_candidates:
        return []
    plan: list[int] = []
    candidates = max(first, limit)
    while candidates < max_candidates:
        plan.append(candidates)
        candidates *= 4
    plan.append(max_candidates)
    return plan


def oversampled_ef_search(candidates: int, base: int) -> int:
    """ef_search for an oversampled scan: twice the candidates, so that the deep end of the list,
    where the filtered rows are, is as exact as its head (measured: recall@10 0.91 -> 0.97)."""
    return min(MAX_EF_SEARCH, max(base, 2 * candidates))


def prefer_exact(matching_rows: float, exact_max_rows: int) -> bool:
    """A filter that leaves few rows is answered exactly: ranking a few thousand vectors costs
    less than the oversampled index scans, and it is exact (recall 1)."""
    return matching_rows <= exact_max_rows
