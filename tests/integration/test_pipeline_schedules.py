"""Schedules through the real broker and database: their contract, their prediction rows, the
cold-start tier table before any history, and learning from outcomes afterwards."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import orjson

from processors.contracts import ExecutionResult, TaskCreated
from processors.contracts.codec import validate_output
from processors.scheduling import load_tiers, tiers_for_kind
from streams.client import TasksagePublisher
from streams.settings import Settings
from tests.support.topics import read_topic
from tests.support.waiting import eventually

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
COST = {"small": 0.001, "medium": 0.01, "large": 0.1}
MODELS = ("small", "medium", "large")

# Quick look-ups that every researcher model gets right, and deep comparisons only the large
# model gets right. Most research work is of the first kind, as in real queues.
EASY = [
    f"summarize the {a} release notes for {topic}"
    for a in ("PostgreSQL", "Kafka", "Redis", "gRPC")
    for topic in ("retries", "caching", "timeouts", "webhooks")
]
HARD = [
    f"compare {a} and {b} for {topic} and recommend one with a cost model and migration plan"
    for a, b, topic in (
        ("PostgreSQL", "MySQL", "caching"),
        ("Kafka", "Pulsar", "retries"),
        ("Redis", "Memcached", "timeouts"),
        ("gRPC", "REST", "pagination"),
    )
]


def task(task_id: str, description: str, kind: str | None, minutes: int = 0, **extra: Any) -> TaskCreated:
    return TaskCreated(
        event_id=f"created-{task_id}",
        occurred_at=T0 + timedelta(minutes=minutes),
        task_id=task_id,
        description=description,
        kind=kind,
        **extra,
    )


def outcome(task_id: str, agent: str, model: str, success: bool) -> ExecutionResult:
    return ExecutionResult(
        event_id=f"result-{task_id}-{agent}-{model}",
        occurred_at=T0 + timedelta(hours=1),
        task_id=task_id,
        agent=agent,
        model=model,
        success=success,
        finished_at=T0 + timedelta(hours=1),
        duration_ms={"small": 2_000.0, "medium": 5_000.0, "large": 12_000.0}[model],
        cost_usd=COST[model],
        error_message=None if success else "answer did not pass review",
    )


async def publish(
    settings: Settings, tasks: Sequence[TaskCreated], results: Sequence[ExecutionResult]
) -> None:
    async with TasksagePublisher(settings) as publisher:
        for t in tasks:
            await publisher.publish_task(t, wait=False)
        for r in results:
            await publisher.publish_result(r, wait=False)
        await publisher.flush()


async def schedules_by_task(settings: Settings, count: int) -> dict[str, dict[str, Any]]:
    """The task-schedules records, each checked against the published schema and its key."""
    records = await read_topic(settings, settings.topic_task_schedules, count)
    out: dict[str, dict[str, Any]] = {}
    for record in records:
        assert record.value is not None
        validate_output("task-schedule", record.value)
        doc = orjson.loads(record.value)
        assert record.key == doc["task_id"].encode(), "schedules are keyed by task id"
        assert doc["task_id"] not in out, f"one schedule per task-created event, got two for {doc['task_id']}"
        out[doc["task_id"]] = doc
    assert len(out) == count
    return out


async def test_every_schedule_is_complete_keyed_by_task_and_stored_as_a_prediction(
    make_settings, endpoints, worker_factory
) -> None:
    settings = make_settings()
    history = [task(f"H{i}", d, "research", i) for i, d in enumerate(EASY[:6] + HARD[:2])]
    results = [
        outcome(t.task_id, "researcher", m, t.description in EASY or m == "large")
        for t in history
        for m in MODELS
    ]
    deadline = T0 + timedelta(hours=6)
    new = [
        task("N1", EASY[6], "research", 30, priority=5, deadline=deadline, requirements=("web",)),
        task("N2", HARD[2], "research", 31, dependencies=("N1",), context={"ticket": "R-12"}),
    ]
    conn = await asyncpg.connect(endpoints.dsn)
    try:
        async with worker_factory(settings) as (runtime, _):
            await publish(settings, history, results)
            await eventually(lambda: conn.fetchval("SELECT count(*) FROM executions"), lambda n: n == 24)
            await publish(settings, new, [])
            schedules = await schedules_by_task(settings, len(history) + len(new))
            predictions = await eventually(
                lambda: conn.fetch("SELECT * FROM predictions ORDER BY task_id"), lambda rows: len(rows) == 10
            )
    finally:
        await conn.close()

    model_name = runtime.embedder.model_name
    for doc in schedules.values():
        assert doc["embedding_model"] == model_name
        assert doc["schema_version"] == 1
        assert doc["success_target"] == settings.success_target
        assert doc["schedule_id"] == f"{doc['task_id']}:created-{doc['task_id']}"
        assert doc["source_event_id"] == f"created-{doc['task_id']}"
        chosen = [a for a in doc["alternatives"] if (a["agent"], a["model"]) == (doc["agent"], doc["model"])]
        assert len(chosen) == 1, "the chosen arm is one of the alternatives"
        assert chosen[0]["success_probability"] == doc["success_probability"]
        assert chosen[0]["expected_cost_usd"] == doc["expected_cost_usd"]

    # Before any outcome the first task knows nothing similar; once history exists the new
    # tasks name the past tasks that drove the decision and every arm they weighed.
    assert schedules["H0"]["similar_tasks"] == []
    assert schedules["H0"]["cold_start"] is True
    for task_id, created in (("N1", new[0]), ("N2", new[1])):
        doc = schedules[task_id]
        assert doc["cold_start"] is False
        similar = {s["task_id"]: s["similarity"] for s in doc["similar_tasks"]}
        assert set(similar) == {t.task_id for t in history}, "every past task with outcomes is a neighbour"
        assert all(-1.0 <= s <= 1.0 for s in similar.values())
        sims = [s["similarity"] for s in doc["similar_tasks"]]
        assert sims == sorted(sims, reverse=True), "most similar first"
        arms = {(a["agent"], a["model"]) for a in doc["alternatives"]}
        assert {("researcher", m) for m in MODELS} <= arms
        assert all(a["evidence"] > 0 for a in doc["alternatives"] if a["agent"] == "researcher")
        assert doc["priority"] == created.priority
        assert doc["kind"] == "research"
    assert datetime.fromisoformat(schedules["N1"]["deadline"]) == deadline
    assert schedules["N2"]["deadline"] is None
    # The hard task's closest neighbours are the hard ones.
    assert schedules["N2"]["similar_tasks"][0]["task_id"] in {"H6", "H7"}

    # One prediction row per schedule, holding what was published.
    assert [p["task_id"] for p in predictions] == sorted(schedules)
    for p in predictions:
        doc = schedules[p["task_id"]]
        assert p["schedule_id"] == doc["schedule_id"]
        assert (p["agent"], p["model"]) == (doc["agent"], doc["model"])
        assert p["success_probability"] == doc["success_probability"]
        assert p["confidence"] == doc["confidence"]
        assert p["predicted_duration_ms"] == doc["predicted_duration_ms"]
        assert p["expected_cost_usd"] == doc["expected_cost_usd"]
        assert p["cold_start"] == doc["cold_start"]
        assert p["exploration"] == doc["exploration"]
        assert p["embedding_model"] == model_name
        assert orjson.loads(p["alternatives"]) == doc["alternatives"]
        assert p["source_event_id"] == doc["source_event_id"]


async def test_tier_table_on_cold_start_then_cheaper_model_for_work_that_proved_easy(
    make_settings, endpoints, worker_factory
) -> None:
    # Full feedback (every arm's outcome is revealed), so exploration is off and every
    # decision follows from the evidence alone. This is the chain of estimates on a handful of
    # outcomes: the learned layer on top of it starts at the kind's base rate and trusts the
    # neighbours only as fast as outcomes show they predict (test_pipeline_learned.py), which
    # a few dozen outcomes do not.
    settings = make_settings(exploration_rate=0.0, learned_enabled=False)
    tiers = load_tiers(settings.tiers_file)

    def tier_one(kind: str | None) -> tuple[str, str]:
        arm = tiers_for_kind(tiers, kind)[0].arm
        return arm.agent, arm.model

    cold = [
        task("C1", EASY[0], "research"),
        task("C2", HARD[0], "research", 1),
        task("C3", "rotate credentials for payments-api", None, 2),
        task("C4", "fix typo in billing error message", "code", 3),
    ]
    # Cold start differs by kind in deploy/tiers.toml; the test relies on that, so say so.
    assert tier_one("research") != tier_one("code") != tier_one(None)
    history = [task(f"H{i}", d, "research", 10 + i) for i, d in enumerate(EASY[1:14] + HARD[1:3])]
    learned = cold[:2] + history
    results = [
        outcome(t.task_id, "researcher", m, t.description in EASY or m == "large")
        for t in learned
        for m in MODELS
    ]
    new_easy = task("N-easy", EASY[15], "research", 60)
    new_hard = task("N-hard", HARD[3], "research", 61)

    conn = await asyncpg.connect(endpoints.dsn)
    try:
        async with worker_factory(settings):
            await publish(settings, cold, [])
            await eventually(
                lambda: conn.fetchval("SELECT count(*) FROM predictions"), lambda n: n == len(cold)
            )
            await publish(settings, history, results)
            await eventually(
                lambda: conn.fetchval("SELECT count(*) FROM executions"), lambda n: n == len(results)
            )
            await publish(settings, [new_easy, new_hard], [])
            schedules = await schedules_by_task(settings, len(cold) + len(history) + 2)
    finally:
        await conn.close()

    for t in cold:
        doc = schedules[t.task_id]
        assert doc["cold_start"] is True, t.task_id
        assert (doc["agent"], doc["model"]) == tier_one(t.kind), t.task_id

    tier_arm = tier_one("research")
    tier_cost = next(a for a in schedules["C1"]["alternatives"] if (a["agent"], a["model"]) == tier_arm)[
        "expected_cost_usd"
    ]
    easy, hard = schedules["N-easy"], schedules["N-hard"]
    context = f"easy={_summary(easy)} hard={_summary(hard)}"
    assert easy["cold_start"] is False and hard["cold_start"] is False, context
    assert (easy["agent"], easy["model"]) == ("researcher", "small"), context
    assert easy["success_probability"] >= settings.success_target, context
    assert easy["expected_cost_usd"] < tier_cost, "cheaper than the tier table's answer"
    assert (hard["agent"], hard["model"]) == ("researcher", "large"), context
    assert hard["success_probability"] >= settings.success_target, context
    # The similar tasks that drove each decision are the right family.
    hard_ids = {"C2", *(t.task_id for t in history if t.description in HARD)}
    assert hard["similar_tasks"][0]["task_id"] in hard_ids
    assert easy["similar_tasks"][0]["task_id"] not in hard_ids
    small_on_hard = _alternative(hard, "researcher", "small")
    small_on_easy = _alternative(easy, "researcher", "small")
    assert (
        small_on_hard["success_probability"] < settings.success_target <= small_on_easy["success_probability"]
    )


def _alternative(doc: dict[str, Any], agent: str, model: str) -> dict[str, Any]:
    return next(a for a in doc["alternatives"] if (a["agent"], a["model"]) == (agent, model))


def _summary(doc: dict[str, Any]) -> str:
    arms = ", ".join(
        f"{a['agent']}/{a['model']} p={a['success_probability']:.3f} n={a['evidence']:.2f}"
        for a in doc["alternatives"]
    )
    return f"{doc['agent']}/{doc['model']} [{arms}]"


async def test_a_kind_without_history_is_not_routed_to_another_kinds_agent(
    make_settings, endpoints, worker_factory
) -> None:
    settings = make_settings(exploration_rate=0.0)
    history = [task(f"H{i}", d, "research", i) for i, d in enumerate(EASY[:8])]
    results = [outcome(t.task_id, "researcher", m, True) for t in history for m in MODELS]
    code_task = task("N-code", "fix typo in billing error message", "code", 30)
    conn = await asyncpg.connect(endpoints.dsn)
    try:
        async with worker_factory(settings):
            await publish(settings, history, results)
            await eventually(
                lambda: conn.fetchval("SELECT count(*) FROM executions"), lambda n: n == len(results)
            )
            await publish(settings, [code_task], [])
            schedules = await schedules_by_task(settings, len(history) + 1)
    finally:
        await conn.close()
    doc = schedules["N-code"]
    tier = tiers_for_kind(load_tiers(settings.tiers_file), "code")
    assert doc["agent"] in {t.arm.agent for t in tier}, _summary(doc)


async def test_ids_at_their_longest_still_make_schedules_the_schema_accepts(
    make_settings, endpoints, worker_factory
) -> None:
    """A task id and an event id of 200 characters each (what the input schema allows) would make
    `schedule:<task id>:<event id>` 410 characters; the published event_id holds 200."""
    settings = make_settings()
    long_task = TaskCreated(
        event_id="e" * 200, occurred_at=T0, task_id="T" * 200, description=EASY[0], kind="research"
    )
    async with worker_factory(settings):
        await publish(settings, [long_task, task("SHORT", EASY[1], "research")], [])
        schedules = await schedules_by_task(settings, 2)  # each validated against the schema
    natural = f"{'T' * 200}:{'e' * 200}"
    assert schedules["T" * 200]["schedule_id"] == natural
    assert (
        schedules["T" * 200]["event_id"] == "schedule:sha256:" + hashlib.sha256(natural.encode()).hexdigest()
    )
    assert schedules["SHORT"]["event_id"] == "schedule:SHORT:created-SHORT"
