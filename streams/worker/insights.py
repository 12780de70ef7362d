"""The worker's insights duty: every TASKSAGE_INSIGHTS_INTERVAL_S, build the insights, refresh
their Prometheus gauges and publish a snapshot on the insights topic. Gauges are refreshed here,
not per event, so keeping accuracy live costs the event path only its bucket upsert."""

from __future__ import annotations

import asyncio

from aiokafka import AIOKafkaProducer

from processors.contracts import InsightsSnapshot, encode
from processors.failures import Backoff
from processors.insights.accuracy import Breakdown
from processors.pipeline.insights import InsightsBuilder
from streams import metrics
from streams.runtime import Runtime
from streams.worker.periodic import every

FLAGS = ("unused", "dominated", "overloaded")


def set_accuracy_gauges(breakdowns: list[Breakdown]) -> None:
    gauges = (
        (metrics.LIVE_OUTCOMES, "outcomes"),
        (metrics.LIVE_BRIER, "brier"),
        (metrics.LIVE_LOG_LOSS, "log_loss"),
        (metrics.LIVE_ECE, "ece"),
        (metrics.LIVE_DURATION_ERROR, "duration_mae_ms"),
        (metrics.LIVE_COST_ERROR, "cost_mae_usd"),
    )
    for b in breakdowns:
        scopes = [(("*", "*", "*"), b.overall)]
        scopes += [((agent, model, "*"), s) for (agent, model), s in b.per_arm.items()]
        scopes += [(("*", "*", kind or "-"), s) for kind, s in b.per_kind.items()]
        for (agent, model, kind), summary in scopes:
            for gauge, attribute in gauges:
                value = getattr(summary, attribute)
                child = gauge.labels(b.window, agent, model, kind)
                child.set(float("nan") if value is None else value)


def set_snapshot_gauges(snapshot: InsightsSnapshot) -> None:
    metrics.FAILURE_PATTERNS.set(len(snapshot.failure_patterns))
    metrics.CAPABILITY_GAPS.set(len(snapshot.capability_gaps))
    metrics.CAPABILITY_GAP_TASKS.set(sum(g.tasks for g in snapshot.capability_gaps))
    for arm in snapshot.arms:
        for flag in FLAGS:
            metrics.ARM_FLAGGED.labels(arm.agent, arm.model, flag).set(int(flag in arm.flags))


async def insights_loop(
    runtime: Runtime, producer: AIOKafkaProducer, stopping: asyncio.Event, backoff: Backoff
) -> None:
    """Insights are advisory: a failed pass is tried again after the backoff, and the gauges keep
    the last pass' values meanwhile."""
    s = runtime.settings
    builder = InsightsBuilder(runtime.pool, runtime.embedder, s.insights_config())

    async def refresh() -> None:
        snapshot = await builder.snapshot()
        set_accuracy_gauges(builder.last_accuracy)
        set_snapshot_gauges(snapshot)
        await producer.send_and_wait(s.topic_insights, encode(snapshot), key=b"all")
        metrics.EVENTS_OUT.labels(s.topic_insights).inc()

    await every("insights refresh", refresh, s.insights_interval_s, stopping, backoff, first_at_start=False)
