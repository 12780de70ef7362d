"""Reciprocal rank fusion (Cormack, Clarke and Buettcher, SIGIR 2009).

score(d) = sum over rankings i of  weight_i / (k + rank_i(d)),  rank 1-based.

Only ranks are used, never the raw scores, so a cosine similarity and a ts_rank_cd value (which
live on unrelated scales) combine without calibration. k = 60 is the paper's constant: it damps
the head of each list so one ranking alone cannot decide the order.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

DEFAULT_K = 60


@dataclass(frozen=True, slots=True)
class Fused:
    id: str
    score: float
    ranks: tuple[int | None, ...]  # 1-based rank in each input ranking, None when absent

    @property
    def best_rank(self) -> int:
        present = [r for r in self.ranks if r is not None]
        return min(present) if present else 0


def reciprocal_rank_fusion(
    rankings: Sequence[Sequence[str]], weights: Sequence[float] | None = None, k: int = DEFAULT_K
) -> list[Fused]:
    """Fuse ranked id lists into one ranking, best first.

    An id repeated within one list counts at its first (best) position. Ties are broken by the
    best single rank, then by id, so equal inputs always give the same output.
    """
    if k < 0:
        raise ValueError("k must not be negative")
    weights = [1.0] * len(rankings) if weights is None else list(weights)
    if len(weights) != len(rankings):
        raise ValueError(f"{len(rankings)} rankings but {len(weights)} weights")
    if any(w < 0 for w in weights):
        raise ValueError("weights must not be negative")
    ranks: dict[str, list[int | None]] = {}
    for i, ranking in enumerate(rankings):
        for position, item in enumerate(ranking, start=1):
            slots = ranks.setdefault(item, [None] * len(rankings))
            if slots[i] is None:
                slots[i] = position
    fused = [
        Fused(
            item,
            sum(weights[i] / (k + rank) for i, rank in enumerate(slots) if rank is not None),
            tuple(slots),
        )
        for item, slots in ranks.items()
    ]
    fused.sort(key=lambda f: (-f.score, f.best_rank, f.id))
    return fused
