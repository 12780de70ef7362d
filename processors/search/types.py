"""Values of a search: what is asked, what the database can do, what comes back."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

SearchKind = Literal["messages", "tasks"]
SEARCH_KINDS: tuple[SearchKind, ...] = ("messages", "tasks")


@dataclass(frozen=True, slots=True)
class Filters:
    """Row filters; each applies only to the kind that has the column (checked on use)."""

    source: str | None = None  # messages
    author: str | None = None  # messages
    thread_id: str | None = None  # messages
    task_id: str | None = None  # messages linked to a task
    since: datetime | None = None  # messages and tasks: occurred_at >= since
    kind: str | None = None  # tasks
    status: str | None = None  # tasks: pending, succeeded, failed

    @property
    def empty(self) -> bool:
        return all(getattr(self, name) is None for name in self.__slots__)


@dataclass(frozen=True, slots=True)
class VectorCapabilities:
    """What the installed pgvector offers; detected, never assumed (0.6 or newer works; iterative index scans need 0.8)."""

    version: tuple[int, ...]

    @property
    def iterative_scan(self) -> bool:
        """pgvector 0.8 resumes an HNSW scan until a filtered query has its LIMIT of rows."""
        return self.version >= (0, 8, 0)

    @property
    def label(self) -> str:
        return ".".join(map(str, self.version))


@dataclass(frozen=True, slots=True)
class SearchHit:
    """One result. `similarity` is cosine similarity in the active model (None when a hybrid hit
    was found by keywords only and has no vector yet); `score` is what the ranking used."""

    id: str
    text: str
    score: float
    similarity: float | None
    vector_rank: int | None = None  # 1-based position in the vector ranking
    text_rank: int | None = None  # 1-based position in the full-text ranking
    details: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class SearchResult:
    kind: SearchKind
    model: str
    mode: Literal["vector", "hybrid", "similar"]
    hits: tuple[SearchHit, ...]
    candidates_scanned: int = 0  # rows the vector step read from the index (oversampling shows here)
    exact_fallback: bool = False  # True when a very selective filter was answered without the index
