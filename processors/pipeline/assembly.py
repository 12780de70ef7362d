"""Wire the processors of the three input streams together."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass

from processors.contracts.inputs import DECODERS, STREAM_NAMES
from processors.embedders.base import Embedder
from processors.failures import Backoff, Verdict
from processors.pipeline.config import PipelineConfig
from processors.pipeline.handler import BatchProcessor, StreamHandler
from processors.pipeline.learned_updates import LearnedLayer
from processors.pipeline.messages import MessageIngestedProcessor
from processors.pipeline.results import ExecutionResultProcessor, ResultApplier
from processors.pipeline.snapshots import SnapshotBuilder
from processors.pipeline.tasks import TaskCreatedProcessor
from processors.postgres.pool import Pool
from processors.scheduling.types import TierOption


@dataclass(slots=True)
class Pipeline:
    handlers: dict[str, StreamHandler]  # physical input topic -> handler
    tasks: TaskCreatedProcessor
    results: ExecutionResultProcessor
    messages: MessageIngestedProcessor
    snapshots: SnapshotBuilder

    @property
    def learned(self) -> LearnedLayer:
        """The learned layer this worker decides with and learns into (one per pipeline: task
        batches read it, the result applier queues outcomes for it, the learner teaches it)."""
        return self.results.applier.learned


def build_pipeline(
    pool: Pool,
    embedder: Embedder,
    config: PipelineConfig,
    tiers: Sequence[TierOption],
    input_topics: Mapping[str, str],
    backoff: Backoff,
    snapshot_size: int = 50,
    on_retry: Callable[[Verdict, int, float], Awaitable[None]] | None = None,
    on_recovered: Callable[[], None] | None = None,
) -> Pipeline:
    applier = ResultApplier(
        embedder.model_name,
        config.learning_rate,
        config.max_event_bytes,
        config.index_queue_limit,
        config.learned,
    )
    tasks = TaskCreatedProcessor(pool, embedder, config, tiers, applier)
    results = ExecutionResultProcessor(pool, config, applier)
    messages = MessageIngestedProcessor(pool, embedder, config)
    # The processor of each input stream (processors/contracts/inputs.py lists the streams).
    by_stream: dict[str, BatchProcessor] = {
        "task-created": tasks,
        "execution-result": results,
        "message-ingested": messages,
    }
    missing = set(STREAM_NAMES) - set(by_stream)
    assert not missing, f"input streams without a processor: {sorted(missing)}"
    handlers = {
        topic: StreamHandler(
            stream,
            DECODERS[stream],
            by_stream[stream],
            max_event_bytes=config.max_event_bytes,
            backoff=backoff,
            on_retry=on_retry,
            on_recovered=on_recovered,
        )
        for stream, topic in input_topics.items()
    }
    return Pipeline(handlers, tasks, results, messages, SnapshotBuilder(pool, config.ranking, snapshot_size))
