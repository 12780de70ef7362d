"""The failure of seeds/002: 237 messages and 125 knowledge rows, all without embeddings, no
vector index, search silently broken. Here the same volume goes through the real worker and
must come out embedded, indexed, searchable and visible in coverage."""

from __future__ import annotations

import asyncio
import os
import random
import sys
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
from prometheus_client import REGISTRY

from processors.contracts import MessageIngested, TaskCreated
from processors.postgres import coverage
from processors.postgres.pool import create_pool
from processors.search.types import Filters
from streams.client import TasksagePublisher, records
from streams.commands.status import gather_status
from streams.search_runtime import open_search
from streams.settings import Settings
from tests.support.waiting import eventually

T0 = datetime(2026, 5, 4, 9, 0, tzinfo=UTC)
TOPICS = {
    "billing": "invoice payment refund charge card billing subscription receipt overdue stripe",
    "login": "login password reset account locked twofactor sso session token signin",
    "deploy": "deploy pipeline rollback release build staging production canary artifact helm",
    "database": "postgres query slow index vacuum replication connection pool deadlock latency",
    "mobile": "android ios app crash screen freeze store push battery tablet",
    "search": "search embeddings vector pgvector semantic results relevance hnsw ranking coverage",
    "onboarding": "onboarding docs tutorial welcome guide setup workspace invite team checklist",
    "support": "customer ticket complaint escalation response sla agent chat feedback priority",
}
FILLER = [
    "hi",
    "please",
    "can",
    "someone",
    "look",
    "today",
    "asap",
    "thanks",
    "again",
    "still",
    "seeing",
    "this",
    "since",
    "morning",
]
MESSAGES = 237
TASKS = 125


def seed_messages() -> list[MessageIngested]:
    rng = random.Random(2)
    out = []
    names = sorted(TOPICS)
    for i in range(MESSAGES - 1):  # the last one is a duplicate, published afterwards
        topic = names[i % len(names)]
        words = rng.sample(TOPICS[topic].split(), 5) + rng.sample(FILLER, 3)
        rng.shuffle(words)
        out.append(
            MessageIngested(
                event_id=f"msg-event-{i}",
                occurred_at=T0 + timedelta(minutes=i),
                message_id=f"msg-{topic}-{i:03d}",
                source="telegram" if i % 10 else "email",
                author=f"user{i % 7}",
                content=" ".join(words).capitalize() + ".",
                thread_id=f"thread-{topic}",
            )
        )
    return out


def seed_tasks() -> list[TaskCreated]:
    rng = random.Random(3)
    names = sorted(TOPICS)
    return [
        TaskCreated(
            event_id=f"task-event-{i}",
            occurred_at=T0 + timedelta(minutes=i),
            task_id=f"task-{names[i % len(names)]}-{i:03d}",
            description="Investigate " + " ".join(rng.sample(TOPICS[names[i % len(names)]].split(), 5)),
            kind="ops",
        )
        for i in range(TASKS)
    ]


def topic_of(row_id: str) -> str:
    return row_id.split("-")[1]


async def _notices(
    settings: Settings, wanted: Callable[[dict[str, Any]], bool], timeout_s: float
) -> dict[str, Any]:
    async def first() -> dict[str, Any]:
        async for value in records(
            settings,
            settings.topic_message_duplicates,
            from_beginning=True,
            bootstrap=settings.kafka_bootstrap_servers,
        ):
            notice: dict[str, Any] = orjson.loads(value)
            if wanted(notice):
                return notice
        raise AssertionError("duplicates topic ended")

    return await asyncio.wait_for(first(), timeout_s)


def _gauge(name: str, **labels: str) -> float | None:
    return REGISTRY.get_sample_value(name, labels)


async def test_every_seed_message_is_embedded_indexed_searchable_and_counted(
    make_settings: Callable[..., Settings], endpoints: Any, worker_factory: Any
) -> None:
    settings = make_settings(coverage_interval_s=0.3)
    messages, tasks = seed_messages(), seed_tasks()
    pool = None
    try:
        async with worker_factory(settings) as (runtime, _worker):
            pool = await create_pool(endpoints.dsn)  # after the worker's migrations: needs the vector type
            model = runtime.embedder.model_name
            async with TasksagePublisher(settings) as publisher:
                for m in messages:
                    await publisher.publish_message(m, wait=False)
                for t in tasks:
                    await publisher.publish_task(t, wait=False)
                await publisher.flush()

            async def missing() -> tuple[int, int, int, int]:
                async with pool.acquire() as conn:
                    msgs = await coverage.coverage(conn, "messages", model)
                    tsks = await coverage.coverage(conn, "tasks", model)
                return msgs.total, msgs.missing, tsks.total, tsks.missing

            # "Shortly after": every row is in and none lacks a current embedding.
            await eventually(missing, lambda v: v == (MESSAGES - 1, 0, TASKS, 0), timeout_s=60)

            # A near-copy of an earlier message is flagged, with both ids, on message-duplicates.
            original = messages[5]
            copy = MessageIngested(
                event_id="msg-event-dup",
                occurred_at=T0 + timedelta(days=1),
                message_id=f"msg-{topic_of(original.message_id)}-dup",
                source="telegram",
                author="user9",
                content=original.content.upper().rstrip(".") + "!!",
            )
            async with TasksagePublisher(settings) as publisher:
                await publisher.publish_message(copy)
            notice = await _notices(settings, lambda n: n["message_id"] == copy.message_id, 30)
            assert notice["duplicate_of"] == original.message_id
            assert notice["similarity"] >= settings.duplicate_threshold
            assert notice["embedding_model"] == model
            await eventually(missing, lambda v: v == (MESSAGES, 0, TASKS, 0), timeout_s=30)

            # Coverage is visible: the worker's gauges and `tasksage status`.
            labels = {"model": model, "active": "true"}

            async def missing_gauge() -> float | None:
                return _gauge("tasksage_embedding_missing_rows", table="messages", **labels)

            await eventually(missing_gauge, lambda v: v == 0, timeout_s=10)
            assert _gauge("tasksage_embedding_coverage_ratio", table="messages", **labels) == 1.0
            assert _gauge("tasksage_embedding_coverage_ratio", table="tasks", **labels) == 1.0
            status = await gather_status(settings, endpoints.bootstrap, "test", pool)
            active_rows = [c for c in status.coverage if c["active"]]
            assert {(c["table"], c["missing"], c["total"]) for c in active_rows} == {
                ("messages", 0, MESSAGES),
                ("tasks", 0, TASKS),
            }
            assert status.usage and status.usage[0]["texts"] >= MESSAGES  # every provider call is counted

        # Search by meaning returns the expected neighbours, with similarity scores.
        session = await open_search(settings, pool)
        try:
            repo = session.repository
            for topic, query in (
                ("billing", "refund for an overdue invoice payment"),
                ("login", "account locked after password reset"),
                ("database", "slow postgres query and vacuum"),
            ):
                vector = (await session.embedder.embed([query]))[0]
                result = await repo.search("messages", vector, limit=10)
                assert len(result.hits) == 10
                assert {topic_of(h.id) for h in result.hits} == {topic}, (query, [h.id for h in result.hits])
                scores = [h.score for h in result.hits]
                assert scores == sorted(scores, reverse=True) and all(0 < s <= 1 for s in scores)
                tasks_found = await repo.search("tasks", vector, limit=5)
                assert {topic_of(h.id) for h in tasks_found.hits} == {topic}
                high = await repo.search("messages", vector, limit=10, threshold=scores[2])
                assert [h.id for h in high.hits] == [h.id for h in result.hits[:3]]
            # Filters apply inside the search: ten email messages come back, not ten minus the rest.
            vector = (await session.embedder.embed(["please look today"]))[0]
            emails = await repo.search("messages", vector, limit=10, filters=Filters(source="email"))
            assert len(emails.hits) == 10 and all(h.details["source"] == "email" for h in emails.hits)
            # similar ID: the nearest messages to a stored one are of its topic, never itself.
            near = await repo.search(
                "messages",
                await repo.stored_vector("messages", original.message_id),
                limit=5,
                exclude_id=original.message_id,
            )
            assert copy.message_id == near.hits[0].id and near.hits[0].score > 0.99
            assert original.message_id not in {h.id for h in near.hits}
            assert {topic_of(h.id) for h in near.hits} == {topic_of(original.message_id)}

            # The plan of the search query can use the model's HNSW index. At 237 rows the planner
            # rightly prefers scanning and sorting (cheaper, and exact), so sequential and bitmap
            # scans are switched off for this one connection: what is checked is that the query's
            # expression and predicate match the index. test_search_plans_use_the_hnsw_index_at_a_realistic_size
            # checks that the planner picks it by itself once the table is large enough.
            forced = await create_pool(
                endpoints.dsn, server_settings={"enable_seqscan": "off", "enable_bitmapscan": "off"}
            )
            try:
                probe = type(repo)(forced, repo.model, repo.capabilities, repo.tuning)
                plan = "\n".join(await probe.explain("messages", vector))
            finally:
                await forced.close()
            assert "Index Scan using message_embeddings_hnsw_" in plan, plan
        finally:
            await session.aclose()
    finally:
        if pool is not None:
            await pool.close()

    # The command line prints ranked results with their scores.
    env = {**os.environ, "DATABASE_URL": endpoints.dsn, "TASKSAGE_LOG_LEVEL": "WARNING"}
    process = await asyncio.create_subprocess_exec(
        os.path.join(os.path.dirname(sys.executable), "tasksage"),
        "search",
        "refund for an overdue invoice payment",
        "--limit",
        "3",
        "--json",
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    stdout, stderr = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode == 0, stderr.decode()
    printed = orjson.loads(stdout)
    assert printed["mode"] == "vector" and len(printed["hits"]) == 3
    assert all(topic_of(h["id"]) == "billing" and 0 < h["similarity"] <= 1 for h in printed["hits"])
