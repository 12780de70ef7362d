"""The learned layer live: the state the worker keeps in PostgreSQL is exactly what the pure layer
computes from the same outcomes in the same order, each outcome counts once (duplicates and
replays change nothing), and later schedules decide with that state."""

from __future__ import annotations

from collections import Counter
from typing import Any

import asyncpg
import numpy as np
from pgvector.asyncpg import register_vector

from processors.contracts import encode
from processors.demo_workload import SampleWorkload
from processors.postgres.stored_vectors import as_array
from processors.scheduling import learned as ln
from processors.scheduling import learned_rows
from processors.scheduling.types import Arm
from streams.runtime import Endpoints, open_runtime
from streams.worker.replay import replay
from tests.support.tables import differences, learned_state, learning_caught_up
from tests.support.topics import send_raw, wait_consumed

UNKNOWN = Arm("someone", "unlisted")


async def _features(conn: Any) -> dict[tuple[str, Arm], tuple[float, ...]]:
    rows = await conn.fetch(
        """SELECT p.task_id, f.agent, f.model, f.features FROM learned_features f
           JOIN predictions p USING (schedule_id)"""
    )
    return {(r["task_id"], Arm(r["agent"], r["model"])): tuple(r["features"]) for r in rows}


async def _vectors(conn: Any) -> dict[str, np.ndarray]:
    rows = await conn.fetch("SELECT task_id, embedding FROM task_embeddings")
    return {r["task_id"]: as_array(r["embedding"]) for r in rows}


async def _stored(conn: Any, embedding_model: str) -> learned_rows.StoredRows:
    rows = await conn.fetch(
        "SELECT component, agent, model, dimension, outcomes, state FROM learned_models WHERE embedding_model = $1",
        embedding_model,
    )
    return {
        (r["component"], r["agent"], r["model"]): (r["dimension"], r["outcomes"], bytes(r["state"]))
        for r in rows
    }


async def test_stored_state_is_the_pure_layer_over_the_same_outcomes_once(
    make_settings, endpoints, worker_factory
) -> None:
    settings = make_settings(learned_text_dimension=16)
    config = settings.learned_config()
    tasks_topic, results_topic, _ = settings.input_topics.values()
    workload = SampleWorkload(seed=11)
    first, second = workload.tasks(12), workload.tasks(6)

    conn = await asyncpg.connect(endpoints.dsn)
    try:
        async with worker_factory(settings) as (runtime, _):
            await register_vector(conn)  # the worker created the extension
            model = runtime.embedder.model_name
            await send_raw(settings, tasks_topic, [(s.task.task_id.encode(), encode(s.task)) for s in first])
            sent = Counter({tasks_topic: len(first)})
            await wait_consumed(conn, settings, sent)
            # Two of the arms each schedule considered ran, and one arm it did not consider (the
            # layer has no features for that one: it teaches the layer nothing).
            considered = await _features(conn)
            results = [
                workload.outcome(s, arm)
                for s in first
                for arms in [sorted(a for t, a in considered if t == s.task.task_id)]
                for arm in (arms[0], arms[-1])
            ]
            results.insert(5, workload.outcome(first[0], UNKNOWN))
            # One key: every outcome on one partition, so the order the worker applies them in is
            # the order they were sent in (the order the pure layer is replayed in below).
            result_records = [(b"outcomes", encode(r)) for r in results]
            await send_raw(settings, results_topic, result_records)
            await send_raw(settings, results_topic, result_records[:7])  # a producer's retry
            sent.update({results_topic: len(result_records) + 7})
            await wait_consumed(conn, settings, sent)
            await learning_caught_up(conn)
            after_outcomes = await _stored(conn, model)
            await send_raw(settings, tasks_topic, [(s.task.task_id.encode(), encode(s.task)) for s in second])
            sent.update({tasks_topic: len(second)})
            await wait_consumed(conn, settings, sent)
            features = await _features(conn)
            vectors = await _vectors(conn)
            chosen = {
                r["task_id"]: (Arm(r["agent"], r["model"]), r["success_probability"])
                for r in await conn.fetch(
                    "SELECT task_id, agent, model, success_probability FROM predictions"
                )
            }
            one_pass = await learned_state(conn)
    finally:
        await conn.close()

    # The pure layer over the same outcomes, in the same order, from the features stored at
    # schedule time, the stored task vectors and the descriptions' lengths.
    chars = {s.task.task_id: len(s.task.description) for s in (*first, *second)}
    assert len(set(chars.values())) > 1  # the length coordinate differs between tasks
    expected = ln.initial_state(config)
    for r in results:
        arm = Arm(r.agent, r.model)
        if arm == UNKNOWN:
            continue
        phi = ln.project(vectors[r.task_id], config, chars[r.task_id])
        expected = ln.apply_outcomes(expected, [(arm, features[(r.task_id, arm)], phi, r.success)], config)
    assert expected.stacker.count == len(results) - 1 == 24
    assert after_outcomes == learned_rows.store(expected), "stored state differs from the pure layer's"
    assert one_pass["learned_models"] and len(one_pass["learned_layers"]) == 1

    # Tasks scheduled after the outcomes decided with that state: their text logits and the chosen
    # arm's probability are the pure layer's.
    for sample in second:
        task_id = sample.task.task_id
        lin = ln.learned_input(
            expected, ln.project(vectors[task_id], config, chars[task_id]), list(expected.text_arm)
        )
        arm, probability = chosen[task_id]
        feats = features[(task_id, arm)]
        assert feats[6] == max(-ln.MAX_FEATURE, min(ln.MAX_FEATURE, lin.text_all))
        assert feats[5] == max(-ln.MAX_FEATURE, min(ln.MAX_FEATURE, lin.text_arm.get(arm, 0.0)))
        assert feats[7] == max(-ln.MAX_FEATURE, min(ln.MAX_FEATURE, lin.length_arm.get(arm, 0.0)))
        assert probability == ln.stacked_probability(lin.weights, feats)

    # Replaying every topic twice applies nothing again.
    runtime = await open_runtime(settings, Endpoints(endpoints.bootstrap, endpoints.dsn))
    try:
        reports = [await replay(runtime, list(settings.input_topics.values())) for _ in range(2)]
    finally:
        await runtime.close()
    assert [(r.processed, r.dead_lettered) for r in reports] == [(0, 0), (0, 0)]
    conn = await asyncpg.connect(endpoints.dsn)
    try:
        assert differences(one_pass, await learned_state(conn)) == []
    finally:
        await conn.close()
