"""The worker's retention loop: deletes inbox ids older than the replay window (and, when
configured, old predictions and messages) and reports the bookkeeping tables' sizes, so none of
them grows without bound at a steady event rate.

The outbox, held results and partition anchors are bounded by the worker itself (published
batches are deleted, held results expire after held_result_timeout_s, one anchor per partition);
their sizes are reported here too. Belongs with the worker's upkeep (streams/worker/)."""

from __future__ import annotations

import asyncio
import logging

from processors.failures import Backoff
from processors.postgres import retention
from processors.postgres.pool import Pool
from streams import metrics
from streams.settings import Settings
from streams.worker.periodic import every

log = logging.getLogger(__name__)
DAY_S = 86_400.0


def retentions(settings: Settings) -> dict[str, float]:
    """Table -> age in seconds past which its rows are deleted."""
    ages = {"inbox": settings.replay_window_days * DAY_S}
    if settings.prediction_retention_days is not None:
        ages["predictions"] = settings.prediction_retention_days * DAY_S
    if settings.message_retention_days is not None:
        ages["messages"] = settings.message_retention_days * DAY_S
    return ages


async def run_retention(settings: Settings, pool: Pool) -> dict[str, int]:
    """One pass: delete every expired row (a slice per transaction); returns rows deleted per table."""
    deleted: dict[str, int] = {}
    for table, age_s in retentions(settings).items():
        total = 0
        while True:
            async with pool.acquire() as conn:
                n = await retention.prune(conn, table, age_s, settings.retention_batch)
            total += n
            if n < settings.retention_batch:
                break
        if total:
            metrics.RETENTION_DELETED.labels(table).inc(total)
            log.info("retention: deleted %d %s rows older than %.1f days", total, table, age_s / DAY_S)
        deleted[table] = total
    async with pool.acquire() as conn:
        for table, rows in (await retention.bookkeeping_rows(conn)).items():
            metrics.BOOKKEEPING_ROWS.labels(table).set(rows)
    return deleted


async def retention_loop(settings: Settings, pool: Pool, stopping: asyncio.Event, backoff: Backoff) -> None:
    """A pass at start and every TASKSAGE_RETENTION_INTERVAL_S; nothing depends on one pass."""
    await every(
        "retention pass",
        lambda: run_retention(settings, pool),
        settings.retention_interval_s,
        stopping,
        backoff,
        first_at_start=True,
    )
