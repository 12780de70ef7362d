"""`tasksage status`: services, topics, lag, row counts, embedding coverage."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from aiokafka import TopicPartition

from processors.postgres import vectors
from processors.postgres.pool import Pool
from streams.kafka import make_consumer
from streams.settings import Settings

COUNTED_TABLES = (
    "tasks",
    "executions",
    "messages",
    "predictions",
    "held_results",
    "outbox",
    "inbox",
)


@dataclass(slots=True)
class StatusReport:
    bootstrap: str
    database: str
    topics: list[dict[str, Any]] = field(default_factory=list)
    rows: dict[str, int] = field(default_factory=dict)
    coverage: list[dict[str, Any]] = field(default_factory=list)
    models: list[dict[str, Any]] = field(default_factory=list)
    usage: list[dict[str, Any]] = field(default_factory=list)
    pgvector: str = ""


async def topic_report(
    settings: Settings, bootstrap: str, positions: dict[tuple[str, int], int]
) -> list[dict[str, Any]]:
    consumer = make_consumer(settings, bootstrap, group_id=None)
    await consumer.start()
    try:
        out = []
        for topic in settings.all_topics():
            parts = sorted(consumer.partitions_for_topic(topic) or ())
            if not parts:
                out.append({"topic": topic, "partitions": 0, "records": 0, "lag": None})
                continue
            tps = [TopicPartition(topic, p) for p in parts]
            ends = await consumer.end_offsets(tps)
            begins = await consumer.beginning_offsets(tps)
            records = sum(ends[tp] - begins[tp] for tp in tps)
            lag = None
            if topic in settings.input_topics.values():
                lag = sum(max(0, ends[tp] - positions.get((topic, tp.partition), begins[tp])) for tp in tps)
            out.append({"topic": topic, "partitions": len(parts), "records": records, "lag": lag})
        return out
    finally:
        await consumer.stop()


async def gather_status(settings: Settings, bootstrap: str, dsn_label: str, pool: Pool) -> StatusReport:
    report = StatusReport(bootstrap, dsn_label)
    async with pool.acquire() as conn:
        for table in COUNTED_TABLES:
            report.rows[table] = int(await conn.fetchval(f"SELECT count(*) FROM {table}"))
        version = await vectors.pgvector_version(conn)
        report.pgvector = ".".join(map(str, version))
        for r in await conn.fetch(
            "SELECT name, dimension, provider, active FROM embedding_models ORDER BY name"
        ):
            report.models.append(dict(r))
        for table, source, key in (
            ("task_embeddings", "tasks", "task_id"),
            ("message_embeddings", "messages", "message_id"),
        ):
            for model in report.models:
                embedded = await conn.fetchval(
                    f"""SELECT count(*) FROM {source} s JOIN {table} e ON e.{key} = s.{key}
                        AND e.model = $1 AND e.content_hash = s.content_hash""",
                    model["name"],
                )
                total = report.rows[source]
                report.coverage.append(
                    {
                        "table": source,
                        "model": model["name"],
                        "embedded": int(embedded),
                        "total": total,
                        "coverage": 1.0 if total == 0 else int(embedded) / total,
                    }
                )
        for r in await conn.fetch(
            "SELECT provider, model, sum(texts) AS texts, sum(tokens) AS tokens FROM embedding_usage GROUP BY 1, 2"
        ):
            report.usage.append(dict(r))
        positions = {
            (r["topic"], r["partition"]): r["next_offset"]
            for r in await conn.fetch(
                "SELECT topic, partition, next_offset FROM consumer_positions WHERE group_id = $1",
                settings.consumer_group,
            )
        }
    report.topics = await topic_report(settings, bootstrap, positions)
    return report
