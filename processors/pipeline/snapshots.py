"""The ranked order of pending work, rebuilt from the database."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import orjson
from msgspec import UNSET

from processors.contracts import (
    DependencyIssue,
    ScheduleSnapshot,
    SnapshotEntry,
)
from processors.postgres.dependencies import pending_with_predictions, task_status
from processors.postgres.pool import Pool
from processors.scheduling.dependencies import DependencyOrder, order_by_dependencies
from processors.scheduling.ranking import task_score, top_ranked
from processors.scheduling.types import PendingTask, RankingConfig

# Ranking more than this many pending tasks per snapshot buys nothing but latency.
MAX_CANDIDATES = 20_000
# Rows built and scored between two yields to the event loop (about 2 ms of work).
SLICE = 500


class SnapshotBuilder:
    def __init__(self, pool: Pool, ranking: RankingConfig, size: int) -> None:
        self.pool = pool
        self.ranking = ranking
        self.size = size
        self._last_digest: bytes | None = None
        # task id -> the ids it depends on, for pending tasks that have any (filled by _pending).
        self._dependencies: dict[str, list[str]] = {}

    async def _pending(self) -> AsyncIterator[PendingTask]:
        """Pending tasks with their latest prediction, yielding to the event loop every
        SLICE rows: with thousands pending, building and scoring them all at once held up the
        worker's batches for tens of milliseconds every tick (their p99 latency)."""
        self._dependencies = {}
        async with self.pool.acquire() as conn:
            rows = await pending_with_predictions(conn, MAX_CANDIDATES)
        for i, r in enumerate(rows):
            if i and i % SLICE == 0:
                await asyncio.sleep(0)
            if r["dependencies"] is not None:
                self._dependencies[r["task_id"]] = [str(d) for d in orjson.loads(r["dependencies"])]
            yield PendingTask(
                task_id=r["task_id"],
                priority=r["priority"],
                deadline=r["deadline"],
                created_at=r["occurred_at"],
                success_probability=r["success_probability"],
                predicted_duration_ms=r["predicted_duration_ms"],
                agent=r["agent"],
                model=r["model"],
            )

    async def build_if_changed(self, now: datetime | None = None) -> ScheduleSnapshot | None:
        """A new snapshot, or None when the ranked order is the same as the last one emitted."""
        now = now or datetime.now(UTC)
        scored = [(t, task_score(t, now, self.ranking)) async for t in self._pending()]
        await asyncio.sleep(0)
        order = await self._dependency_order(scored) if self._dependencies else None
        ranked: list[tuple[PendingTask, float, tuple[str, ...]]]
        if order is None:
            ranked = [(t, score, ()) for t, score in top_ranked(scored, self.size)]
        else:
            ranked = [(o.task, o.score, o.blocked_by) for o in order.tasks[: self.size]]
        entries = tuple(_entry(i + 1, t, score, blocked) for i, (t, score, blocked) in enumerate(ranked))
        digest = hashlib.sha256(
            repr([(e.task_id, e.agent, e.model, e.blocked_by or ()) for e in entries]).encode()
            + str(len(scored)).encode()
        ).digest()
        if digest == self._last_digest:
            return None
        self._last_digest = digest
        if order is None:
            return ScheduleSnapshot(
                event_id=f"snapshot:{digest.hex()[:32]}",
                occurred_at=now,
                pending_count=len(scored),
                entries=entries,
            )
        return ScheduleSnapshot(
            event_id=f"snapshot:{digest.hex()[:32]}",
            occurred_at=now,
            pending_count=len(scored),
            entries=entries,
            blocked_count=order.blocked_count,
            dependency_problems=tuple(DependencyIssue(p.kind, p.task_ids, p.missing) for p in order.problems),
        )

    async def _dependency_order(self, scored: list[tuple[PendingTask, float]]) -> DependencyOrder:
        """Only when some pending task has dependencies: the full order is needed then (a
        dependency may sit anywhere in it), not just the top of the score heap."""
        pending = {t.task_id for t, _ in scored}
        outside = {d for deps in self._dependencies.values() for d in deps} - pending
        async with self.pool.acquire() as conn:
            status = await task_status(conn, outside)
        return order_by_dependencies(scored, self._dependencies, status)


def _entry(rank: int, t: PendingTask, score: float, blocked_by: tuple[str, ...]) -> SnapshotEntry:
    values = (
        rank,
        t.task_id,
        round(score, 6),
        t.agent,
        t.model,
        t.success_probability,
        t.predicted_duration_ms,
        t.priority,
        t.deadline,
    )
    return SnapshotEntry(*values, blocked_by=blocked_by or UNSET)
