"""Insights end to end: a workload with planted weaknesses (one arm failing on one family, one
family no arm can do, one arm never picked) is reported as such by all four insights; the
worker publishes insights snapshots; dependencies and requirements shape what is published."""

from __future__ import annotations

from pathlib import Path

import asyncpg
import orjson

from processors.contracts import TaskCreated
from processors.contracts.codec import decode_insights_snapshot, validate_output
from processors.demo_workload import (
    IMPOSSIBLE,
    UNUSED_ARM,
    UNUSED_TIER_TOML,
    WEAK_ARM,
    WEAK_ERROR,
    WEAK_FAMILY,
    SampleWorkload,
)
from processors.insights.accuracy import WINDOWS
from processors.pipeline.insights import InsightsBuilder
from processors.scheduling.types import Arm
from streams.client import TasksagePublisher
from streams.settings import Settings
from tests.support.topics import read_topic
from tests.support.waiting import eventually

ROUNDS, PER_ROUND = 6, 60


def planted_tiers(tmp_path: Path) -> Path:
    shipped: Path = Settings.model_fields["tiers_file"].default
    path = tmp_path / "tiers.toml"
    path.write_text(shipped.read_text("utf-8") + UNUSED_TIER_TOML, "utf-8")
    return path


async def test_planted_weaknesses_are_found_by_all_four_insights(
    make_settings, worker_factory, tmp_path
) -> None:
    # The chain of estimates routes: it moves the weak arm off its family within these 360
    # outcomes, which the failure-pattern assertion below relies on (the pattern must stand out
    # against the arm's overall failure rate). The learned layer learns per-kind rates more
    # slowly (it starts at the heavily shrunk kind rate), keeps the weak arm in use longer and
    # raises its overall failure rate to 0.53 here, so its lift on this workload is 1.87.
    settings = make_settings(
        tiers_file=planted_tiers(tmp_path), insights_interval_s=1.0, learned_enabled=False
    )
    workload = SampleWorkload(seed=11, planted=True)
    results = 0
    async with worker_factory(settings) as (runtime, _), TasksagePublisher(settings) as publisher:
        conn = await asyncpg.connect(runtime.endpoints.dsn)
        try:
            for _ in range(ROUNDS):
                batch = workload.tasks(PER_ROUND)
                for sample in batch:
                    await publisher.publish_task(sample.task, wait=False)
                await publisher.flush()
                ids = [s.task.task_id for s in batch]
                chosen = await eventually(
                    lambda ids=ids: conn.fetch(
                        "SELECT task_id, agent, model FROM predictions WHERE task_id = ANY($1::text[])", ids
                    ),
                    lambda rows: len(rows) == PER_ROUND,
                    timeout_s=120,
                )
                arm_of = {r["task_id"]: Arm(r["agent"], r["model"]) for r in chosen}
                for sample in batch:
                    await publisher.publish_result(
                        workload.outcome(sample, arm_of[sample.task.task_id]), wait=False
                    )
                await publisher.flush()
                results += PER_ROUND
                await eventually(
                    lambda: conn.fetchval("SELECT count(*) FROM executions"),
                    lambda n, expected=results: n == expected,
                    timeout_s=120,
                )
        finally:
            await conn.close()
        builder = InsightsBuilder(runtime.pool, runtime.embedder, settings.insights_config())
        accuracy = {b.window: b for b in await builder.accuracy()}
        failures = await builder.failures()
        gaps = await builder.gaps()
        arms = {r.arm: r for r in await builder.arms()}
        published = await read_topic(settings, settings.topic_insights, 1, timeout_s=60)

    # Live accuracy: every outcome scored once (each task had one prediction), per arm and kind.
    assert accuracy["all"].overall.outcomes == ROUNDS * PER_ROUND
    assert sum(s.outcomes for s in accuracy["all"].per_arm.values()) == ROUNDS * PER_ROUND
    assert set(accuracy) == set(WINDOWS)
    weak = accuracy["all"].per_arm[(WEAK_ARM.agent, WEAK_ARM.model)]
    assert weak.outcomes > 0 and weak.brier is not None

    # Failure patterns: the weak arm on its family is a cluster of its own, far above its rate.
    pattern = next(f for f in failures if f.arms[0].arm == WEAK_ARM and f.kinds[0][0] == WEAK_FAMILY)
    assert pattern.representatives[0].error_message == WEAK_ERROR
    assert pattern.failure_rate > 2 * pattern.overall_failure_rate
    assert pattern.lift == pattern.failure_rate / pattern.overall_failure_rate

    # Capability gaps: the family no arm can do, and nothing the arms do well.
    assert gaps, "the impossible family is a gap"
    assert gaps[0].kinds[0][0] == IMPOSSIBLE.kind
    assert gaps[0].best_probability < settings.success_target
    assert {k for g in gaps for k, _ in g.kinds[:1]} == {IMPOSSIBLE.kind}

    # Agents in use: the arm configured for work that never comes is flagged unused.
    assert arms[UNUSED_ARM].flags == ("unused",)
    assert arms[UNUSED_ARM].schedule_share == 0.0
    assert "unused" not in arms[WEAK_ARM].flags

    # The worker published insights snapshots meanwhile, valid against their schema.
    assert published[0].value is not None
    validate_output("insights-snapshot", published[0].value)
    assert [w.window for w in decode_insights_snapshot(published[0].value).accuracy] == list(WINDOWS)


def created(task_id: str, **extra: object) -> TaskCreated:
    from datetime import UTC, datetime

    return TaskCreated(
        event_id=f"created-{task_id}",
        occurred_at=datetime(2026, 3, 2, 9, 0, tzinfo=UTC),
        task_id=task_id,
        description=f"fix typo in billing error message {task_id}",
        kind="code",
        **extra,  # type: ignore[arg-type]
    )


async def test_dependencies_order_the_snapshot_and_requirements_name_the_impossible(
    make_settings, worker_factory, tmp_path
) -> None:
    tiers = tmp_path / "tiers.toml"
    tiers.write_text(
        '[[kinds."*"]]\nagent = "generalist"\nmodel = "small"\ncapabilities = ["python"]\n\n'
        '[[kinds."*"]]\nagent = "browser"\nmodel = "medium"\ncapabilities = ["python", "browser"]\n',
        "utf-8",
    )
    settings = make_settings(tiers_file=tiers)
    tasks = [
        created("D-1", priority=0),
        created("T-2", priority=9, dependencies=("D-1",)),
        created("C-1", priority=1, dependencies=("C-2",)),
        created("C-2", priority=1, dependencies=("C-1",)),
        created("U-1", priority=5, dependencies=("ghost",)),
        created("W-1", priority=0, requirements=("browser",)),
        created("G-1", priority=0, requirements=("gpu",)),
    ]
    async with worker_factory(settings), TasksagePublisher(settings) as publisher:
        for t in tasks:
            await publisher.publish_task(t, wait=False)
        await publisher.flush()
        schedules = await read_topic(settings, settings.topic_task_schedules, len(tasks))
        snapshot = await eventually(
            lambda: read_topic(settings, settings.topic_schedule_snapshots, 1),
            lambda records: any(
                orjson.loads(r.value or b"{}").get("pending_count") == len(tasks) for r in records
            ),
        )
    by_task = {orjson.loads(r.value or b"{}")["task_id"]: orjson.loads(r.value or b"{}") for r in schedules}
    assert (by_task["W-1"]["agent"], by_task["W-1"]["model"]) == ("browser", "medium")
    assert "unsatisfiable_requirements" not in by_task["W-1"]
    assert by_task["G-1"]["unsatisfiable_requirements"] == ["gpu"]
    assert "unsatisfiable_requirements" not in by_task["D-1"]

    last = next(
        orjson.loads(r.value or b"{}")
        for r in reversed(snapshot)
        if orjson.loads(r.value or b"{}").get("pending_count") == len(tasks)
    )
    validate_output("schedule-snapshot", orjson.dumps(last))
    order = [e["task_id"] for e in last["entries"]]
    blocked = {e["task_id"]: e.get("blocked_by") for e in last["entries"]}
    assert set(order[:3]) == {"D-1", "W-1", "G-1"}  # ready work first, whatever the priorities
    assert order.index("D-1") < order.index("T-2")
    assert blocked["T-2"] == ["D-1"] and blocked["U-1"] == ["ghost"]
    assert blocked["C-1"] == ["C-2"] and blocked["C-2"] == ["C-1"]
    assert last["blocked_count"] == 4
    assert sorted((p["kind"], p["task_ids"]) for p in last["dependency_problems"]) == [
        ("cycle", ["C-1", "C-2"]),
        ("unknown_dependency", ["U-1"]),
    ]
