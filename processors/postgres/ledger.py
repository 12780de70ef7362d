"""Inbox, consumer positions and outbox: the tables that make effects exactly-once."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import orjson

from processors.pipeline.base import OutgoingRecord, Position, SourceRef
from processors.postgres.pool import Conn


async def seen_event_ids(conn: Conn, stream: str, event_ids: Sequence[str]) -> set[str]:
    """Ids already processed; lets a batch skip work (like embedding) for replayed events."""
    rows = await conn.fetch(
        "SELECT event_id FROM inbox WHERE stream = $1 AND event_id = ANY($2::text[])", stream, list(event_ids)
    )
    return {r["event_id"] for r in rows}


async def claim_events(conn: Conn, stream: str, events: Sequence[tuple[str, SourceRef]]) -> set[str]:
    """Enter event ids into the inbox; returns those that were new. Call inside the effects'
    transaction: a concurrent worker holding the same id blocks here, then gets nothing."""
    if not events:
        return set()
    rows = await conn.fetch(
        """INSERT INTO inbox (stream, event_id, topic, partition, "offset")
           SELECT $1, e, t, p, o FROM unnest($2::text[], $3::text[], $4::int[], $5::bigint[]) AS x(e, t, p, o)
           ON CONFLICT DO NOTHING RETURNING event_id""",
        stream,
        [e for e, _ in events],
        [s.topic for _, s in events],
        [s.partition for _, s in events],
        [s.offset for _, s in events],
    )
    return {r["event_id"] for r in rows}


async def save_positions(conn: Conn, group_id: str, positions: Sequence[Position]) -> None:
    if not positions:
        return
    await conn.execute(
        """INSERT INTO consumer_positions (group_id, topic, partition, next_offset)
           SELECT $1, t, p, o FROM unnest($2::text[], $3::int[], $4::bigint[]) AS x(t, p, o)
           ON CONFLICT (group_id, topic, partition) DO UPDATE
           SET next_offset = GREATEST(consumer_positions.next_offset, EXCLUDED.next_offset), updated_at = now()""",
        group_id,
        [p.topic for p in positions],
        [p.partition for p in positions],
        [p.next_offset for p in positions],
    )


async def load_positions(
    conn: Conn, group_id: str, partitions: Iterable[tuple[str, int]]
) -> dict[tuple[str, int], int]:
    wanted = list(partitions)
    rows = await conn.fetch(
        """SELECT topic, partition, next_offset FROM consumer_positions
           WHERE group_id = $1 AND (topic, partition) IN (SELECT * FROM unnest($2::text[], $3::int[]))""",
        group_id,
        [t for t, _ in wanted],
        [p for _, p in wanted],
    )
    return {(r["topic"], r["partition"]): r["next_offset"] for r in rows}


async def set_positions(conn: Conn, group_id: str, positions: Sequence[Position]) -> None:
    """Overwrite positions (replay, or recovery after the broker lost its log)."""
    await conn.executemany(
        """INSERT INTO consumer_positions (group_id, topic, partition, next_offset) VALUES ($1, $2, $3, $4)
           ON CONFLICT (group_id, topic, partition) DO UPDATE SET next_offset = EXCLUDED.next_offset,
           updated_at = now()""",
        [(group_id, p.topic, p.partition, p.next_offset) for p in positions],
    )


async def delete_positions(conn: Conn, group_id: str, topics: Sequence[str]) -> int:
    result = await conn.execute(
        "DELETE FROM consumer_positions WHERE group_id = $1 AND topic = ANY($2::text[])",
        group_id,
        list(topics),
    )
    return int(result.split()[-1])


def _headers_json(headers: tuple[tuple[str, bytes], ...]) -> str:
    return orjson.dumps([[k, v.decode("utf-8", "replace")] for k, v in headers]).decode()


async def add_to_outbox(conn: Conn, records: Sequence[OutgoingRecord]) -> list[OutgoingRecord]:
    """Store records to publish in the caller's transaction; returns them with their outbox ids."""
    if not records:
        return []
    rows = await conn.fetch(
        """INSERT INTO outbox (topic, key, value, headers)
           SELECT t, k, v, h::jsonb FROM unnest($1::text[], $2::bytea[], $3::bytea[], $4::text[])
                WITH ORDINALITY AS x(t, k, v, h, n) ORDER BY n
           RETURNING id""",
        [r.topic for r in records],
        [r.key for r in records],
        [r.value for r in records],
        [_headers_json(r.headers) for r in records],
    )
    ids = sorted(r["id"] for r in rows)  # bigserial ids follow insertion order
    return [
        OutgoingRecord(r.topic, r.key, r.value, r.headers, outbox_id=i)
        for r, i in zip(records, ids, strict=True)
    ]


async def remove_from_outbox(conn: Conn, ids: Sequence[int]) -> None:
    """Without waiting for the WAL flush: a delete lost in a crash only re-publishes records the
    broker already has (same key and bytes; consumers deduplicate by event_id)."""
    if ids:
        async with conn.transaction():
            await conn.execute("SET LOCAL synchronous_commit = off")
            await conn.execute("DELETE FROM outbox WHERE id = ANY($1::bigint[])", list(ids))


async def pending_outbox(conn: Conn, older_than_s: float, limit: int = 5000) -> list[OutgoingRecord]:
    """Records left behind by a worker that stopped between commit and publish."""
    rows = await conn.fetch(
        """SELECT id, topic, key, value, headers FROM outbox
           WHERE created_at < now() - make_interval(secs => $1) ORDER BY id LIMIT $2""",
        older_than_s,
        limit,
    )
    return [
        OutgoingRecord(
            r["topic"],
            r["key"],
            r["value"],
            tuple((k, v.encode()) for k, v in orjson.loads(r["headers"])),
            outbox_id=r["id"],
        )
        for r in rows
    ]
