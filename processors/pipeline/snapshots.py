"""The ranked order of pending work, rebuilt from the database."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator
from datetime import UTC, datetime

from processors.contracts import ScheduleSnapshot, SnapshotEntry
from processors.postgres.pool import Pool
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

    async def _pending(self) -> AsyncIterator[PendingTask]:
        """Pending tasks with their latest prediction, yielding to the event loop every
        SLICE rows: with thousands pending, building and scoring them all at once held up the
        worker's batches for tens of milliseconds every tick (their p99 latency)."""
        async with self.pool.acquire() as conn:
            rows = await conn.fetch(
                """SELECT t.task_id, t.priority, t.deadline, t.occurred_at, p.success_probability,
                          p.predicted_duration_ms, p.agent, p.model
                   FROM tasks t
                   JOIN LATERAL (SELECT * FROM predictions p WHERE p.task_id = t.task_id
                                 ORDER BY p.created_at DESC LIMIT 1) p ON true
                   WHERE t.status = 'pending'
                   ORDER BY t.priority DESC, t.occurred_at LIMIT $1""",
                MAX_CANDIDATES,
            )
        for i, r in enumerate(rows):
            if i and i % SLICE == 0:
                await asyncio.sleep(0)
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
        ranked = top_ranked(scored, self.size)
        entries = tuple(
            SnapshotEntry(
                rank=i + 1,
                task_id=t.task_id,
                score=round(score, 6),
                agent=t.agent,
                model=t.model,
                success_probability=t.success_probability,
                predicted_duration_ms=t.predicted_duration_ms,
                priority=t.priority,
                deadline=t.deadline,
            )
            for i, (t, score) in enumerate(ranked)
        )
        digest = hashlib.sha256(
            repr([(e.task_id, e.agent, e.model) for e in entries]).encode() + str(len(scored)).encode()
        ).digest()
        if digest == self._last_digest:
            return None
        self._last_digest = digest
        return ScheduleSnapshot(
            event_id=f"snapshot:{digest.hex()[:32]}",
            occurred_at=now,
            pending_count=len(scored),
            entries=entries,
        )
