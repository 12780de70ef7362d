"""The learned layer live (processors/scheduling/learned.py): load -> decide -> persist.

- Task batches: the layer's inputs per task (stacking weights, text logits of the projected task
  vector) from the current state, the decision's per-arm features remembered, then stored with
  the predictions in their transaction (sql/0014 learned_features).
- Outcomes: in the transaction that claims them and applies them to the statistics, so exactly
  once: the features stored with the task's latest schedule are read (the schedules and the task
  vectors come from the caller, read once per batch for the live accuracy and the profiles too),
  the layer's head row is locked (workers serialise here), each outcome updates the state in
  batch order with the pure `apply_outcomes`, and the changed models are written back under a
  new version.

Each worker keeps the state it last saw with that version; a task batch reads the version (one
row) and reloads the models only when another worker, or a transaction of its own that rolled
back, moved it. Switched off (TASKSAGE_LEARNED_ENABLED=false), every method does nothing and the
decision is the chain of estimates alone.
"""

from __future__ import annotations

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
    StoredRows,
    apply_outcomes,
    initial_state,
    learned_input,
    project,
    restore,
    store,
)
from processors.scheduling.types import Arm, Decision

OFF = LearnedConfig(enabled=False)
# Features of schedules decided but not (yet) stored: a plan made ahead and dropped, or the
# API's read-only recommendations, are never stored; the oldest are forgotten past this many.
_REMEMBERED = 20_000


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

    async def _refresh(self, conn: Conn, version: int) -> LearnedState:
        assert self._state is not None
        if version != self._version:
            loaded, rows = await repo.load(conn, self.embedding_model)
            self._state, self._version = restore(self._usable(rows), self.config), loaded
            self.reloads += 1
        return self._state

    def _usable(self, rows: StoredRows) -> StoredRows:
        """Models that fit the configuration: a changed text dimension starts the text models
        afresh (their rows are overwritten at the next outcome)."""
        wanted = {"stacker": len(FEATURES), "text_all": self.config.text_dimension}
        return {
            key: row
            for key, row in rows.items()
            if row[0] == wanted.get(key[0], self.config.text_dimension) and row[0] > 0
        }

    async def inputs(
        self, pool: Pool, vectors: Sequence[Vector], arms: Iterable[Arm]
    ) -> list[LearnedInput | None]:
        """The layer's input to each task's decision, from the current state."""
        if not self.enabled:
            return [None] * len(vectors)
        async with pool.acquire() as conn:
            return await self.inputs_on(conn, vectors, arms, await self.version(conn))

    async def version(self, conn: Conn) -> int:
        """The stored layer's version (0, unread, when the layer is off)."""
        return await repo.version(conn, self.embedding_model) if self.enabled else 0

    async def inputs_on(
        self, conn: Conn, vectors: Sequence[Vector], arms: Iterable[Arm], version: int
    ) -> list[LearnedInput | None]:
        """inputs, on a connection the caller holds, from the state of `version` (read with
        `version`; the models are reloaded only when it differs from the one held)."""
        if not self.enabled:
            return [None] * len(vectors)
        state = await self._refresh(conn, version)
        names = list(arms)
        return [learned_input(state, project(v, self.config), names) for v in vectors]

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

    async def apply(
        self,
        conn: Conn,
        results: Sequence[ExecutionResult],
        schedules: Mapping[int, str],
        vectors: Mapping[str, Vector],
    ) -> int:
        """Learn from these outcomes, in batch order, inside the caller's transaction (the one
        that claimed them). `schedules`: the latest schedule of each result's task by position,
        where it weighed the arm that ran; `vectors`: the task vectors the caller loaded (both
        read once per batch for everything that needs them). Outcomes without features stored for
        the arm that ran (no schedule, or the layer was off when it was scheduled) teach nothing.
        Returns how many did."""
        if not self.enabled or not results:
            return 0
        found = await repo.features_of(
            conn, [(i, schedules[i], results[i].agent, results[i].model) for i in sorted(schedules)]
        )
        usable = [(results[i], f) for i, f in sorted(found.items()) if len(f) == len(FEATURES)]
        if not usable:
            return 0
        state = await self._refresh(conn, await repo.lock(conn, self.embedding_model))
        projected = {
            task_id: project(vectors[task_id], self.config)
            for task_id in sorted({r.task_id for r, _ in usable})
            if task_id in vectors
        }
        outcomes = [
            (Arm(r.agent, r.model), feats, projected.get(r.task_id), r.success) for r, feats in usable
        ]
        state = apply_outcomes(state, outcomes, self.config)
        rows = store(state, {arm for arm, _, phi, _ in outcomes if phi is not None})
        # The cache moves now; should this transaction roll back, the version it drew is never
        # committed, so the next batch finds another one in the database and reloads.
        self._version = await repo.save(conn, self.embedding_model, rows)
        self._state = state
        return len(usable)
