"""Steps every stream shares: de-duplication inside a batch, dead letters, positions."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, TypeVar

from processors.pipeline.base import (
    BatchResult,
    Incoming,
    OutgoingRecord,
    Rejected,
    SourceRef,
    dead_letter_headers,
    positions_after,
)
from processors.pipeline.config import PipelineConfig
from processors.postgres import ledger
from processors.postgres.pool import Conn


class HasEventId(Protocol):
    @property
    def event_id(self) -> str: ...


E = TypeVar("E", bound=HasEventId)


def first_of_each_event(items: Sequence[Incoming[E]]) -> list[Incoming[E]]:
    """A batch may hold the same event twice (producer retries); keep the first."""
    seen: set[str] = set()
    out = []
    for item in items:
        if item.event.event_id not in seen:
            seen.add(item.event.event_id)
            out.append(item)
    return out


def rejected_key(rejected: Rejected) -> str:
    """Inbox id of a dead letter, so a replayed bad record is not dead-lettered twice."""
    if rejected.event_id:
        return f"rejected:{rejected.event_id}"
    src = rejected.source
    return f"rejected:{src.topic}:{src.partition}:{src.offset}"


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
                outputs.append(
                    OutgoingRecord(
                        config.dead_letter_topics[rej.source.topic],
                        rej.key,
                        rej.value or b"",
                        dead_letter_headers(rej),
                    )
                )
                result.dead_lettered += 1
    result.outputs = await ledger.add_to_outbox(conn, outputs)
    await ledger.save_positions(conn, config.group_id, positions_after(sources))
