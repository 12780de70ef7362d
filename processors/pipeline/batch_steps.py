"""Steps every stream shares: de-duplication inside a batch, dead letters, positions."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Awaitable, Callable, Sequence
from typing import Protocol, TypeVar

from processors.pipeline.config import PipelineConfig
from processors.postgres import ledger
from processors.postgres.pool import Conn, Pool
from processors.records import (
    BatchResult,
    Incoming,
    OutgoingRecord,
    Rejected,
    SourceRef,
    dead_letter_headers,
    positions_after,
)


class HasEventId(Protocol):
    @property
    def event_id(self) -> str: ...


E = TypeVar("E", bound=HasEventId)


# Producers and brokers refuse records over about 1 MB by default. A dead letter that can never
# be sent would sit in the outbox for good, so a bigger value is cut to this and says so.
DEAD_LETTER_MAX_VALUE_BYTES = 900_000


def first_of_each_event(items: Sequence[Incoming[E]]) -> list[Incoming[E]]:
    """A batch may hold the same event twice (producer retries); keep the first."""
    seen: set[str] = set()
    out = []
    for item in items:
        if item.event.event_id not in seen:
            seen.add(item.event.event_id)
            out.append(item)
    return out


async def unseen_events(
    pool: Pool, stream: str, items: Sequence[Incoming[E]], result: BatchResult
) -> list[Incoming[E]]:
    """The batch's events never processed before (first of each id), so replays skip costly work
    such as embedding; the others count as duplicates. The inbox claim still decides at commit."""
    batch = first_of_each_event(items)
    async with pool.acquire() as conn:
        seen = await ledger.seen_event_ids(conn, stream, [i.event.event_id for i in batch])
    fresh = [i for i in batch if i.event.event_id not in seen]
    result.duplicates += len(items) - len(fresh)
    return fresh


# Below this many rows per statement, another connection costs more than it saves.
MIN_SEARCH_CHUNK = 16
T = TypeVar("T")
R = TypeVar("R")


async def search_in_chunks(
    items: Sequence[T], concurrency: int, search: Callable[[Sequence[T]], Awaitable[list[R]]]
) -> list[R]:
    """One statement per chunk, the chunks on parallel connections: few round trips, and the
    index searches still spread over the database's cores. Results keep the items' order."""
    size = max(MIN_SEARCH_CHUNK, -(-len(items) // max(1, concurrency)))
    chunks = [items[i : i + size] for i in range(0, len(items), size)]
    found = await asyncio.gather(*(search(chunk) for chunk in chunks))
    return [result for chunk in found for result in chunk]


def rejected_key(rejected: Rejected) -> str:
    """Inbox id of a dead letter, so a replayed bad record is not dead-lettered twice. The digest
    of the record's bytes is part of it: the event_id of a broken record cannot be trusted, and
    two different records that claim the same one are two dead letters, not one."""
    digest = hashlib.sha256((rejected.key or b"") + b"\x00" + (rejected.value or b"")).hexdigest()[:32]
    if rejected.event_id:
        return f"rejected:{rejected.event_id}:{digest}"
    src = rejected.source
    return f"rejected:{src.topic}:{src.partition}:{src.offset}:{digest}"


async def finish_batch(
    conn: Conn,
    config: PipelineConfig,
    stream: str,
    rejected: Sequence[Rejected],
    sources: Sequence[SourceRef],
    outputs: list[OutgoingRecord],
    result: BatchResult,
) -> None:
    """Dead letters, outbox and positions: the last writes of every batch transaction."""
    if rejected:
        keys = {rejected_key(r): r for r in rejected}
        fresh = await ledger.claim_events(conn, stream, [(k, r.source) for k, r in keys.items()])
        for key, rej in keys.items():
            if key in fresh:
                value, headers = rej.value or b"", dead_letter_headers(rej)
                if len(value) > DEAD_LETTER_MAX_VALUE_BYTES:
                    headers += (("tasksage.truncated_from_bytes", str(len(value)).encode()),)
                    value = value[:DEAD_LETTER_MAX_VALUE_BYTES]
                outputs.append(
                    OutgoingRecord(config.dead_letter_topics[rej.source.topic], rej.key, value, headers)
                )
                result.dead_lettered += 1
    result.outputs = await ledger.add_to_outbox(conn, outputs)
    await ledger.save_positions(conn, config.group_id, positions_after(sources))
