"""Reads the dependency-aware ranking needs: the status of tasks that others depend on."""

from __future__ import annotations

from collections.abc import Collection

from processors.postgres.pool import Conn
from processors.scheduling.dependencies import Status


async def task_status(conn: Conn, task_ids: Collection[str]) -> dict[str, Status]:
    """Status of each id that names a known task; ids absent from the result are unknown."""
    if not task_ids:
        return {}
    rows = await conn.fetch(
        "SELECT task_id, status FROM tasks WHERE task_id = ANY($1::text[])", sorted(task_ids)
    )
    return {r["task_id"]: r["status"] for r in rows}
