"""batch_attempts: the batches a worker began and has not committed (sql/0012)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from processors.postgres.pool import Conn


@dataclass(frozen=True, slots=True)
class Attempt:
    """Records [start, end) of one partition, begun `attempts` runs in a row at `start`."""

    topic: str
    partition: int
    start: int
    end: int
    attempts: int


async def begin(conn: Conn, group_id: str, run_id: str, spans: Sequence[Attempt]) -> None:
    """Note uncommitted records about to be decoded or processed (`attempts` is ignored): one
    statement, committed before them, so that it survives the process dying on them. A run
    counts once per start, however often it extends or narrows the span."""
    await conn.execute(
        """INSERT INTO batch_attempts (consumer_group, topic, partition, start_offset, end_offset, attempts, run_id)
           SELECT $1, t, p, s, e, 1, $6
           FROM unnest($2::text[], $3::int[], $4::bigint[], $5::bigint[]) AS u(t, p, s, e)
           ON CONFLICT (consumer_group, topic, partition) DO UPDATE SET
               attempts = CASE WHEN batch_attempts.start_offset <> EXCLUDED.start_offset THEN 1
                               WHEN batch_attempts.run_id <> EXCLUDED.run_id THEN batch_attempts.attempts + 1
                               ELSE batch_attempts.attempts END,
               start_offset = EXCLUDED.start_offset, end_offset = EXCLUDED.end_offset,
               run_id = EXCLUDED.run_id, updated_at = now()""",
        group_id,
        [s.topic for s in spans],
        [s.partition for s in spans],
        [s.start for s in spans],
        [s.end for s in spans],
        run_id,
    )


async def unfinished(conn: Conn, group_id: str, positions: dict[tuple[str, int], int]) -> list[Attempt]:
    """Batches begun at the stored position of their partition: none of them committed."""
    rows = await conn.fetch(
        """SELECT a.topic, a.partition, a.start_offset, a.end_offset, a.attempts
           FROM batch_attempts a
           JOIN unnest($2::text[], $3::int[], $4::bigint[]) AS u(t, p, o)
             ON a.topic = u.t AND a.partition = u.p AND a.start_offset = u.o
           WHERE a.consumer_group = $1""",
        group_id,
        [t for t, _ in positions],
        [p for _, p in positions],
        list(positions.values()),
    )
    return [
        Attempt(r["topic"], r["partition"], r["start_offset"], r["end_offset"], r["attempts"]) for r in rows
    ]


async def forget(conn: Conn, group_id: str, partitions: Iterable[tuple[str, int]]) -> None:
    """A clean stop: the batches begun did not kill the process."""
    wanted = list(partitions)
    await conn.execute(
        """DELETE FROM batch_attempts WHERE consumer_group = $1
           AND (topic, partition) IN (SELECT * FROM unnest($2::text[], $3::int[]))""",
        group_id,
        [t for t, _ in wanted],
        [p for _, p in wanted],
    )
