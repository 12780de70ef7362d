"""Two workers' copies of the learned layer on one database: outcomes queued by the consume path
are learned by one learner at a time (they serialise on the layer's row lock; a learner that finds
it taken moves on, catching up waits), a copy that another worker moved reloads, a pass that fails
leaves its outcomes queued for the next and its copy untouched, and the stored state is the pure
layer over the queued outcomes in queue order, each once."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import numpy as np
import pytest

from processors.contracts import ExecutionResult
from processors.pipeline.learned_updates import LearnedLayer
from processors.postgres import learned_models
from processors.postgres.pool import Pool
from processors.scheduling import learned as ln
from processors.scheduling import learned_rows
from processors.scheduling.types import Arm
from streams.runtime import open_pool, prepare_database

ARM = Arm("coder", "small")
MODEL = "test-model"
CONFIG = ln.LearnedConfig(text_dimension=8)
FEATURES = (1.0, 0.4, 0.3, 0.1, -0.8, 0.0, 0.0, 0.0)
SCHEDULE = {0: "T1:e1"}  # each one-result batch: its task's latest schedule (no task vector)


def _result(n: int, success: bool, model: str = ARM.model) -> ExecutionResult:
    at = datetime(2026, 1, 1, tzinfo=UTC)
    return ExecutionResult(
        event_id=f"r{n}",
        occurred_at=at,
        task_id="T1",
        agent=ARM.agent,
        model=model,
        success=success,
        finished_at=at,
    )


class Failed(Exception):
    pass


async def _queue(pool: Pool, layer: LearnedLayer, n: int, success: bool) -> None:
    async with pool.acquire() as conn, conn.transaction():
        assert await layer.queue(conn, [_result(n, success)], SCHEDULE) == 1


async def _queued(pool: Pool) -> int:
    async with pool.acquire() as conn:
        return await learned_models.queue_length(conn, MODEL)


async def test_learners_serialise_reload_what_others_changed_and_lose_nothing(
    make_settings, endpoints, monkeypatch
) -> None:
    settings = make_settings()
    await prepare_database(settings, endpoints.dsn)
    pool = await open_pool(settings, endpoints.dsn)
    try:
        async with pool.acquire() as conn:
            await conn.execute(
                """INSERT INTO predictions (schedule_id, task_id, agent, model, success_probability, confidence,
                       success_target, cold_start, exploration, embedding_model, alternatives, source_event_id)
                   VALUES ('T1:e1', 'T1', $1, $2, 0.5, 0.1, 0.8, false, false, $3, '[]', 'e1')""",
                ARM.agent,
                ARM.model,
                MODEL,
            )
            await learned_models.store_features(conn, [("T1:e1", ARM.agent, ARM.model, FEATURES)])
        a, b = LearnedLayer(CONFIG, MODEL), LearnedLayer(CONFIG, MODEL)
        vector = np.ones(16, dtype=np.float32)
        before = await b.inputs(pool, [vector], [300], [ARM])
        # An outcome of an arm its schedule did not weigh is not queued.
        async with pool.acquire() as conn, conn.transaction():
            assert await a.queue(conn, [_result(0, True, model="large")], SCHEDULE) == 0

        # Another learner is mid-pass (it holds the layer's lock): b's learner leaves the queue to
        # it at once, while catching up (a replay, an evaluation) waits for it to commit.
        await _queue(pool, a, 1, False)
        async with pool.acquire() as conn, conn.transaction():
            await learned_models.lock(conn, MODEL)  # the head row exists (a first learner made it)
        async with pool.acquire() as holder:
            tx = holder.transaction()
            await tx.start()
            await learned_models.lock(holder, MODEL)
            assert await b.learn(pool, 10) == 0
            waiting = asyncio.create_task(b.catch_up(pool, 10))
            await asyncio.sleep(0.5)
            assert not waiting.done(), "catching up must wait for the lock"
            await tx.commit()
        assert await waiting == 1

        # a learns r2 from the state b left (it reloads first).
        await _queue(pool, a, 2, True)
        assert await a.learn(pool, 10) == 1

        # A pass that fails after writing the models rolls back: r3 stays queued, nothing moved.
        await _queue(pool, b, 3, True)
        save = learned_models.save

        async def save_then_fail(*args: object) -> int:
            await save(*args)  # type: ignore[arg-type]
            raise Failed

        monkeypatch.setattr(learned_models, "save", save_then_fail)
        with pytest.raises(Failed):
            await a.learn(pool, 10)
        monkeypatch.setattr(learned_models, "save", save)
        assert await _queued(pool) == 1
        async with pool.acquire() as conn:
            _, stored = await learned_models.load(conn, MODEL)
        after_two = ln.initial_state(CONFIG)
        for success in (False, True):  # r1 then r2: the queue order
            after_two = ln.apply_outcomes(after_two, [(ARM, FEATURES, None, success)], CONFIG)
        assert learned_rows.store(learned_rows.restore(stored, CONFIG)) == learned_rows.store(after_two)

        # The next pass (b's: it reloads, a had moved the layer) learns r3, once.
        assert await b.learn(pool, 10) == 1
        assert await b.learn(pool, 10) == 0
        assert await _queued(pool) == 0
        expected = ln.apply_outcomes(after_two, [(ARM, FEATURES, None, True)], CONFIG)
        async with pool.acquire() as conn:
            _, stored = await learned_models.load(conn, MODEL)
        # The outcomes had no task vector, so they taught the stacker alone and only its row was
        # written; the text models restore from their priors, as the pure layer still has them.
        assert set(stored) == {("stacker", "", "")}
        assert learned_rows.store(learned_rows.restore(stored, CONFIG)) == learned_rows.store(expected)

        after = await a.inputs(pool, [vector], [300], [ARM])
        assert a.state is not None
        assert np.array_equal(a.state.stacker.mean, expected.stacker.mean), "a reloaded the committed state"
        assert after[0] is not None and before[0] is not None
        assert after[0].weights == tuple(float(w) for w in expected.stacker.mean)
        assert before[0].weights == tuple(float(w) for w in ln.initial_state(CONFIG).stacker.mean)
        # b: once, when learning r3 (a had committed r2). a: when learning r2 (b had committed r1)
        # and for these inputs (b had committed r3); its failed pass moved nothing.
        assert (a.reloads, b.reloads) == (2, 1)
    finally:
        await pool.close()
