"""Two workers' copies of the learned layer on one database: updates serialise on the layer's row
lock, a copy that another worker (or its own rolled-back transaction) left stale reloads, and the
stored state is the pure layer over the committed outcomes in commit order."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import numpy as np

from processors.contracts import ExecutionResult
from processors.pipeline.learned_updates import LearnedLayer
from processors.postgres import learned_models
from processors.scheduling import learned as ln
from processors.scheduling.types import Arm
from streams.runtime import open_pool, prepare_database

ARM = Arm("coder", "small")
MODEL = "test-model"
CONFIG = ln.LearnedConfig(text_dimension=8)
FEATURES = (1.0, 0.4, 0.3, 0.1, -0.8, 0.0, 0.0)
SCHEDULE = {0: "T1:e1"}  # each one-result batch: its task's latest schedule (no task vector)


def _result(n: int, success: bool) -> ExecutionResult:
    at = datetime(2026, 1, 1, tzinfo=UTC)
    return ExecutionResult(
        event_id=f"r{n}",
        occurred_at=at,
        task_id="T1",
        agent=ARM.agent,
        model=ARM.model,
        success=success,
        finished_at=at,
    )


class Rollback(Exception):
    pass


async def test_workers_serialise_updates_and_reload_what_others_changed(make_settings, endpoints) -> None:
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
        before = await b.inputs(pool, [vector], [ARM])

        # Worker a learns from r1 while worker b waits for the layer's lock to learn from r2.
        first = pool.acquire()
        conn_a = await first.__aenter__()
        tx_a = conn_a.transaction()
        await tx_a.start()
        assert await a.apply(conn_a, [_result(1, False)], SCHEDULE, {}) == 1

        async def b_learns() -> int:
            async with pool.acquire() as conn, conn.transaction():
                return await b.apply(conn, [_result(2, True)], SCHEDULE, {})

        waiting = asyncio.create_task(b_learns())
        await asyncio.sleep(0.5)
        assert not waiting.done(), "b must wait for a's transaction"
        await tx_a.commit()
        await first.__aexit__(None, None, None)
        assert await waiting == 1

        # a's transaction that rolls back leaves its copy ahead of the database.
        try:
            async with pool.acquire() as conn, conn.transaction():
                await a.apply(conn, [_result(3, True)], SCHEDULE, {})
                raise Rollback
        except Rollback:
            pass

        expected = ln.initial_state(CONFIG)
        for success in (False, True):  # r1 then r2: the commit order
            expected = ln.apply_outcomes(expected, [(ARM, FEATURES, None, success)], CONFIG)
        async with pool.acquire() as conn:
            _, stored = await learned_models.load(conn, MODEL)
        # The outcomes had no task vector, so they taught the stacker alone and only its row was
        # written; the text models restore from their priors, as the pure layer still has them.
        assert set(stored) == {("stacker", "", "")}
        assert ln.store(ln.restore(stored, CONFIG)) == ln.store(expected)

        after = await a.inputs(pool, [vector], [ARM])
        assert a.state is not None
        assert np.array_equal(a.state.stacker.mean, expected.stacker.mean), "a reloaded the committed state"
        assert after[0] is not None and before[0] is not None
        assert after[0].weights == tuple(float(w) for w in expected.stacker.mean)
        assert before[0].weights == tuple(float(w) for w in ln.initial_state(CONFIG).stacker.mean)
        # b reloaded once (a had committed r1); a twice (b had committed r2; its own r3 rolled back).
        assert (a.reloads, b.reloads) == (2, 1)
    finally:
        await pool.close()
