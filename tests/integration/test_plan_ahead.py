"""A task batch planned while the batch before it commits: used only when it read the history
the batch would have read (processors/pipeline/tasks.py, prepare_ahead)."""

from __future__ import annotations

import asyncio

import orjson
from msgspec.structs import replace

from processors.contracts import TaskCreated
from processors.pipeline.tasks import PlanAheadStats
from processors.records import BatchResult, Incoming, SourceRef
from streams.runtime import Runtime, open_runtime
from tests.integration.test_index_queue import outcome, task

NEAR = "rotate the TLS certificates of the billing gateway before they expire"


async def _run(runtime: Runtime, events: list[TaskCreated], offset: int) -> BatchResult:
    items = [Incoming(e, SourceRef("in", 0, offset + i), b"") for i, e in enumerate(events)]
    return await runtime.pipeline.tasks.process(items, [], [SourceRef("in", 0, offset + len(events) - 1)])


def _ahead(runtime: Runtime, events: list[TaskCreated], offset: int) -> None:
    items = [Incoming(e, SourceRef("in", 0, offset + i), b"") for i, e in enumerate(events)]
    runtime.pipeline.tasks.prepare_ahead(items)


async def _outcomes(runtime: Runtime, task_ids: list[str], offset: int) -> None:
    items = [Incoming(outcome(t), SourceRef("res", 0, offset + i), b"") for i, t in enumerate(task_ids)]
    await runtime.pipeline.results.process(items, [], [SourceRef("res", 0, offset + len(items) - 1)])


def _decisions(result: BatchResult) -> dict[str, tuple[object, ...]]:
    out = {}
    for record in result.outputs:
        s = orjson.loads(record.value)
        similar = tuple(t["task_id"] for t in s["similar_tasks"])
        out[s["task_id"]] = (s["agent"], s["model"], s["success_probability"], s["cold_start"], similar)
    return out


async def test_a_plan_made_ahead_is_used_and_decides_as_a_fresh_one(make_settings, endpoints) -> None:
    runtime = await open_runtime(make_settings(), endpoints)
    try:
        await _run(runtime, [task("A"), task("B", "write the quarterly newsletter about hiring")], 0)
        await _outcomes(runtime, ["A", "B"], 0)
        batch = [task("P1", NEAR), task("P2", "draft the newsletter on hiring for the quarter")]
        fresh_plan = await runtime.pipeline.tasks.plan(batch)

        _ahead(runtime, batch, 10)
        result = await _run(runtime, batch, 10)
    finally:
        await runtime.close()
    assert runtime.pipeline.tasks.plans_ahead == PlanAheadStats(used=1, decided_again=0)
    assert result.processed == 2
    expected = {
        s.task_id: (
            s.agent,
            s.model,
            s.success_probability,
            s.cold_start,
            tuple(t.task_id for t in s.similar_tasks),
        )
        for s in fresh_plan[1]
    }
    assert _decisions(result) == expected
    assert _decisions(result)["P1"][4][0] == "A"


async def test_an_outcome_applied_meanwhile_makes_the_batch_decide_again(make_settings, endpoints) -> None:
    runtime = await open_runtime(make_settings(), endpoints)
    try:
        await _run(runtime, [task("A"), task("C", NEAR)], 0)
        await _outcomes(runtime, ["A"], 0)
        probe = task("P3", NEAR + " today")
        _ahead(runtime, [probe], 10)
        await asyncio.sleep(0.2)  # let the plan made ahead finish: it cannot know C succeeded
        await _outcomes(runtime, ["C"], 10)
        result = await _run(runtime, [probe], 10)
    finally:
        await runtime.close()
    assert runtime.pipeline.tasks.plans_ahead == PlanAheadStats(used=0, decided_again=1)
    assert "C" in _decisions(result)["P3"][4], "the batch decided on the outcome applied after planning ahead"


async def test_a_plan_made_for_other_events_is_not_used(make_settings, endpoints) -> None:
    runtime = await open_runtime(make_settings(), endpoints)
    try:
        first = task("P4", NEAR)
        again = replace(first, event_id="created-P4-again", description="a different text now")
        _ahead(runtime, [first], 0)
        result = await _run(runtime, [again], 5)
        left = list(runtime.pipeline.tasks._ahead)
        runtime.pipeline.tasks.discard_ahead()
        await asyncio.sleep(0)
    finally:
        await runtime.close()
    assert runtime.pipeline.tasks.plans_ahead == PlanAheadStats(used=0, decided_again=0)
    assert result.processed == 1
    assert len(left) == 1, "the unused plan waits for its own batch until discarded"
    assert left[0].job.cancelled() or left[0].job.done()


async def test_a_learner_pass_meanwhile_makes_the_batch_decide_again(make_settings, endpoints) -> None:
    runtime = await open_runtime(make_settings(), endpoints)
    layer = runtime.pipeline.learned
    try:
        agent, model, *_ = _decisions(await _run(runtime, [task("A")], 0))["A"]
        ran = replace(outcome("A"), agent=agent, model=model)  # the arm its schedule chose
        await runtime.pipeline.results.process(
            [Incoming(ran, SourceRef("res", 0, 0), b"")], [], [SourceRef("res", 0, 0)]
        )  # queued for the learned layer, not learned yet
        probe = task("P5", NEAR)
        _ahead(runtime, [probe], 10)
        await asyncio.sleep(0.2)  # let the plan made ahead finish, with the layer as it was
        assert await layer.catch_up(runtime.pool, 100) == 1
        await _run(runtime, [probe], 10)
    finally:
        await runtime.close()
    assert runtime.pipeline.tasks.plans_ahead == PlanAheadStats(used=0, decided_again=1)
