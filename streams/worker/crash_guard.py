"""The worker's side of finding a record that kills its process (processors/pipeline/attempts.py).

Before records are decoded or processed, their span is noted in PostgreSQL; after a restart, a
batch overlapping what the previous run died on runs one record at a time, each noted first, and
a record a run died on by itself often enough is dead-lettered instead of processed again. This
module keeps the per-run bookkeeping of those notes, so the consume loop only asks three things:
which fetched partitions to leave undecoded, whether a batch runs one record at a time, and what
to do with each record then.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Collection, Iterable, Mapping, Sequence

from aiokafka import TopicPartition

from processors.failures import Backoff, Verdict, classify
from processors.pipeline.attempts import AttemptTracker
from processors.postgres.attempts import Attempt
from processors.postgres.pool import Pool
from processors.records import RawRecord
from streams.settings import Settings
from streams.worker.prefetch import Fetched, Upcoming

log = logging.getLogger(__name__)

WaitBeforeRetry = Callable[[Verdict, int, float], Awaitable[None]]
# The worker's `process(topic, records, decoded, poison)`: poison is the reason to dead-letter.
Process = Callable[[str, list[RawRecord], None, str | None], Awaitable[object]]


class CrashGuard:
    def __init__(self, settings: Settings, pool: Pool, wait_before_retry: WaitBeforeRetry) -> None:
        self.settings = settings
        self.attempts = AttemptTracker(pool, settings.consumer_group, settings.poison_pill_after)
        self.wait_before_retry = wait_before_retry
        # Per partition, the first offset of the batch in flight: notes of records read
        # meanwhile start there, since nothing from it on is committed yet.
        self.running_from: dict[tuple[str, int], int] = {}
        # Partitions of the batch in flight when it runs one record at a time.
        self.one_by_one: set[tuple[str, int]] = set()
        # The notes this run wrote, per partition: (start, end).
        self.noted: dict[tuple[str, int], tuple[int, int]] = {}

    async def on_assigned(self, stored: Mapping[tuple[str, int], int]) -> None:
        """Find the batches an earlier run began at the stored positions and died in."""
        self.noted.clear()  # another worker may have noted these partitions meanwhile
        for died in await self.attempts.load(stored):
            log.warning(
                "the worker died in a batch at %s[%d] offset %d (%d runs in a row): its records "
                "run one at a time",
                died.topic,
                died.partition,
                died.start,
                died.attempts,
            )

    async def before_decode(self, upcoming: Upcoming, fetched: Fetched) -> set[TopicPartition]:
        """Note fetched records before they are decoded (a parser may kill the process); return
        the partitions to leave undecoded: records an earlier run died on, and records of a
        partition whose batch in flight runs one at a time (a note for them would replace that
        record's own)."""
        undecoded: set[TopicPartition] = set()
        notes = []
        for tp, records in sorted(fetched.items()):
            key = (tp.topic, tp.partition)
            span = Attempt(tp.topic, tp.partition, records[0].offset, records[-1].offset + 1, 0)
            if key in self.one_by_one or self.attempts.suspected([span]):
                undecoded.add(tp)
                continue
            first = upcoming.fetched[tp][0].offset if tp in upcoming.fetched else span.start
            notes.append(Attempt(tp.topic, tp.partition, self.running_from.get(key, first), span.end, 0))
        await self._note(notes)
        return undecoded

    async def run(
        self,
        batch: Upcoming,
        process_batch: Callable[[], Awaitable[None]],
        process: Process,
        owned: Collection[TopicPartition],
    ) -> None:
        """Run a batch: whole, after noting it, or one record at a time when it holds records an
        earlier run died on."""
        batch_spans = [
            Attempt(tp.topic, tp.partition, rs[0].offset, rs[-1].offset + 1, 0)
            for tp, rs in sorted(batch.fetched.items())
            if rs
        ]
        self.running_from = {(s.topic, s.partition): s.start for s in batch_spans}
        try:
            if batch.undecoded or self.attempts.suspected(batch_spans):
                self.one_by_one = set(self.running_from)
                await self._one_at_a_time(batch, process, owned)
            else:
                await self._note(batch_spans)  # committed first: a death in the batch leaves it
                await process_batch()
        finally:
            self.running_from = {}
            self.one_by_one = set()

    async def _one_at_a_time(
        self, batch: Upcoming, process: Process, owned: Collection[TopicPartition]
    ) -> None:
        for part in batch.parts.values():
            for record in part.records:
                if TopicPartition(record.topic, record.partition) not in owned:
                    return  # revoked meanwhile: its next owner reads the rest again
                reason = self.attempts.poison(record)
                if reason is None:
                    single = Attempt(record.topic, record.partition, record.offset, record.offset + 1, 0)
                    await self._note([single], exact=True)
                await process(record.topic, [record], None, reason)
                self.attempts.passed(record)

    async def _note(self, batch_spans: Sequence[Attempt], exact: bool = False) -> None:
        """Note records about to be decoded or processed; waits out a database outage like a batch.
        Unless `exact` (a record alone), a note reaches two batches past its start, so the fetches
        and the batch that follow within it write nothing: about one statement per batch."""
        fresh = []
        for span in batch_spans:
            have = self.noted.get((span.topic, span.partition))
            if not exact and have is not None and have[0] == span.start and have[1] >= span.end:
                continue
            end = span.end if exact else max(span.end, span.start + 2 * self.settings.batch_max_records)
            fresh.append(Attempt(span.topic, span.partition, span.start, end, 0))
        if not fresh:
            return
        backoff = Backoff(self.settings.retry_initial_s, self.settings.retry_max_s)
        attempt = 0
        while True:
            try:
                await self.attempts.begin(fresh)
                self.noted.update({(a.topic, a.partition): (a.start, a.end) for a in fresh})
                return
            except Exception as exc:
                verdict = classify(exc)
                if not verdict.retriable:
                    raise
                await self.wait_before_retry(verdict, attempt, backoff.delay(attempt))
                attempt += 1

    async def forget(self, owned: Iterable[TopicPartition]) -> None:
        """A clean stop: the batches this run began did not kill it (best effort: a note left
        behind only makes the next run take those records one at a time)."""
        try:
            await self.attempts.forget([(tp.topic, tp.partition) for tp in owned])
        except Exception as exc:
            log.warning("cannot clear the notes of begun batches: %s", exc)
