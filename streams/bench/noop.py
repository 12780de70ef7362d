"""A processor that does no domain work: the exactly-once skeleton alone.

Each batch still runs one transaction with the inbox claim, an echo of every event to the
outbox and the consumer positions, and the worker publishes the echoes: what is left of the
pipeline when processors do nothing. The benchmark compares it with a raw aiokafka loop.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from processors.pipeline.batch_steps import finish_batch
from processors.pipeline.config import PipelineConfig
from processors.postgres import ledger
from processors.postgres.pool import Pool
from processors.records import BatchResult, Incoming, OutgoingRecord, Rejected, SourceRef


class NoopProcessor:
    changes_history = False  # saves positions and echoes only

    def __init__(self, pool: Pool, config: PipelineConfig, stream: str, echo_topic: str) -> None:
        self.pool = pool
        self.config = config
        # The inbox is per consumer group: a second run (the profiled one) must claim every event
        # afresh, or it would measure the cheaper duplicate path.
        self.stream = f"noop:{config.group_id}:{stream}"
        self.echo_topic = echo_topic

    async def process(
        self, items: Sequence[Incoming[Any]], rejected: Sequence[Rejected], sources: Sequence[SourceRef]
    ) -> BatchResult:
        result = BatchResult()
        async with self.pool.acquire() as conn, conn.transaction():
            claimed = await ledger.claim_events(
                conn, self.stream, [(i.event.event_id, i.source) for i in items]
            )
            outputs = [
                OutgoingRecord(self.echo_topic, None, i.raw) for i in items if i.event.event_id in claimed
            ]
            result.processed = len(claimed)
            result.duplicates = len(items) - len(claimed)
            await finish_batch(conn, self.config, self.stream, rejected, sources, outputs, result)
        return result
