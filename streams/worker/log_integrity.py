"""Notice when the broker lost or replaced a partition's log, instead of stalling on it.

The embedded broker (Tansu) keeps its logs in memory: after a restart every partition starts
again at offset 0 while the positions stored in PostgreSQL still point far ahead. Seeking there
would skip (or wait forever for) the new records. So on every partition assignment the worker
reads back the last record it processed from each partition (the anchor, saved after every
batch) and compares a hash of its key and value:

- the record is there and the same: the log is intact, resume at the stored position;
- there is no record at that offset: the log was LOST (it is shorter than what we processed);
- a different record is there: the log was REPLACED (a new broker, or a recreated topic);
- the log now starts after the stored position: retention deleted records this group never
  processed (OVERRUN). They are gone for good: the count per partition is logged, counted in
  tasksage_records_lost_to_retention_total and shown on /healthz, and the group goes on from the
  log start (a reset to a valid offset, so it cannot loop).

In both bad cases the position is reset to the start of the new log. That is safe because every
effect is keyed by event id: events already applied are skipped, new ones are applied once.

Tansu reports end offsets one batch short, so "stored position > end offset" alone
is not evidence of loss; without an anchor the record just before the position is read back.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Mapping, Sequence

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.errors import OffsetOutOfRangeError

from processors.postgres import ledger, log_anchors
from processors.postgres.pool import Pool
from processors.records import Position, RawRecord
from streams import metrics
from streams.kafka import cluster_id, ensure_topics, make_consumer
from streams.settings import Settings
from streams.worker.log_rules import (
    Anchor,
    LogState,
    PartitionCheck,
    Probe,
    fingerprint,
    judge,
    offset_to_probe,
    overrun,
)

log = logging.getLogger(__name__)


class LogIntegrity:
    def __init__(self, settings: Settings, bootstrap: str, pool: Pool, health: metrics.Health) -> None:
        self.settings = settings
        self.bootstrap = bootstrap
        self.pool = pool
        self.health = health
        self.group = settings.consumer_group
        self.resets: list[PartitionCheck] = []  # every lost or replaced log seen by this process
        self.lost_to_retention: dict[str, int] = {}  # "retention:topic:partition" -> records lost

    async def verify(self, stored: dict[tuple[str, int], int]) -> dict[tuple[str, int], int]:
        """Stored positions, with those of lost or replaced logs moved to the new log's start."""
        await self._note_cluster_change()
        positions = dict(stored)
        try:
            checks = await self.check(stored)
        except Exception as exc:  # the broker is flaky right now: do not fail the assignment
            log.warning("cannot check the broker's logs against the stored positions (%s); using them", exc)
            return positions
        for check in checks:
            if check.state is LogState.OVERRUN:
                await self._overrun(check)
                positions[(check.topic, check.partition)] = check.log_start
            elif check.state is not LogState.INTACT:
                await self._restart(check)
                positions[(check.topic, check.partition)] = check.log_start
        return positions

    async def _note_cluster_change(self) -> None:
        try:
            previous, current = await self.check_cluster()
        except Exception as exc:
            log.warning("cannot read the broker's cluster id: %s", exc)
            return
        if previous is not None:
            text = (
                f"the broker's cluster id changed from {previous!r} to {current!r} for group "
                f"{self.group!r}: stored positions are checked against the new logs"
            )
            log.error(text)
            self.health.notice("cluster", text)

    async def _restart(self, check: PartitionCheck) -> None:
        """Read the new log from its start: effects are idempotent by event id, so what was
        applied before is skipped and nothing new is skipped."""
        log.error(
            "broker log %s: %s; resetting the position of group %s to the log start %d",
            check.state,
            check.describe,
            self.group,
            check.log_start,
        )
        await self.reset([check])
        metrics.LOG_RESETS.labels(check.topic, str(check.partition)).inc()
        self.health.notice(
            f"log:{check.topic}:{check.partition}",
            f"broker log {check.state} at {time.strftime('%Y-%m-%dT%H:%M:%S')}: {check.describe}; "
            f"re-reading from offset {check.log_start}",
        )
        self.resets.append(check)
        try:  # a broker that lost its logs lost our topics too (dead-letter and output ones)
            await ensure_topics(self.settings, self.bootstrap)
        except Exception as exc:
            log.warning("cannot re-create topics: %s", exc)

    async def _overrun(self, check: PartitionCheck) -> None:
        """Retention deleted records before this group read them: say how many, loudly, and go
        on from the first record the broker still has."""
        lost = check.lost_to_retention
        log.error(
            "RECORDS LOST TO RETENTION: %s[%d]: %d records (offsets %d..%d) were deleted by the "
            "broker's retention before group %s processed them; continuing from offset %d. "
            "Raise the topic's retention.ms/retention.bytes or keep the worker running; "
            "re-publish those events upstream if they matter",
            check.topic,
            check.partition,
            lost,
            check.stored,
            check.log_start - 1,
            self.group,
            check.log_start,
        )
        await self.reset([check])
        metrics.RECORDS_LOST_TO_RETENTION.labels(check.topic, str(check.partition)).inc(lost)
        key = f"retention:{check.topic}:{check.partition}"
        before = self.lost_to_retention.get(key, 0)
        self.lost_to_retention[key] = before + lost
        self.health.notice(
            key,
            f"records lost to retention: {check.topic}[{check.partition}] {before + lost} records "
            f"deleted before they were processed (last at {time.strftime('%Y-%m-%dT%H:%M:%S')}: "
            f"offsets {check.stored}..{check.log_start - 1})",
        )

    async def remember(self, records: Sequence[RawRecord]) -> None:
        """Save the last record of each partition of a committed batch as that partition's anchor."""
        last: dict[tuple[str, int], RawRecord] = {}
        for r in records:
            key = (r.topic, r.partition)
            if key not in last or r.offset > last[key].offset:
                last[key] = r
        if not last:
            return
        rows = [(t, p, r.offset, fingerprint(r.key, r.value)) for (t, p), r in sorted(last.items())]
        async with self.pool.acquire() as conn, conn.transaction():
            await log_anchors.save_anchors(conn, self.group, rows)

    async def _anchors(self, partitions: Sequence[tuple[str, int]]) -> dict[tuple[str, int], Anchor]:
        async with self.pool.acquire() as conn:
            found = await log_anchors.anchors(conn, self.group, partitions)
        return {key: Anchor(offset, fingerprint) for key, (offset, fingerprint) in found.items()}

    async def check(self, stored: Mapping[tuple[str, int], int]) -> list[PartitionCheck]:
        """Judge every partition with a stored position against what the broker holds now."""
        wanted = {k: v for k, v in stored.items() if v > 0}
        if not wanted:
            return []
        anchors = await self._anchors(sorted(wanted))
        tps = [TopicPartition(t, p) for t, p in sorted(wanted)]
        consumer = make_consumer(
            self.settings, self.bootstrap, group_id=None, auto_offset_reset="none", fetch_max_wait_ms=20
        )
        await consumer.start()
        try:
            consumer.assign(tps)
            starts = await consumer.beginning_offsets(tps)
            ends = await consumer.end_offsets(tps)
            targets: dict[TopicPartition, int] = {}
            for tp in tps:
                key = (tp.topic, tp.partition)
                if wanted[key] < starts[tp]:
                    continue  # overrun by retention: the offsets settle it
                target = offset_to_probe(wanted[key], anchors.get(key), starts[tp], ends[tp])
                if target is not None:
                    targets[tp] = target
            probes = await self._read_back(consumer, targets)
        finally:
            await consumer.stop()
        checks = []
        for tp in tps:
            key = (tp.topic, tp.partition)
            if wanted[key] < starts[tp]:
                state, detail = overrun(wanted[key], starts[tp])
                checks.append(
                    PartitionCheck(tp.topic, tp.partition, wanted[key], starts[tp], ends[tp], state, detail)
                )
                continue
            state, detail = judge(wanted[key], anchors.get(key), probes.get(tp))
            checks.append(
                PartitionCheck(tp.topic, tp.partition, wanted[key], starts[tp], ends[tp], state, detail)
            )
        return checks

    async def _read_back(
        self, consumer: AIOKafkaConsumer, targets: dict[TopicPartition, int]
    ) -> dict[TopicPartition, Probe]:
        found: dict[TopicPartition, Probe] = {}
        if not targets:
            return found
        for tp, offset in targets.items():
            consumer.seek(tp, offset)
        pending = set(targets)
        deadline = time.monotonic() + self.settings.log_check_timeout_s
        while pending and time.monotonic() < deadline:
            try:
                batch = await consumer.getmany(*pending, timeout_ms=100, max_records=1)
            except OffsetOutOfRangeError as exc:  # real Kafka: past the end (or before the start)
                gone = exc.args[0] if exc.args and isinstance(exc.args[0], dict) else {}
                for tp in list(gone) or list(pending):
                    if tp in pending:
                        found[tp] = Probe(targets[tp], None)
                        pending.discard(tp)
                continue
            for tp, records in batch.items():
                if tp not in pending or not records:
                    continue
                first = records[0]
                hit = first.offset == targets[tp]
                found[tp] = Probe(targets[tp], fingerprint(first.key, first.value) if hit else None)
                pending.discard(tp)
                consumer.pause(tp)
        for tp in pending:  # nothing came back: there is no record at that offset
            found[tp] = Probe(targets[tp], None)
        return found

    async def reset(self, checks: Sequence[PartitionCheck]) -> None:
        """Point the group at the start of each lost or replaced log (overwriting, not GREATEST)."""
        if not checks:
            return
        async with self.pool.acquire() as conn, conn.transaction():
            await ledger.set_positions(
                conn, self.group, [Position(c.topic, c.partition, c.log_start) for c in checks]
            )
            await log_anchors.forget_anchors(conn, self.group, [(c.topic, c.partition) for c in checks])

    async def check_cluster(self) -> tuple[str | None, str | None]:
        """(previous, current) cluster id when the broker's cluster id changed, else (None, current)."""
        current = await cluster_id(self.settings, self.bootstrap)
        if not current:
            return None, None
        async with self.pool.acquire() as conn:
            previous = await log_anchors.swap_cluster_id(conn, self.group, current)
        if previous is not None and previous != current:
            return str(previous), current
        return None, current


class AnchorWriter:
    """Anchors each partition at its last committed record, in the background: anchors are
    hints for detecting a broker that lost its log, and an older one names a record of the log
    as well, so the next batch need not wait for this write."""

    def __init__(self, integrity: LogIntegrity) -> None:
        self.integrity = integrity
        self._due: dict[tuple[str, int], RawRecord] = {}
        self.writing: asyncio.Task[None] | None = None

    def remember_later(self, records: Sequence[RawRecord]) -> None:
        for r in records:
            self._due[(r.topic, r.partition)] = r
        if self.writing is None or self.writing.done():
            self.writing = asyncio.create_task(self._write(), name="partition-anchors")

    async def _write(self) -> None:
        while self._due:
            due, self._due = list(self._due.values()), {}
            try:
                await self.integrity.remember(due)
            except Exception as exc:  # an older anchor still names a record of this log
                log.debug("partition anchors not saved: %s", exc)
