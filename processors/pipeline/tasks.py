"""task-created: embed the description, find similar past tasks, decide, store, emit a schedule."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import NamedTuple

import orjson

from processors.contracts import TaskCreated, TaskSchedule, encode
from processors.embedders.base import Embedder, Vector
from processors.pipeline.batch_steps import (
    MIN_SEARCH_CHUNK,
    finish_batch,
    first_of_each_event,
    search_in_chunks,
    unseen_events,
)
from processors.pipeline.config import PipelineConfig
from processors.pipeline.embedding import Embedded, EmbeddingStats, embed_texts_on
from processors.pipeline.learned_updates import LearnedLayer
from processors.pipeline.recent import Recent
from processors.pipeline.results import ResultApplier
from processors.pipeline.schedule_records import build_schedule, profile_affinities
from processors.postgres import knowledge, ledger, stored_vectors, task_store
from processors.postgres.index_queue import QueuedVectors, queued_vectors
from processors.postgres.pool import Conn, Pool
from processors.records import BatchResult, Incoming, OutgoingRecord, Rejected, SourceRef
from processors.scheduling.learned import LearnedInput
from processors.scheduling.requirements import decide_with_requirements
from processors.scheduling.types import (
    Arm,
    NeighbourOutcome,
    ProfileAffinity,
    SchedulingInput,
    TierOption,
)
from processors.statistics import ArmTotals

log = logging.getLogger(__name__)
STREAM = "task-created"


# Batches planned ahead at most: the next one, and one more while a batch is handed over.
MAX_PLANS_AHEAD = 2


def _latest(items: Sequence[Incoming[TaskCreated]]) -> dict[str, Incoming[TaskCreated]]:
    """A task id published twice in one batch: the later event wins, like an upsert."""
    return {i.event.task_id: i for i in items}


@dataclass(slots=True)
class PlanAheadStats:
    """What became of plans made ahead: used as they were, or decided again because outcomes
    were applied meanwhile (the worker exports both: how often planning ahead pays off)."""

    used: int = 0
    decided_again: int = 0


class _History(NamedTuple):
    stats: dict[str, dict[Arm, ArmTotals]]
    profiles: dict[tuple[Arm, str], tuple[Vector, float]]
    queued: QueuedVectors
    learned_version: int


@dataclass(slots=True)
class _Ahead:
    """A plan started for the next batch (see prepare_ahead)."""

    events: dict[str, str]  # task_id -> the event_id planned for it
    history_version: int  # ResultApplier.history_version when planning started
    learned_version: int  # the learned layer's version this worker held then (its learner moves it)
    job: asyncio.Task[tuple[dict[str, Embedded], list[TaskSchedule]]]


class TaskCreatedProcessor:
    changes_history = False  # applies outcomes only when releasing held results (counted by version)

    def __init__(
        self,
        pool: Pool,
        embedder: Embedder,
        config: PipelineConfig,
        tiers: Sequence[TierOption],
        results: ResultApplier,
        search_concurrency: int = 4,
        history_max_age_s: float = 0.0,
    ) -> None:
        """history_max_age_s: how old the history a plan decides against may be (recent.py);
        0, the worker's setting, reads it for every batch."""
        self.pool = pool
        self.embedder = embedder
        self.config = config
        self.tiers = list(tiers)
        self.results = results
        self.learned = results.learned  # the learned layer: one cached state per worker
        self.neighbours = knowledge.NeighbourQuery(
            embedder.model_name,
            embedder.dimension,
            config.scheduler.neighbour_k,
            ef_search=config.neighbour_ef_search,
        )
        self.search_concurrency = max(1, search_concurrency)
        self.search_slots = asyncio.Semaphore(self.search_concurrency)
        self.embedding_stats = EmbeddingStats()
        self.recent_history: Recent[tuple[str, ...], _History] = Recent(history_max_age_s)
        # Plans started for batches that run next, oldest first (see prepare_ahead).
        self._ahead: list[_Ahead] = []
        self.plans_ahead = PlanAheadStats()

    def _tiers_for(self, kind: str | None) -> list[TierOption]:
        rows = [t for t in self.tiers if kind is not None and t.kind == kind]
        return rows or [t for t in self.tiers if t.kind == "*"]

    async def _neighbours(
        self, vectors: Sequence[Vector], task_ids: Sequence[str], queued: QueuedVectors
    ) -> list[list[NeighbourOutcome]]:
        async with self.search_slots, self.pool.acquire() as conn:
            return await self.neighbours.fetch_many(conn, vectors, task_ids, queued)

    async def plan(
        self, tasks: Sequence[TaskCreated], known: Mapping[str, Embedded] | None = None
    ) -> tuple[dict[str, Embedded], list[TaskSchedule]]:
        """Embed and decide, reading only committed history (no locks held). `known`: vectors
        already computed for some of these tasks (by a plan made ahead and then dropped).
        One connection for the whole plan (the API's single task: one pool checkout a request);
        a batch bigger than one search chunk searches its chunks on parallel connections."""
        known = known or {}
        embedded = dict(known)
        async with self.pool.acquire() as conn:
            embedded.update(
                await embed_texts_on(
                    conn,
                    self.embedder,
                    "task",
                    {t.task_id: t.description for t in tasks if t.task_id not in known},
                    self.embedding_stats,
                )
            )
            kinds = {s for t in tasks if (s := knowledge.kind_scope(t.kind)) is not None}
            scopes = (knowledge.GLOBAL_SCOPE, *sorted(kinds))
            stats, profiles, queued, learned_version = await self.recent_history.get(
                scopes, lambda: _history(conn, self.embedder, self.config, self.learned, scopes)
            )
            vectors = [embedded[t.task_id].vector for t in tasks]
            if len(tasks) <= MIN_SEARCH_CHUNK:
                async with self.search_slots:
                    found = await self.neighbours.fetch_many(
                        conn, vectors, [t.task_id for t in tasks], queued
                    )
            else:
                found = await search_in_chunks(
                    tasks,
                    self.search_concurrency,
                    lambda c: self._neighbours(
                        [embedded[t.task_id].vector for t in c], [t.task_id for t in c], queued
                    ),
                )
            arms = {t.arm for t in self.tiers} | set(stats[knowledge.GLOBAL_SCOPE])
            chars = [len(t.description) for t in tasks]
            learned = await self.learned.inputs_on(conn, vectors, chars, arms, learned_version)
        affinities = profile_affinities(vectors, profiles)
        schedules = [
            self._schedule(task, neighbours, affinity, stats, lin)
            for task, neighbours, affinity, lin in zip(tasks, found, affinities, learned, strict=True)
        ]
        return embedded, schedules

    def _schedule(
        self,
        task: TaskCreated,
        neighbours: list[NeighbourOutcome],
        affinity: dict[Arm, ProfileAffinity],
        stats: dict[str, dict[Arm, ArmTotals]],
        learned: LearnedInput | None,
    ) -> TaskSchedule:
        empty: dict[Arm, ArmTotals] = {}
        outcome = decide_with_requirements(
            SchedulingInput(
                task_id=task.task_id,
                kind=task.kind,
                priority=task.priority,
                requested_agent=task.requested_agent,
                global_stats=stats[knowledge.GLOBAL_SCOPE],
                kind_stats=stats.get(knowledge.kind_scope(task.kind) or "", empty),
                neighbours=neighbours,
                tiers=self._tiers_for(task.kind),
                profiles=affinity,
                learned=learned,
            ),
            self.config.scheduler,
            task.requirements,
            self.tiers,
        )
        target = self.config.scheduler.success_target
        schedule = build_schedule(
            task, outcome.decision, neighbours, self.embedder.model_name, target, outcome.unsatisfiable
        )
        self.learned.remember(schedule.schedule_id, outcome.decision)
        return schedule

    async def process(
        self,
        items: Sequence[Incoming[TaskCreated]],
        rejected: Sequence[Rejected],
        sources: Sequence[SourceRef],
    ) -> BatchResult:
        result = BatchResult()
        fresh = await unseen_events(self.pool, STREAM, items, result)
        latest = _latest(fresh)
        with result.timed("plan"):
            embedded, schedules = await self._plan_batch([i.event for i in latest.values()])
        by_task = {s.task_id: s for s in schedules}
        with result.timed("commit"):
            await self._commit(result, fresh, latest, embedded, by_task, rejected, sources)
        return result

    def prepare_ahead(self, items: Sequence[Incoming[TaskCreated]]) -> None:
        """Start planning a batch that runs next while the current one commits, so that its
        embedding and neighbour searches (PostgreSQL) overlap the current batch's decisions and
        commit. The caller only does this while no batch that applies outcomes is running; the
        plan is used only if no outcome was applied, nor learned by this worker's learner, since
        it started (the history it read is the history the batch would read), and its vectors
        are used in any case."""
        latest = _latest(first_of_each_event(items))
        if not latest:
            return
        job = asyncio.create_task(self.plan([i.event for i in latest.values()]), name="plan-ahead")
        events = {task_id: i.event.event_id for task_id, i in latest.items()}
        self._ahead.append(_Ahead(events, self.results.history_version, self.learned.version_held, job))
        while len(self._ahead) > MAX_PLANS_AHEAD:
            self._ahead.pop(0).job.cancel()

    def discard_ahead(self) -> None:
        for ahead in self._ahead:
            ahead.job.cancel()
        self._ahead.clear()

    def _take_ahead(self, tasks: Sequence[TaskCreated]) -> _Ahead | None:
        """The plan made ahead for exactly these tasks' events; older unused ones are dropped
        (their batches were handed back), newer ones are for the batches after this one."""
        for n, ahead in enumerate(self._ahead):
            if all(ahead.events.get(t.task_id) == t.event_id for t in tasks):
                for stale in self._ahead[:n]:
                    stale.job.cancel()
                del self._ahead[: n + 1]
                return ahead
        return None

    async def _plan_batch(
        self, tasks: Sequence[TaskCreated]
    ) -> tuple[dict[str, Embedded], list[TaskSchedule]]:
        """The batch's plan: the one made ahead if it fits, else a fresh one."""
        if not tasks:
            return {}, []
        ahead = self._take_ahead(tasks)
        if ahead is None:
            return await self.plan(tasks)
        try:
            embedded, schedules = await ahead.job
        except asyncio.CancelledError:
            current = asyncio.current_task()
            if current is not None and current.cancelling():
                raise  # this batch is being cancelled, not just the plan
            return await self.plan(tasks)
        except Exception as exc:  # planned again below, under the failure policy
            log.debug("plan made ahead failed, planning again: %s", exc)
            return await self.plan(tasks)
        wanted = {t.task_id for t in tasks}
        embedded = {k: v for k, v in embedded.items() if k in wanted}
        now = (self.results.history_version, self.learned.version_held)
        if (ahead.history_version, ahead.learned_version) != now:
            # Outcomes were applied, or learned, meanwhile: decide again on them, with the same vectors.
            self.plans_ahead.decided_again += 1
            return await self.plan(tasks, embedded)
        self.plans_ahead.used += 1
        return embedded, [s for s in schedules if s.task_id in wanted]

    async def _commit(
        self,
        result: BatchResult,
        fresh: Sequence[Incoming[TaskCreated]],
        latest: dict[str, Incoming[TaskCreated]],
        embedded: dict[str, Embedded],
        by_task: dict[str, TaskSchedule],
        rejected: Sequence[Rejected],
        sources: Sequence[SourceRef],
    ) -> None:
        outputs: list[OutgoingRecord] = []
        async with self.pool.acquire() as conn, conn.transaction():
            claimed = await ledger.claim_events(conn, STREAM, [(i.event.event_id, i.source) for i in fresh])
            result.duplicates += len(fresh) - len(claimed)
            winners = [i for i in latest.values() if i.event.event_id in claimed]
            if winners:
                await self._store(conn, winners, embedded, by_task)
                outputs += [
                    OutgoingRecord(self.config.schedules_topic, s.task_id.encode(), encode(s))
                    for s in (by_task[i.event.task_id] for i in winners)
                ]
                await self.results.release_held(conn, [i.event.task_id for i in winners])
                result.decided(by_task[i.event.task_id] for i in winners)
            result.processed = len(claimed)
            await finish_batch(conn, self.config, STREAM, rejected, sources, outputs, result)

    async def _store(
        self,
        conn: Conn,
        winners: Sequence[Incoming[TaskCreated]],
        embedded: dict[str, Embedded],
        schedules: dict[str, TaskSchedule],
    ) -> None:
        await task_store.store_tasks(conn, [_task_row(i.event, embedded) for i in winners])
        await stored_vectors.store_vectors(
            conn,
            "task",
            self.embedder.model_name,
            [
                (i.event.task_id, embedded[i.event.task_id].content_hash, embedded[i.event.task_id].vector)
                for i in winners
            ],
        )
        await task_store.store_predictions(
            conn, [_prediction_row(schedules[i.event.task_id]) for i in winners]
        )
        await self.learned.store_features(conn, [schedules[i.event.task_id].schedule_id for i in winners])


async def _history(
    conn: Conn, embedder: Embedder, config: PipelineConfig, learned: LearnedLayer, scopes: Sequence[str]
) -> _History:
    """What every task of a batch is decided against: arm statistics, adapted profiles, the
    vectors queued for the neighbour index and the learned layer's version (read once per
    batch, not once per chunk)."""
    stats = await knowledge.arm_stats(conn, scopes)
    profiles = await knowledge.profiles(conn, embedder.model_name) if config.scheduler.use_profiles else {}
    queued = await queued_vectors(conn, embedder.model_name, embedder.dimension)
    return _History(stats, profiles, queued, await learned.version(conn))


def _task_row(t: TaskCreated, embedded: dict[str, Embedded]) -> task_store.TaskRow:
    return (
        t.task_id, t.description, t.kind, t.priority, orjson.dumps(list(t.requirements)).decode(),
        orjson.dumps(list(t.dependencies)).decode(), orjson.dumps(t.context).decode(), t.requested_agent,
        t.deadline, t.occurred_at, embedded[t.task_id].content_hash, t.event_id,
    )  # fmt: skip


def _prediction_row(s: TaskSchedule) -> task_store.PredictionRow:
    return (
        s.schedule_id, s.task_id, s.agent, s.model, s.success_probability, s.confidence,
        s.predicted_duration_ms, s.expected_cost_usd, s.success_target, s.cold_start, s.exploration,
        s.embedding_model, encode(list(s.alternatives)).decode(), s.source_event_id,
    )  # fmt: skip
