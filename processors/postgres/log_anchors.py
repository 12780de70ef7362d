"""partition_anchors and broker_clusters: what the worker remembers of each partition's log (the
offset and fingerprint of the last record it committed) and of the broker's cluster id, to tell
a broker that lost or replaced its logs from one that kept them (streams/worker/log_integrity.py)."""

from __future__ import annotations

from collections.abc import Sequence

from processors.postgres.pool import Conn

# (topic, partition, offset, fingerprint) of a partition's last committed record.
AnchorRow = tuple[str, int, int, bytes]


async def save_anchors(conn: Conn, group: str, rows: Sequence[AnchorRow]) -> None:
    """Overwrite each partition's anchor. Called in a transaction of its own with
    synchronous_commit off: an anchor lost in a crash leaves the one before it, which names a
    record of the same log as well."""
    await conn.execute("SET LOCAL synchronous_commit = off")
    await conn.execute(
        """INSERT INTO partition_anchors (group_id, topic, partition, "offset", fingerprint)
           SELECT $1, t, p, o, f FROM unnest($2::text[], $3::int[], $4::bigint[], $5::bytea[])
                AS x(t, p, o, f)
           ON CONFLICT (group_id, topic, partition) DO UPDATE
           SET "offset" = EXCLUDED."offset", fingerprint = EXCLUDED.fingerprint, updated_at = now()""",
        group,
        [r[0] for r in rows],
        [r[1] for r in rows],
        [r[2] for r in rows],
        [r[3] for r in rows],
    )


async def anchors(
    conn: Conn, group: str, partitions: Sequence[tuple[str, int]]
) -> dict[tuple[str, int], tuple[int, bytes]]:
    """(offset, fingerprint) of each partition's anchor, for the partitions that have one."""
    rows = await conn.fetch(
        """SELECT topic, partition, "offset", fingerprint FROM partition_anchors
           WHERE group_id = $1 AND (topic, partition) IN (SELECT * FROM unnest($2::text[], $3::int[]))""",
        group,
        [t for t, _ in partitions],
        [p for _, p in partitions],
    )
    return {(r["topic"], r["partition"]): (r["offset"], bytes(r["fingerprint"])) for r in rows}


async def forget_anchors(conn: Conn, group: str, partitions: Sequence[tuple[str, int]]) -> None:
    await conn.execute(
        """DELETE FROM partition_anchors WHERE group_id = $1
           AND (topic, partition) IN (SELECT * FROM unnest($2::text[], $3::int[]))""",
        group,
        [t for t, _ in partitions],
        [p for _, p in partitions],
    )


async def swap_cluster_id(conn: Conn, group: str, current: str) -> str | None:
    """Record the broker's cluster id for `group`; the one recorded before (None: first time)."""
    previous: str | None = await conn.fetchval(
        """WITH old AS (SELECT cluster_id FROM broker_clusters WHERE group_id = $1)
           , up AS (INSERT INTO broker_clusters (group_id, cluster_id) VALUES ($1, $2)
                ON CONFLICT (group_id) DO UPDATE SET cluster_id = EXCLUDED.cluster_id,
                    last_seen = now(),
                    first_seen = CASE WHEN broker_clusters.cluster_id = EXCLUDED.cluster_id
                                      THEN broker_clusters.first_seen ELSE now() END)
           SELECT cluster_id FROM old""",
        group,
        current,
    )
    return previous
