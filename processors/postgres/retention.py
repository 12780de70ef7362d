"""Deletes bookkeeping and (when asked) history older than its retention, a bounded slice at a
time so no transaction holds many locks or a long snapshot (sql/0010)."""

from __future__ import annotations

from processors.postgres import ledger
from processors.postgres.pool import Conn, rows_affected

# Rows of each bookkeeping table, for `status` and the tasksage_bookkeeping_rows gauge.
BOOKKEEPING_COUNTS = {
    "inbox": "SELECT count(*) FROM inbox",
    "held_results": "SELECT count(*) FROM held_results",
    "outbox": f"SELECT {ledger.OUTBOX_RECORD_COUNT} FROM outbox",
    "partition_anchors": "SELECT count(*) FROM partition_anchors",
}

_PRUNE = {
    "inbox": """DELETE FROM inbox WHERE ctid = ANY (ARRAY(
                    SELECT ctid FROM inbox WHERE processed_at < now() - make_interval(secs => $1)
                    LIMIT $2))""",
    "predictions": """DELETE FROM predictions WHERE schedule_id = ANY (ARRAY(
                    SELECT schedule_id FROM predictions WHERE created_at < now() - make_interval(secs => $1)
                    LIMIT $2))""",
    "messages": """DELETE FROM messages WHERE message_id = ANY (ARRAY(
                    SELECT message_id FROM messages WHERE occurred_at < now() - make_interval(secs => $1)
                    LIMIT $2))""",
}


async def prune(conn: Conn, table: str, older_than_s: float, limit: int) -> int:
    """Delete up to `limit` rows of `table` older than `older_than_s`; returns how many went."""
    status = await conn.execute(_PRUNE[table], older_than_s, limit)
    return rows_affected(status)


async def bookkeeping_rows(conn: Conn) -> dict[str, int]:
    return {table: int(await conn.fetchval(sql)) for table, sql in BOOKKEEPING_COUNTS.items()}
