"""Publishing what the pipeline produced: records go to the broker in per-partition batches and
leave the outbox only once the broker acknowledged them; a crash in between re-sends them."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import Counter
from collections.abc import Sequence
from typing import Any

from aiokafka import AIOKafkaProducer
from aiokafka.partitioner import DefaultPartitioner
from aiokafka.producer.message_accumulator import BatchBuilder

from processors.postgres import ledger
from processors.postgres.pool import Pool
from processors.records import OutgoingRecord
from streams import metrics

log = logging.getLogger(__name__)


class Publisher:
    """Sends records and then removes them from the outbox; a crash in between re-sends them."""

    def __init__(self, producer: AIOKafkaProducer, pool: Pool) -> None:
        self.producer = producer
        self.pool = pool
        self._partitioner = DefaultPartitioner()
        # Bounded: when acknowledgements fall behind, `submit` waits instead of piling up.
        self._sent: asyncio.Queue[tuple[list[OutgoingRecord], list[asyncio.Future[Any]]]] = asyncio.Queue(64)
        self._acks: asyncio.Task[None] | None = None

    async def publish(self, records: Sequence[OutgoingRecord]) -> None:
        if not records:
            return
        cleanup = await _settle(records, await self._send(records))
        if cleanup:
            async with self.pool.acquire() as conn:
                await ledger.clean_outbox(conn, cleanup)

    async def _send(self, records: Sequence[OutgoingRecord]) -> list[asyncio.Future[Any]]:
        """Hand records to the producer as one batch per topic partition, in order; returns each
        record's batch future. Batches because one send() per record costs the client nearly twice
        as much per record (README "What makes it fast"). Partitions are chosen by the producer's
        own default partitioner (murmur2 of the key, as Java clients do); records without a key
        share one partition per call."""
        open_batches: dict[tuple[str, int], tuple[BatchBuilder, list[int]]] = {}
        partitions: dict[str, list[int]] = {}
        keyless: dict[str, int] = {}
        sent: dict[int, asyncio.Future[Any]] = {}  # record index -> its batch's future
        for n, r in enumerate(records):
            parts = partitions.get(r.topic)
            if parts is None:
                parts = partitions[r.topic] = sorted(await self.producer.partitions_for(r.topic))
            if r.key is None:
                slot = (r.topic, keyless.setdefault(r.topic, self.partition_of(None, parts)))
            else:
                slot = (r.topic, self.partition_of(r.key, parts))
            headers = list(r.headers)
            entry = open_batches.get(slot)
            if (
                entry is None
                or entry[0].append(timestamp=None, key=r.key, value=r.value, headers=headers) is None
            ):
                if entry is not None:  # full: send it, then start the next one
                    await self._send_batch(slot, *open_batches.pop(slot), sent)
                entry = (self.producer.create_batch(), [])
                if entry[0].append(timestamp=None, key=r.key, value=r.value, headers=headers) is None:
                    # Bigger than a whole batch: send() raises the producer's own size error.
                    sent[n] = await self.producer.send(r.topic, r.value, key=r.key, headers=headers)
                    continue
                open_batches[slot] = entry
            entry[1].append(n)
        for slot, (batch, members) in open_batches.items():
            await self._send_batch(slot, batch, members, sent)
        return [sent[n] for n in range(len(records))]

    def partition_of(self, key: bytes | None, partitions: list[int]) -> int:
        """Where a record goes: murmur2 of the key, as the producer (and Java clients) would."""
        return int(self._partitioner(key, partitions, partitions))

    async def _send_batch(
        self,
        slot: tuple[str, int],
        batch: BatchBuilder,
        members: list[int],
        sent: dict[int, asyncio.Future[Any]],
    ) -> None:
        future = await self.producer.send_batch(batch, slot[0], partition=slot[1])
        for n in members:
            sent[n] = future

    async def sweep(self, older_than_s: float) -> int:
        async with self.pool.acquire() as conn:
            left = await ledger.pending_outbox(conn, older_than_s)
        await self.publish(left)
        return len(left)

    async def submit(self, records: Sequence[OutgoingRecord]) -> None:
        """Hand records to the producer now, in order; acknowledgements and the outbox delete
        follow in the background, so the next batch's database work overlaps this batch's
        produce round trip. Same guarantee as `publish`: a record leaves the outbox
        only once the broker has it, and a failed send stays there for the sweep."""
        if not records:
            return
        futures = await self._send(records)
        if self._acks is None:
            self._acks = asyncio.create_task(self._acknowledge(), name="outbox-acks")
        await self._sent.put((list(records), futures))

    async def _acknowledge(self) -> None:
        while True:
            records, futures = await self._sent.get()
            done = [(records, futures)]
            while not self._sent.empty():  # coalesce: one outbox delete for every batch acked
                done.append(self._sent.get_nowait())
            records = [r for batch, _ in done for r in batch]
            futures = [f for _, sent in done for f in sent]
            cleanup = await _settle(records, futures)
            try:
                if cleanup:
                    async with self.pool.acquire() as conn:
                        await ledger.clean_outbox(conn, cleanup)
            except Exception as exc:  # the sweep publishes them again; consumers dedupe by event_id
                log.warning("removing %d published outbox rows failed: %s", len(cleanup.delete), exc)
            finally:
                for _ in done:
                    self._sent.task_done()

    async def drain(self, timeout_s: float) -> None:
        """Wait for submitted records to be acknowledged (shutdown)."""
        if self._acks is None:
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._sent.join(), timeout_s)
        self._acks.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await self._acks
        self._acks = None


async def _settle(
    records: Sequence[OutgoingRecord], futures: Sequence[asyncio.Future[Any]]
) -> ledger.OutboxCleanup:
    """Wait for the broker's answers to sent records; returns what to do with their outbox rows.
    One record the broker refuses must not keep the others in the outbox: it alone stays there
    for the sweep. Counted per topic, not per record: a label lookup costs more than the inc."""
    outcomes = await asyncio.gather(*futures, return_exceptions=True)
    published: list[OutgoingRecord] = []
    refused: list[OutgoingRecord] = []
    errors: list[BaseException] = []
    per_topic: Counter[str] = Counter()
    for r, outcome in zip(records, outcomes, strict=True):
        if isinstance(outcome, BaseException):
            refused.append(r)
            errors.append(outcome)
            continue
        published.append(r)
        per_topic[r.topic] += 1
    for topic, n in per_topic.items():
        metrics.EVENTS_OUT.labels(topic).inc(n)
    if errors:
        log.warning("publishing %d records failed, left in the outbox: %s", len(errors), errors[0])
    return ledger.outbox_cleanup(published, refused)
