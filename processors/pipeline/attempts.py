"""Finding a record that kills the worker process, which no exception handler can see.

Uncommitted records are noted in PostgreSQL before they are decoded or processed
(processors/postgres/attempts.py; the worker's side is streams/worker/crash_guard.py): per partition, from the start of the oldest uncommitted batch
to the last record read. After a restart, a note that starts at the stored position of its
partition covers records the process died on. Those records
are then processed one at a time, each noted by itself, so the next death names its record; a
record that the process died on, by itself, `poison_after` runs in a row is a poison pill: it is
dead-lettered with the count instead of being processed again. Clean stops forget their notes, so
only deaths count. Cost in normal running: about one statement per batch (the worker's notes
reach two batches past their start, so the fetches within one write nothing; after a death, up
to that many records run one at a time).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping, Sequence

from processors.postgres import attempts as store
from processors.postgres.attempts import Attempt
from processors.postgres.pool import Pool
from processors.records import RawRecord

POISON_PILL = "PoisonPill"  # the error class of its dead letters


class AttemptTracker:
    def __init__(self, pool: Pool, group_id: str, poison_after: int) -> None:
        self.pool = pool
        self.group_id = group_id
        self.poison_after = poison_after
        self.run_id = uuid.uuid4().hex  # tells this process' notes from an earlier run's
        # Batches the process died in, by partition, until their records have been processed.
        self.suspects: dict[tuple[str, int], Attempt] = {}

    async def load(self, positions: Mapping[tuple[str, int], int]) -> list[Attempt]:
        """At assignment: the batches begun at the stored positions and never committed."""
        async with self.pool.acquire() as conn:
            found = await store.unfinished(conn, self.group_id, dict(positions))
        self.suspects = {(a.topic, a.partition): a for a in found}
        return found

    def suspected(self, batch: Sequence[Attempt]) -> bool:
        """Whether a batch holds records the process died on: it runs one record at a time."""
        for span in batch:
            s = self.suspects.get((span.topic, span.partition))
            if s is not None and span.start < s.end and s.start < span.end:
                return True
        return False

    async def begin(self, batch: Sequence[Attempt]) -> None:
        if batch:
            async with self.pool.acquire() as conn:
                await store.begin(conn, self.group_id, self.run_id, batch)

    def poison(self, record: RawRecord) -> str | None:
        """Why `record` is a poison pill, or None: the process died on it alone often enough."""
        s = self.suspects.get((record.topic, record.partition))
        if (
            s is None
            or (s.start, s.end) != (record.offset, record.offset + 1)
            or s.attempts < self.poison_after
        ):
            return None
        return (
            f"poison pill: crashed the worker {s.attempts} times in a row at {record.topic}[{record.partition}] "
            f"offset {record.offset}, the last time processed alone (the process died, so the error "
            f"itself is in the worker's log, not here)"
        )

    def passed(self, record: RawRecord) -> None:
        """`record` is processed or dead-lettered: its partition's suspect range may be done."""
        key = (record.topic, record.partition)
        s = self.suspects.get(key)
        if s is not None and record.offset + 1 >= s.end:
            del self.suspects[key]

    async def forget(self, partitions: Iterable[tuple[str, int]]) -> None:
        async with self.pool.acquire() as conn:
            await store.forget(conn, self.group_id, partitions)
