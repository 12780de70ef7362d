"""The next batch, fetched and decoded while the current one runs.

Decoding is Python work and a batch's transaction mostly waits on PostgreSQL, so the two
overlap: when the running batch ends, the next one is already decoded (and, for task batches,
possibly planned ahead)."""

from __future__ import annotations

import asyncio
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field

from aiokafka import ConsumerRecord, TopicPartition

from processors.pipeline.handler import Decoded, StreamHandler
from processors.records import RawRecord
from streams.kafka import to_raw

# Records decoded between two yields to the event loop while a batch is in flight.
DECODE_SLICE = 100

Fetched = dict[TopicPartition, list[ConsumerRecord[bytes, bytes]]]


@dataclass(frozen=True, slots=True)
class Prepared:
    """One topic's records of the next batch, decoded ahead of processing."""

    topic: str
    records: list[RawRecord]
    decoded: Decoded


@dataclass(slots=True)
class Upcoming:
    """The next batch, filled while the current one runs; `epoch`: the assignment it was read in."""

    epoch: int
    fetched: Fetched = field(default_factory=dict)
    parts: dict[str, Prepared] = field(default_factory=dict)
    size: int = 0
    planned_ahead: bool = False
    # Holds records left undecoded (an earlier run died on them): the batch runs one at a time.
    undecoded: bool = False


async def decode_into(
    upcoming: Upcoming,
    fetched: Fetched,
    handlers: Mapping[str, StreamHandler],
    undecoded: Collection[TopicPartition] = (),
) -> None:
    """Decode fetched records onto the next batch, yielding to the event loop between slices
    so the batch in flight can send its next statement as soon as PostgreSQL answers. Records of
    `undecoded` partitions are only added: their batch runs one record at a time."""
    for tp, records in sorted(fetched.items()):
        upcoming.fetched.setdefault(tp, []).extend(records)
        part = upcoming.parts.get(tp.topic)
        if part is None:
            part = upcoming.parts[tp.topic] = Prepared(tp.topic, [], ([], []))
        handler = handlers[tp.topic]
        raw = [to_raw(r) for r in records]
        if tp in undecoded:
            upcoming.undecoded = True
            part.records.extend(raw)
            upcoming.size += len(records)
            continue
        for start in range(0, len(raw), DECODE_SLICE):
            piece = raw[start : start + DECODE_SLICE]
            items, rejected = handler.decode(piece)
            part.records.extend(piece)
            part.decoded[0].extend(items)
            part.decoded[1].extend(rejected)
            await asyncio.sleep(0)
        upcoming.size += len(records)


def plan_ahead(upcoming: Upcoming, running: Upcoming | None, handlers: Mapping[str, StreamHandler]) -> None:
    """Let a full next batch start planning while the running one commits, unless a batch that
    applies outcomes runs before it: a plan made ahead must read the history its batch would
    read (processors/pipeline/tasks.py)."""
    upcoming.planned_ahead = True
    if running is not None and any(handlers[p.topic].changes_history for p in running.parts.values()):
        return
    for part in upcoming.parts.values():
        handler = handlers[part.topic]
        handler.prepare_ahead(part.decoded[0])
        if handler.changes_history:
            return  # later parts run after outcomes are applied
