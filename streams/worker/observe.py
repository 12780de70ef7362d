"""Prometheus figures of the consume loop: per-batch counters and latencies, consumer lag,
and the embedding and plan-ahead counters the processors keep (processors hold no metrics
library, so the worker exports the difference since the last batch)."""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field

from aiokafka import AIOKafkaConsumer

from processors.embedders.base import Embedder
from processors.pipeline.assembly import Pipeline
from processors.records import BatchResult, RawRecord
from streams import metrics
from streams.worker.prefetch import Fetched


@dataclass(slots=True)
class WorkerStats:
    """Totals of this worker since it started (the demo and tests read them)."""

    processed: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    duplicates: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    dead_lettered: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    published: int = 0


class BatchObserver:
    def __init__(self, pipeline: Pipeline, embedder: Embedder) -> None:
        self.pipeline = pipeline
        self.embedder = embedder
        self.stats = WorkerStats()
        self._embedding_seen: tuple[int, int, int, float] = (0, 0, 0, 0.0)
        self._plans_ahead_seen = (0, 0)

    def batch_done(
        self, topic: str, records: Sequence[RawRecord], result: BatchResult, started: float
    ) -> None:
        now_ms = time.time() * 1000
        latency = metrics.EVENT_LATENCY.labels(topic)  # one label lookup per batch, not per record
        for r in records:
            if r.timestamp_ms:
                latency.observe(max(0.0, now_ms - r.timestamp_ms) / 1000)
        metrics.BATCH_SECONDS.labels(topic).observe(time.perf_counter() - started)
        for stage, seconds in result.stage_seconds.items():
            metrics.STAGE_SECONDS.labels(topic, stage).observe(seconds)
        self._observe_embedding()
        self._observe_plans_ahead()
        metrics.EVENTS_PROCESSED.labels(topic).inc(result.processed)
        metrics.EVENTS_DUPLICATE.labels(topic).inc(result.duplicates)
        metrics.EVENTS_DEAD_LETTERED.labels(topic).inc(result.dead_lettered)
        for agent, model, basis in result.decisions:
            metrics.SCHEDULE_DECISIONS.labels(agent, model, basis).inc()
        self.stats.processed[topic] += result.processed
        self.stats.duplicates[topic] += result.duplicates
        self.stats.dead_lettered[topic] += result.dead_lettered
        self.stats.published += len(result.outputs)

    @staticmethod
    def lag(consumer: AIOKafkaConsumer, fetched: Fetched) -> None:
        """Records behind the log end per partition, from the high watermark of the last fetch."""
        assigned = consumer.assignment()
        for tp, records in fetched.items():
            if tp not in assigned:
                continue  # revoked while the batch ran (the consumer asserts on it)
            highwater = consumer.highwater(tp)
            if highwater is not None and records:
                metrics.CONSUMER_LAG.labels(tp.topic, str(tp.partition)).set(
                    max(0, highwater - records[-1].offset - 1)
                )

    def _observe_embedding(self) -> None:
        pipeline = self.pipeline
        model = self.embedder.model_name
        texts = pipeline.tasks.embedding_stats.texts + pipeline.messages.embedding_stats.texts
        reused = pipeline.tasks.embedding_stats.reused + pipeline.messages.embedding_stats.reused
        tokens = pipeline.tasks.embedding_stats.tokens + pipeline.messages.embedding_stats.tokens
        seconds = pipeline.tasks.embedding_stats.seconds + pipeline.messages.embedding_stats.seconds
        last = self._embedding_seen
        metrics.EMBED_TEXTS.labels(model).inc(texts - last[0])
        metrics.EMBED_REUSED.labels(model).inc(reused - last[1])
        metrics.EMBED_TOKENS.labels(model).inc(tokens - last[2])
        if texts > last[0]:
            metrics.EMBED_SECONDS.labels(model).observe(seconds - last[3])
        self._embedding_seen = (texts, reused, tokens, seconds)

    def _observe_plans_ahead(self) -> None:
        stats = self.pipeline.tasks.plans_ahead
        now = (stats.used, stats.decided_again)
        if now == self._plans_ahead_seen:
            return  # most batches: no label lookups
        used, again = self._plans_ahead_seen
        metrics.TASK_PLANS_AHEAD.labels("used").inc(stats.used - used)
        metrics.TASK_PLANS_AHEAD.labels("decided_again").inc(stats.decided_again - again)
        self._plans_ahead_seen = now
