"""Inbox, consumer positions and outbox: the tables that make effects exactly-once."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import orjson

from processors.postgres.pool import Conn
from processors.records import OutgoingRecord, Position, SourceRef


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


async def unclaim_events(conn: Conn, stream: str, event_ids: Sequence[str]) -> None:
    """Take events out of the inbox (a held result that expires is claimed again as rejected)."""
    await conn.execute(
        "DELETE FROM inbox WHERE stream = $1 AND event_id = ANY($2::text[])", stream, list(event_ids)
    )


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


def _row(
    records: Sequence[OutgoingRecord],
) -> tuple[list[str], list[bytes | None], list[bytes], str | None]:
    """An outbox row's columns (topics, keys, payloads, headers) for these records, in order.
    headers: NULL for a batch without any (all but dead letters), else one list per record."""
    headers = (
        orjson.dumps([[[k, v.decode("utf-8", "replace")] for k, v in r.headers] for r in records]).decode()
        if any(r.headers for r in records)
        else None
    )
    return [r.topic for r in records], [r.key for r in records], [r.value for r in records], headers


async def add_to_outbox(conn: Conn, records: Sequence[OutgoingRecord]) -> list[OutgoingRecord]:
    """Store records to publish in the caller's transaction, as one outbox row (sql/0007);
    returns them carrying that row's id."""
    if not records:
        return []
    outbox_id = await conn.fetchval(
        "INSERT INTO outbox (topics, keys, payloads, headers) VALUES ($1, $2, $3, $4::jsonb) RETURNING id",
        *_row(records),
    )
    return [OutgoingRecord(r.topic, r.key, r.value, r.headers, outbox_id=outbox_id) for r in records]


@dataclass(frozen=True, slots=True)
class OutboxCleanup:
    """What to do with outbox rows once the broker answered for their records."""

    delete: list[int] = field(default_factory=list)  # rows whose records were all published
    narrow: dict[int, list[OutgoingRecord]] = field(default_factory=dict)  # rows with refused records

    def __bool__(self) -> bool:
        return bool(self.delete or self.narrow)


def outbox_cleanup(published: Sequence[OutgoingRecord], refused: Sequence[OutgoingRecord]) -> OutboxCleanup:
    """A row goes once all its records are published; a row with a refused record keeps only
    the refused ones, so the sweep re-sends them and nothing else."""
    narrow: dict[int, list[OutgoingRecord]] = {}
    for r in refused:
        if r.outbox_id is not None:
            narrow.setdefault(r.outbox_id, []).append(r)
    done = {r.outbox_id for r in published if r.outbox_id is not None and r.outbox_id not in narrow}
    return OutboxCleanup(sorted(done), narrow)


async def clean_outbox(conn: Conn, cleanup: OutboxCleanup) -> None:
    """Without waiting for the WAL flush: a change lost in a crash only re-publishes records
    the broker already has (same key and bytes; consumers deduplicate by event_id)."""
    if not cleanup:
        return
    async with conn.transaction():
        await conn.execute("SET LOCAL synchronous_commit = off")
        if cleanup.delete:
            await conn.execute("DELETE FROM outbox WHERE id = ANY($1::bigint[])", cleanup.delete)
        for outbox_id, records in cleanup.narrow.items():
            await _keep_in_outbox(conn, outbox_id, records)


async def _keep_in_outbox(conn: Conn, outbox_id: int, records: Sequence[OutgoingRecord]) -> None:
    await conn.execute(
        "UPDATE outbox SET topics = $2, keys = $3, payloads = $4, headers = $5::jsonb WHERE id = $1",
        outbox_id,
        *_row(records),
    )


async def pending_outbox(conn: Conn, older_than_s: float, limit: int = 5000) -> list[OutgoingRecord]:
    """Records left behind by a worker that stopped between commit and publish: whole rows,
    oldest first, as many as fit in `limit` records (always at least one row)."""
    sizes = await conn.fetch(
        """SELECT id, cardinality(topics) AS n FROM outbox
           WHERE created_at < now() - make_interval(secs => $1) ORDER BY id LIMIT $2""",
        older_than_s,
        limit,
    )
    ids: list[int] = []
    total = 0
    for row in sizes:
        if ids and total + row["n"] > limit:
            break
        ids.append(row["id"])
        total += row["n"]
    if not ids:
        return []
    rows = await conn.fetch(
        "SELECT id, topics, keys, payloads, headers FROM outbox WHERE id = ANY($1::bigint[]) ORDER BY id", ids
    )
    out: list[OutgoingRecord] = []
    for row in rows:
        headers = orjson.loads(row["headers"]) if row["headers"] is not None else None
        for n, (topic, key, value) in enumerate(
            zip(row["topics"], row["keys"], row["payloads"], strict=True)
        ):
            record_headers = tuple((k, v.encode()) for k, v in headers[n]) if headers else ()
            out.append(OutgoingRecord(topic, key, value, record_headers, outbox_id=row["id"]))
    return out


# Records waiting in the outbox (not rows: a row holds a batch).
OUTBOX_RECORD_COUNT = "coalesce(sum(cardinality(topics)), 0)"
