"""The learned layer live (processors/scheduling/learned.py): load -> decide -> persist.

- Task batches: the layer's inputs per task (stacking weights, text logits of the projected task
  vector) from the current state, the decision's per-arm features remembered, then stored with
  the predictions in their transaction (sql/0014 learned_features).
- Outcomes: the transaction that claims them and applies them to the statistics copies each one,
  with the features its task's latest schedule stored for the arm that ran, to the learning queue
  (sql/0015); that is all the consume path pays. The worker's learner (streams/worker/upkeep.py)
  then takes queued outcomes oldest first under the layer's head-row lock (learners serialise
  here), updates the state in queue order with the pure `StateUpdate`, writes the changed
  models back under a new version and deletes what it learned, in one transaction: exactly once,
  one model write per pass, and the layer lags the statistics by a pass.

Each worker keeps the state it last saw with that version; a task batch reads the version (one
row) and reloads the models only when another worker moved it (its own learner moves the cache
only after its pass committed). Switched off (TASKSAGE_LEARNED_ENABLED=false), every method does
nothing and the decision is the chain of estimates alone.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from collections.abc import Iterable, Mapping, Sequence

from processors.contracts import ExecutionResult
from processors.embedders.base import Vector
from processors.postgres import learned_models as repo
from processors.postgres.pool import Conn, Pool
from processors.scheduling.learned import (
    FEATURES,
    LearnedConfig,
    LearnedInput,
    LearnedState,
    StateUpdate,
    initial_state,
    learned_input,
    project,
)
from processors.scheduling.learned_rows import restore, store
from processors.scheduling.types import Arm, Decision

OFF = LearnedConfig(enabled=False)
# Features of schedules decided but not (yet) stored: a plan made ahead and dropped, or the
# API's read-only recommendations, are never stored; the oldest are forgotten past this many.
_REMEMBERED = 20_000
# Outcomes a learner pass applies between two turns of the event loop: about 1.5 ms of updates at
# the default text dimension (128), so a consume batch whose statement returned waits at most that
# long for the loop. The models are copied once per pass (StateUpdate), so a small slice costs only
# the turns of the loop.
_SLICE = 50


class LearnedLayer:
    """The layer's state as this worker last saw it, and its reads and writes."""

    def __init__(self, config: LearnedConfig, embedding_model: str) -> None:
        self.config = config
        self.enabled = config.enabled
        self.embedding_model = embedding_model
        self._state: LearnedState | None = initial_state(config) if config.enabled else None
        self._version = 0
        self._features: OrderedDict[str, list[repo.FeatureRow]] = OrderedDict()
        self.reloads = 0  # times another writer had moved the state

    @property
    def state(self) -> LearnedState | None:
        return self._state

    @property
    def version_held(self) -> int:
        """The version of the state this worker holds (moves when its learner commits a pass or it
        reloads another worker's)."""
        return self._version

    async def _refresh(self, conn: Conn, version: int) -> LearnedState:
        assert self._state is not None
        if version != self._version:
            loaded, rows = await repo.load(conn, self.embedding_model)
            self._state, self._version = restore(rows, self.config), loaded
            self.reloads += 1
        return self._state

    async def inputs(
        self, pool: Pool, vectors: Sequence[Vector], chars: Sequence[int], arms: Iterable[Arm]
    ) -> list[LearnedInput | None]:
        """The layer's input to each task's decision, from the current state (`chars`: each task's
        description length)."""
        if not self.enabled:
            return [None] * len(vectors)
        async with pool.acquire() as conn:
            return await self.inputs_on(conn, vectors, chars, arms, await self.version(conn))

    async def version(self, conn: Conn) -> int:
        """The stored layer's version (0, unread, when the layer is off)."""
        return await repo.version(conn, self.embedding_model) if self.enabled else 0

    async def inputs_on(
        self, conn: Conn, vectors: Sequence[Vector], chars: Sequence[int], arms: Iterable[Arm], version: int
    ) -> list[LearnedInput | None]:
        """inputs, on a connection the caller holds, from the state of `version` (read with
        `version`; the models are reloaded only when it differs from the one held)."""
        if not self.enabled:
            return [None] * len(vectors)
        state = await self._refresh(conn, version)
        names = list(arms)
        return [
            learned_input(state, project(v, self.config, n), names)
            for v, n in zip(vectors, chars, strict=True)
        ]

    def remember(self, schedule_id: str, decision: Decision) -> None:
        """Keep the decision's per-arm features until its schedule is stored."""
        if not self.enabled:
            return
        self._features[schedule_id] = [
            (schedule_id, e.arm.agent, e.arm.model, e.features) for e in decision.alternatives if e.features
        ]
        self._features.move_to_end(schedule_id)
        while len(self._features) > _REMEMBERED:
            self._features.popitem(last=False)

    async def store_features(self, conn: Conn, schedule_ids: Sequence[str]) -> None:
        """Store the remembered features of these schedules (in the predictions' transaction)."""
        if self.enabled:
            await repo.store_features(conn, [row for s in schedule_ids for row in self._features.pop(s, ())])

    async def queue(
        self, conn: Conn, results: Sequence[ExecutionResult], schedules: Mapping[int, str]
    ) -> int:
        """Queue these outcomes for the learner, in batch order, inside the caller's transaction
        (the one that claimed them), so each is queued exactly once. `schedules`: the latest
        schedule of each result's task by position, where it weighed the arm that ran (read once
        per batch, for the live accuracy too). Outcomes without features stored for the arm that
        ran (no schedule, or the layer was off when it was scheduled) teach nothing and are not
        queued. Returns how many were."""
        if not self.enabled or not schedules:
            return 0
        ran = [(schedules[i], results[i]) for i in sorted(schedules)]
        rows = [(schedule_id, r.task_id, r.agent, r.model, r.success) for schedule_id, r in ran]
        return await repo.enqueue(conn, self.embedding_model, rows, len(FEATURES))

    async def catch_up(self, pool: Pool, limit: int) -> int:
        """Learn every outcome queued before the call, `limit` per transaction, waiting for the
        lock if another learner holds it; returns how many. For the callers that must see the
        layer current: a replay before it returns, an evaluation before it publishes the next
        tasks. Outcomes queued meanwhile are left to the learners (a worker consuming beside a
        replay could otherwise keep it here)."""
        async with pool.acquire() as conn:
            up_to = await repo.last_queued(conn, self.embedding_model)
        total = 0
        while up_to is not None and (learned := await self.learn(pool, limit, up_to=up_to, wait=True)):
            total += learned
        return total

    async def learn(self, pool: Pool, limit: int, *, up_to: int | None = None, wait: bool = False) -> int:
        """Learn from up to `limit` queued outcomes (at or before position `up_to`), oldest first,
        in a transaction of its own: the layer's head row is locked (learners of all workers
        serialise here; without `wait`, a pass that finds it taken leaves the queue to the learner
        holding it), the outcomes are taken off the queue, each updates the state in queue order
        with the pure `StateUpdate`, and the changed models are written back under a new
        version in the same transaction, so each outcome teaches the layer exactly once. Returns
        how many were learned."""
        if not self.enabled:
            return 0
        async with pool.acquire() as conn:
            up_to = up_to if up_to is not None else await repo.last_queued(conn, self.embedding_model)
            if up_to is None:
                return 0  # idle: no lock taken
            async with conn.transaction():
                version = await (repo.lock if wait else repo.try_lock)(conn, self.embedding_model)
                if version is None:
                    return 0  # another learner is mid-pass: it takes the queue
                state = await self._refresh(conn, version)
                lessons = await repo.take_queued(conn, self.embedding_model, limit, up_to)
                if not lessons:
                    return 0  # another learner took them first
                task_ids = sorted({task_id for task_id, _, _, _ in lessons})
                vectors, chars = await repo.task_inputs(conn, self.embedding_model, task_ids)
                # Thousands of updates per pass, on the event loop a slice at a time: between
                # slices the consume loop runs its batches. (A thread contends with it for the
                # interpreter at every switch.) The models are copied once per pass, not per slice.
                update = StateUpdate(state, self.config)
                for start in range(0, len(lessons), _SLICE):
                    update.learn(lessons[start : start + _SLICE], vectors, chars)
                    await asyncio.sleep(0)
                state = update.state()
                saved = await repo.save(conn, self.embedding_model, store(state, update.taught))
        # Committed: only now does the cache move, so a pass that fails anywhere leaves it as it was.
        self._state, self._version = state, saved
        return len(lessons)
