"""execution-result: update outcome history, statistics and profile vectors exactly once."""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from processors.adaptation import update_profile
from processors.contracts import ExecutionResult
from processors.contracts.codec import decode_execution_result
from processors.pipeline.batch_steps import finish_batch, first_of_each_event
from processors.pipeline.config import PipelineConfig
from processors.pipeline.learned_updates import OFF, LearnedLayer
from processors.postgres import accuracy, index_queue, knowledge, ledger, outcomes, stored_vectors
from processors.postgres.pool import Conn, Pool
from processors.records import (
    BatchResult,
    Incoming,
    OutgoingRecord,
    Rejected,
    SourceRef,
    dead_letter_headers,
)
from processors.scheduling.learned import LearnedConfig
from processors.scheduling.types import Arm

log = logging.getLogger(__name__)
STREAM = "execution-result"
GLOBAL_SCOPE = knowledge.GLOBAL_SCOPE
HELD_EXPIRED = "HeldResultExpired"  # error class in the dead-letter headers


@dataclass(frozen=True, slots=True)
class HeldExpiry:
    """What one expiry pass did: results applied late (their task had arrived) and dead letters."""

    applied: int
    dead_letters: list[OutgoingRecord]


@dataclass(slots=True)
class _Sums:
    attempts: int = 0
    successes: int = 0
    duration_sum_ms: float = 0.0
    duration_n: int = 0
    cost_sum_usd: float = 0.0
    cost_n: int = 0
    last_finished_at: datetime | None = None

    def add(self, r: ExecutionResult) -> None:
        self.attempts += 1
        self.successes += int(r.success)
        if r.duration_ms is not None:
            self.duration_sum_ms += r.duration_ms
            self.duration_n += 1
        if r.cost_usd is not None:
            self.cost_sum_usd += r.cost_usd
            self.cost_n += 1
        if self.last_finished_at is None or r.finished_at > self.last_finished_at:
            self.last_finished_at = r.finished_at


class ResultApplier:
    """Applies results to the database inside the caller's transaction."""

    def __init__(
        self,
        embedding_model: str,
        learning_rate: float,
        max_event_bytes: int,
        index_queue_limit: int = 2000,
        learned: LearnedConfig = OFF,
    ) -> None:
        self.embedding_model = embedding_model
        self.learning_rate = learning_rate
        self.max_event_bytes = max_event_bytes
        self.index_queue_limit = index_queue_limit
        # Counts outcome applications (arm statistics, neighbour outcomes, profiles). A task plan
        # made ahead of its batch is only used if this did not move meanwhile (tasks.py).
        self.history_version = 0
        self.learned = LearnedLayer(learned, embedding_model)  # shared with the task processor

    async def apply(
        self, conn: Conn, results: Sequence[tuple[ExecutionResult, SourceRef, bytes]]
    ) -> tuple[int, int]:
        """Returns (applied, held). Results for unknown tasks wait in held_results."""
        if not results:
            return 0, 0
        task_ids = sorted({r.task_id for r, _, _ in results})
        await outcomes.lock_tasks(conn, task_ids)
        kinds = await outcomes.task_kinds(conn, task_ids)
        known = [r for r, _, _ in results if r.task_id in kinds]
        unknown = [(r, s, raw) for r, s, raw in results if r.task_id not in kinds]
        if unknown:
            await outcomes.hold(
                conn, [(r.event_id, r.task_id, raw, s.topic, s.partition, s.offset) for r, s, raw in unknown]
            )
        if known:
            self.history_version += 1
            await self._apply_known(conn, known, kinds)
        return len(known), len(unknown)

    async def release_held(self, conn: Conn, task_ids: Sequence[str]) -> int:
        """Apply results that arrived before these tasks; returns how many."""
        await outcomes.lock_tasks(conn, task_ids)
        rows = await outcomes.take_held_for(conn, task_ids)
        if not rows:
            return 0
        held = [self._decoded(r) for r in rows]
        held.sort(key=lambda h: (h[1].topic, h[1].partition, h[1].offset))
        applied, _ = await self.apply(conn, held)
        return applied

    async def expire_held(
        self, conn: Conn, older_than_s: float, dead_letter_topics: Mapping[str, str], limit: int = 500
    ) -> HeldExpiry:
        """Dead-letter results that waited longer than `older_than_s` for their task.

        Call inside a transaction and put the returned dead letters in the outbox in it. The
        result's inbox entry becomes a `rejected:` one, so `tasksage dlq replay` of the record
        applies it once its task exists, while replaying the topic does not dead-letter it twice.
        """
        candidates = await outcomes.held_longer_than(conn, older_than_s, limit)
        if not candidates:
            return HeldExpiry(0, [])
        # Task locks first, like every other writer of held_results, so passes cannot deadlock;
        # rows another worker expired or released meanwhile are simply not returned.
        await outcomes.lock_tasks(conn, sorted({r["task_id"] for r in candidates}))
        rows = await outcomes.take_held(conn, [r["event_id"] for r in candidates])
        known = await outcomes.task_kinds(conn, [r["task_id"] for r in rows])
        late = [r for r in rows if r["task_id"] in known]
        expired = [r for r in rows if r["task_id"] not in known]
        applied = 0
        if late:  # the task arrived after the last look (another worker): apply, do not dead-letter
            applied, _ = await self.apply(conn, [self._decoded(r) for r in late])
        if expired:
            await ledger.unclaim_events(conn, STREAM, [r["event_id"] for r in expired])
            fresh = await ledger.claim_events(
                conn,
                STREAM,
                [
                    (f"rejected:{r['event_id']}", SourceRef(r["topic"], r["partition"], r["offset"]))
                    for r in expired
                ],
            )
            # Sent back from the dead-letter topic and expired again: its dead letter is there.
            expired = [r for r in expired if f"rejected:{r['event_id']}" in fresh]
        letters = [_expiry_letter(r, older_than_s, dead_letter_topics) for r in expired]
        return HeldExpiry(applied, letters)

    def _decoded(self, row: Any) -> tuple[ExecutionResult, SourceRef, bytes]:
        """A held result as the batch that read it had it."""
        payload = bytes(row["payload"])
        source = SourceRef(row["topic"], row["partition"], row["offset"])
        return decode_execution_result(payload, self.max_event_bytes), source, payload

    async def _apply_known(
        self, conn: Conn, results: Sequence[ExecutionResult], kinds: dict[str, str | None]
    ) -> None:
        await outcomes.store_executions(
            conn,
            [
                (r.event_id, r.task_id, kinds[r.task_id], r.agent, r.model, r.success, r.duration_ms,
                 r.cost_usd, r.error_message, r.finished_at, r.occurred_at)
                for r in results
            ],
        )  # fmt: skip
        per_task: dict[tuple[str, str, str], _Sums] = defaultdict(_Sums)
        per_scope: dict[tuple[str, str, str], _Sums] = defaultdict(_Sums)
        for r in results:
            per_task[(r.task_id, r.agent, r.model)].add(r)
            per_scope[(GLOBAL_SCOPE, r.agent, r.model)].add(r)
            scope = knowledge.kind_scope(kinds[r.task_id])
            if scope is not None:
                per_scope[(scope, r.agent, r.model)].add(r)
        # Sorted keys: concurrent workers lock rows in the same order, so they cannot deadlock.
        await outcomes.add_task_arm_outcomes(
            conn, [(*k, *_values(v), v.last_finished_at) for k, v in sorted(per_task.items())]
        )
        await outcomes.add_arm_stats(conn, [(*k, *_values(v)) for k, v in sorted(per_scope.items())])
        per_status: dict[str, _Sums] = defaultdict(_Sums)
        for r in results:
            per_status[r.task_id].add(r)
        await outcomes.add_task_outcomes(
            conn, [(t, v.attempts, v.successes, v.last_finished_at) for t, v in sorted(per_status.items())]
        )
        # A task's first outcome makes it a possible neighbour: its vectors are queued for the
        # index (sql/0006), in the transaction that makes the outcome visible; the neighbour
        # query compares queued vectors exactly until the merger has indexed them.
        await index_queue.enqueue(conn, sorted(per_status), self.index_queue_limit)
        # Live accuracy: scored here, in the transaction that claimed the events, so exactly once.
        # Each task's latest schedule is read once, for the accuracy and the learning queue.
        latest = await accuracy.latest_predictions(conn, results)
        await accuracy.record(conn, results, kinds, latest)
        await self._adapt_profiles(conn, results)
        await self.learned.queue(conn, results, {i: p.schedule_id for i, p in latest.items()})

    async def _adapt_profiles(self, conn: Conn, results: Sequence[ExecutionResult]) -> None:
        if self.learning_rate <= 0:
            return
        vectors = await stored_vectors.vectors_for(
            conn, "task", self.embedding_model, sorted({r.task_id for r in results})
        )
        usable = [r for r in results if r.task_id in vectors]
        if not usable:
            return
        arms = sorted({Arm(r.agent, r.model) for r in usable})
        current = await knowledge.profiles(conn, self.embedding_model, for_update=True, arms=arms)
        changed: dict[tuple[Arm, str], tuple[object, float]] = {}
        for r in usable:
            key = (Arm(r.agent, r.model), "success" if r.success else "failure")
            profile, weight = changed.get(key) or current.get(key) or (None, 0.0)
            changed[key] = update_profile(profile, weight, vectors[r.task_id], self.learning_rate)  # type: ignore[arg-type]
        await outcomes.save_profiles(
            conn,
            self.embedding_model,
            [
                (arm.agent, arm.model, outcome, vec, weight)
                for (arm, outcome), (vec, weight) in sorted(
                    changed.items(), key=lambda kv: (kv[0][0], kv[0][1])
                )
            ],
        )


def _expiry_letter(row: Any, older_than_s: float, dead_letter_topics: Mapping[str, str]) -> OutgoingRecord:
    """The dead letter of a result whose task did not arrive in time."""
    source = SourceRef(row["topic"], row["partition"], row["offset"])
    message = (
        f"no task-created event for task {row['task_id']!r} arrived within {older_than_s:g}s "
        f"(held since {row['held_at'].isoformat()})"
    )
    log.error(
        "dead-lettering held result topic=%s partition=%d offset=%d event_id=%s: %s",
        source.topic,
        source.partition,
        source.offset,
        row["event_id"],
        message,
    )
    rejected = Rejected(
        source, row["task_id"].encode(), bytes(row["payload"]), HELD_EXPIRED, message, row["event_id"]
    )
    return OutgoingRecord(
        dead_letter_topics[source.topic], rejected.key, rejected.value or b"", dead_letter_headers(rejected)
    )


def _values(s: _Sums) -> tuple[int, int, float, int, float, int]:
    return (s.attempts, s.successes, s.duration_sum_ms, s.duration_n, s.cost_sum_usd, s.cost_n)


class ExecutionResultProcessor:
    # Its batches change what task plans read: no task batch is planned ahead while one runs.
    changes_history = True

    def __init__(self, pool: Pool, config: PipelineConfig, applier: ResultApplier) -> None:
        self.pool = pool
        self.config = config
        self.applier = applier

    async def process(
        self,
        items: Sequence[Incoming[ExecutionResult]],
        rejected: Sequence[Rejected],
        sources: Sequence[SourceRef],
    ) -> BatchResult:
        result = BatchResult()
        batch = first_of_each_event(items)
        result.duplicates = len(items) - len(batch)
        with result.timed("commit"):
            await self._commit(result, batch, rejected, sources)
        return result

    async def _commit(
        self,
        result: BatchResult,
        batch: Sequence[Incoming[ExecutionResult]],
        rejected: Sequence[Rejected],
        sources: Sequence[SourceRef],
    ) -> None:
        async with self.pool.acquire() as conn, conn.transaction():
            claimed = await ledger.claim_events(conn, STREAM, [(i.event.event_id, i.source) for i in batch])
            result.duplicates += len(batch) - len(claimed)
            fresh = [(i.event, i.source, i.raw) for i in batch if i.event.event_id in claimed]
            applied, held = await self.applier.apply(conn, fresh)
            result.processed = applied
            result.held = held
            await finish_batch(conn, self.config, STREAM, rejected, sources, [], result)
