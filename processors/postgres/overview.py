"""What `tasksage status` and the worker's gauges read: row counts of the tables that grow, the
registered embedding models, what embedding cost today, and a group's positions."""

from __future__ import annotations

from datetime import date
from typing import Any

from processors.postgres import ledger
from processors.postgres.pool import Conn

# How each counted table is counted: the outbox holds a batch's records in one row.
COUNTED_TABLES = {
    "tasks": "count(*)",
    "executions": "count(*)",
    "messages": "count(*)",
    "predictions": "count(*)",
    "held_results": "count(*)",
    "outbox": ledger.OUTBOX_RECORD_COUNT,
    "inbox": "count(*)",
    "partition_anchors": "count(*)",
    "task_index_queue": "count(*)",  # task vectors waiting for the neighbour index (sql/0006)
    "learned_queue": "count(*)",  # outcomes waiting for the learned layer (sql/0015)
}


async def row_count(conn: Conn, table: str) -> int:
    """Rows (the outbox: records) of one of COUNTED_TABLES."""
    count = COUNTED_TABLES[table]  # a KeyError, never an arbitrary name in SQL
    return int(await conn.fetchval(f"SELECT {count} FROM {table}"))


async def models(conn: Conn) -> list[dict[str, Any]]:
    rows = await conn.fetch("SELECT name, dimension, provider, active FROM embedding_models ORDER BY name")
    return [dict(r) for r in rows]


async def spent_on(conn: Conn, day: date) -> float:
    return float(
        await conn.fetchval("SELECT coalesce(sum(cost_usd), 0) FROM embedding_usage WHERE day = $1", day)
    )


async def group_positions(conn: Conn, group: str) -> dict[tuple[str, int], int]:
    rows = await conn.fetch(
        "SELECT topic, partition, next_offset FROM consumer_positions WHERE group_id = $1", group
    )
    return {(r["topic"], r["partition"]): r["next_offset"] for r in rows}
