"""execution-result: update outcome history, statistics and profile vectors exactly once."""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from processors.adaptation import update_profile
from processors.contracts import ExecutionResult
from processors.contracts.codec import decode_execution_result
from processors.pipeline.batch_steps import finish_batch, first_of_each_event
from processors.pipeline.config import PipelineConfig
from processors.pipeline.learned_updates import OFF, LearnedLayer
from processors.postgres import accuracy, index_queue, knowledge, ledger, stored_vectors
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
# Namespace of the transaction-level advisory locks taken per task id (any constant works).
_TASK_LOCK_SPACE = 0x7A5C7A51


async def lock_tasks(conn: Conn, task_ids: Sequence[str]) -> None:
    """Serialise "is the task known? else hold the result" against "store the task, then release
    held results" across workers. Without it a result checked while its task is being inserted
    by another worker is held after that worker looked for held results, and waits forever."""
    if task_ids:
        await conn.execute(
            """SELECT count(pg_advisory_xact_lock($1, h))
               FROM (SELECT DISTINCT hashtext(t) AS h FROM unnest($2::text[]) AS t ORDER BY 1) AS ids""",
            _TASK_LOCK_SPACE,
            list(task_ids),
        )


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
        await lock_tasks(conn, sorted({r.task_id for r, _, _ in results}))
        rows = await conn.fetch(
            "SELECT task_id, kind FROM tasks WHERE task_id = ANY($1::text[])",
            list({r.task_id for r, _, _ in results}),
        )
        kinds: dict[str, str | None] = {row["task_id"]: row["kind"] for row in rows}
        known = [r for r, _, _ in results if r.task_id in kinds]
        unknown = [(r, s, raw) for r, s, raw in results if r.task_id not in kinds]
        if unknown:
            await conn.executemany(
                """INSERT INTO held_results (event_id, task_id, payload, topic, partition, "offset")
                   VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (event_id) DO NOTHING""",
                [(r.event_id, r.task_id, raw, s.topic, s.partition, s.offset) for r, s, raw in unknown],
            )
        if known:
            self.history_version += 1
            await self._apply_known(conn, known, kinds)
        return len(known), len(unknown)

    async def release_held(self, conn: Conn, task_ids: Sequence[str]) -> int:
        """Apply results that arrived before these tasks; returns how many."""
        await lock_tasks(conn, task_ids)
        rows = await conn.fetch(
            """DELETE FROM held_results WHERE task_id = ANY($1::text[])
               RETURNING payload, topic, partition, "offset" """,
            list(task_ids),
        )
        if not rows:
            return 0
        held = [
            (
                decode_execution_result(bytes(r["payload"]), self.max_event_bytes),
                SourceRef(r["topic"], r["partition"], r["offset"]),
                bytes(r["payload"]),
            )
            for r in rows
        ]
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
        candidates = await conn.fetch(
            """SELECT event_id, task_id FROM held_results WHERE held_at < now() - make_interval(secs => $1)
               ORDER BY held_at LIMIT $2""",
            older_than_s,
            limit,
        )
        if not candidates:
            return HeldExpiry(0, [])
        # Task locks first, like every other writer of held_results, so passes cannot deadlock;
        # rows another worker expired or released meanwhile are simply not returned.
        await lock_tasks(conn, sorted({r["task_id"] for r in candidates}))
        rows = await conn.fetch(
            """DELETE FROM held_results WHERE event_id = ANY($1::text[])
               RETURNING event_id, task_id, payload, topic, partition, "offset", held_at""",
            [r["event_id"] for r in candidates],
        )
        known = {
            r["task_id"]
            for r in await conn.fetch(
                "SELECT task_id FROM tasks WHERE task_id = ANY($1::text[])", [r["task_id"] for r in rows]
            )
        }
        late = [r for r in rows if r["task_id"] in known]
        expired = [r for r in rows if r["task_id"] not in known]
        applied = 0
        if late:  # the task arrived after the last look (another worker): apply, do not dead-letter
            applied, _ = await self.apply(
                conn,
                [
                    (
                        decode_execution_result(bytes(r["payload"]), self.max_event_bytes),
                        SourceRef(r["topic"], r["partition"], r["offset"]),
                        bytes(r["payload"]),
                    )
                    for r in late
                ],
            )
        letters: list[OutgoingRecord] = []
        if expired:
            await conn.execute(
                "DELETE FROM inbox WHERE stream = $1 AND event_id = ANY($2::text[])",
                STREAM,
                [r["event_id"] for r in expired],
            )
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
        for r in expired:
            source = SourceRef(r["topic"], r["partition"], r["offset"])
            message = (
                f"no task-created event for task {r['task_id']!r} arrived within {older_than_s:g}s "
                f"(held since {r['held_at'].isoformat()})"
            )
            log.error(
                "dead-lettering held result topic=%s partition=%d offset=%d event_id=%s: %s",
                source.topic,
                source.partition,
                source.offset,
                r["event_id"],
                message,
            )
            rejected = Rejected(
                source, r["task_id"].encode(), bytes(r["payload"]), HELD_EXPIRED, message, r["event_id"]
            )
            letters.append(
                OutgoingRecord(
                    dead_letter_topics[source.topic],
                    rejected.key,
                    rejected.value or b"",
                    dead_letter_headers(rejected),
                )
            )
        return HeldExpiry(applied, letters)

    async def _apply_known(
        self, conn: Conn, results: Sequence[ExecutionResult], kinds: dict[str, str | None]
    ) -> None:
        await conn.executemany(
            """INSERT INTO executions (event_id, task_id, kind, agent, model, success, duration_ms, cost_usd,
                   error_message, finished_at, occurred_at)
               VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) ON CONFLICT (event_id) DO NOTHING""",
            [
                (
                    r.event_id,
                    r.task_id,
                    kinds[r.task_id],
                    r.agent,
                    r.model,
                    r.success,
                    r.duration_ms,
                    r.cost_usd,
                    r.error_message,
                    r.finished_at,
                    r.occurred_at,
                )
                for r in results
            ],
        )
        per_task: dict[tuple[str, str, str], _Sums] = defaultdict(_Sums)
        per_scope: dict[tuple[str, str, str], _Sums] = defaultdict(_Sums)
        for r in results:
            per_task[(r.task_id, r.agent, r.model)].add(r)
            per_scope[(GLOBAL_SCOPE, r.agent, r.model)].add(r)
            scope = knowledge.kind_scope(kinds[r.task_id])
            if scope is not None:
                per_scope[(scope, r.agent, r.model)].add(r)
        # Sorted keys: concurrent workers lock rows in the same order, so they cannot deadlock.
        await conn.executemany(
            """INSERT INTO task_arm_outcomes (task_id, agent, model, attempts, successes, duration_sum_ms,
                   duration_n, cost_sum_usd, cost_n, last_finished_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
               ON CONFLICT (task_id, agent, model) DO UPDATE SET
                   attempts = task_arm_outcomes.attempts + EXCLUDED.attempts,
                   successes = task_arm_outcomes.successes + EXCLUDED.successes,
                   duration_sum_ms = task_arm_outcomes.duration_sum_ms + EXCLUDED.duration_sum_ms,
                   duration_n = task_arm_outcomes.duration_n + EXCLUDED.duration_n,
                   cost_sum_usd = task_arm_outcomes.cost_sum_usd + EXCLUDED.cost_sum_usd,
                   cost_n = task_arm_outcomes.cost_n + EXCLUDED.cost_n,
                   last_finished_at = GREATEST(task_arm_outcomes.last_finished_at, EXCLUDED.last_finished_at)""",
            [(*k, *_values(v), v.last_finished_at) for k, v in sorted(per_task.items())],
        )
        await conn.executemany(
            """INSERT INTO arm_stats (scope, agent, model, attempts, successes, duration_sum_ms, duration_n,
                   cost_sum_usd, cost_n) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
               ON CONFLICT (scope, agent, model) DO UPDATE SET
                   attempts = arm_stats.attempts + EXCLUDED.attempts,
                   successes = arm_stats.successes + EXCLUDED.successes,
                   duration_sum_ms = arm_stats.duration_sum_ms + EXCLUDED.duration_sum_ms,
                   duration_n = arm_stats.duration_n + EXCLUDED.duration_n,
                   cost_sum_usd = arm_stats.cost_sum_usd + EXCLUDED.cost_sum_usd,
                   cost_n = arm_stats.cost_n + EXCLUDED.cost_n, updated_at = now()""",
            [(*k, *_values(v)) for k, v in sorted(per_scope.items())],
        )
        per_status: dict[str, _Sums] = defaultdict(_Sums)
        for r in results:
            per_status[r.task_id].add(r)
        await conn.executemany(
            """UPDATE tasks SET attempts = attempts + $2, successes = successes + $3,
                   status = CASE WHEN successes + $3 > 0 THEN 'succeeded' ELSE 'failed' END,
                   last_outcome_at = GREATEST(last_outcome_at, $4)
               WHERE task_id = $1""",
            [(t, v.attempts, v.successes, v.last_finished_at) for t, v in sorted(per_status.items())],
        )
        # A task's first outcome makes it a possible neighbour: its vectors are queued for the
        # index (sql/0006), in the transaction that makes the outcome visible; the neighbour
        # query compares queued vectors exactly until the merger has indexed them.
        await index_queue.enqueue(conn, sorted(per_status), self.index_queue_limit)
        # Live accuracy: scored here, in the transaction that claimed the events, so exactly once.
        await accuracy.record(conn, results, kinds)
        await self._adapt_profiles(conn, results)
        await self.learned.apply(conn, results)

    async def _adapt_profiles(self, conn: Conn, results: Sequence[ExecutionResult]) -> None:
        if self.learning_rate <= 0:
            return
        vectors = await stored_vectors.vectors_for(
            conn, "task", self.embedding_model, [r.task_id for r in results]
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
        await conn.executemany(
            """INSERT INTO arm_profiles (agent, model, embedding_model, outcome, vector, weight)
               VALUES ($1, $2, $3, $4, $5, $6)
               ON CONFLICT (agent, model, embedding_model, outcome) DO UPDATE
               SET vector = EXCLUDED.vector, weight = EXCLUDED.weight, updated_at = now()""",
            [
                (arm.agent, arm.model, self.embedding_model, outcome, vec, weight)
                for (arm, outcome), (vec, weight) in sorted(
                    changed.items(), key=lambda kv: (kv[0][0], kv[0][1])
                )
            ],
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
