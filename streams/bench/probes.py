"""What `tasksage bench` measures with: paced publishing, commit visibility, schedules, /proc.

Commit visibility: the worker stores each partition's next offset in PostgreSQL in the same
transaction as an event's effects, so the moment a poll sees `next_offset > offset` is the
moment that event's effects (stored rows, vector in the index, outbox) became visible to
readers. Polling every few ms makes that an exact-to-the-interval, per-event measurement
without touching the worker.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from collections import defaultdict
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from processors.postgres import overview
from processors.postgres.pool import Pool

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True, slots=True)
class Sent:
    event_id: str
    topic: str
    partition: int
    offset: int
    sent_at: float  # time.time() when handed to the producer
    timestamp_ms: int  # the record's CreateTime


async def publish(
    producer: AIOKafkaProducer,
    topic: str,
    events: Sequence[tuple[str, bytes, bytes]],
    *,
    rate: float | None,
    on_sent: Callable[[int], None] | None = None,
) -> list[Sent]:
    """Send (event_id, key, value) records at `rate` per second, or as fast as possible (None)."""
    pending: list[tuple[str, float, int, asyncio.Future[object]]] = []
    started = time.perf_counter()
    for i, (event_id, key, value) in enumerate(events):
        if rate:
            delay = started + i / rate - time.perf_counter()
            if delay > 0.001:
                await asyncio.sleep(delay)
        now = time.time()
        ts = int(now * 1000)
        future = await producer.send(topic, value, key=key, timestamp_ms=ts)
        pending.append((event_id, now, ts, future))
        if on_sent is not None and i % 200 == 0:
            on_sent(i)
    out = []
    for event_id, now, ts, future in pending:
        meta = await future
        out.append(Sent(event_id, topic, meta.partition, meta.offset, now, ts))  # type: ignore[attr-defined]
    if on_sent is not None:
        on_sent(len(events))
    return out


@dataclass(slots=True)
class PositionPoller:
    """Polls a consumer group's stored positions; see the module docstring."""

    pool: Pool
    group_id: str
    interval_s: float = 0.01
    samples: list[tuple[float, dict[tuple[str, int], int]]] = field(default_factory=list)
    _task: asyncio.Task[None] | None = None

    async def _run(self) -> None:
        async with self.pool.acquire() as conn:
            while True:
                self.samples.append((time.time(), await overview.group_positions(conn, self.group_id)))
                await asyncio.sleep(self.interval_s)

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name=f"positions-{self.group_id}")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    def committed(self, topic: str) -> int:
        """Records of `topic` committed so far (positions are next offsets, from offset 0)."""
        if not self.samples:
            return 0
        return sum(v for (t, _), v in self.samples[-1][1].items() if t == topic)

    def progress(self, topic: str) -> list[tuple[float, int]]:
        return [(at, sum(v for (t, _), v in seen.items() if t == topic)) for at, seen in self.samples]

    async def wait_for(
        self, sent: Sequence[Sent], timeout_s: float, alive: Callable[[], bool] = lambda: True
    ) -> bool:
        """Until every sent record is committed; False on timeout or when `alive()` turns false."""
        last: dict[tuple[str, int], int] = {}
        for s in sent:
            last[(s.topic, s.partition)] = max(last.get((s.topic, s.partition), -1), s.offset)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline and alive():
            if self._task is not None and self._task.done():
                self._task.result()  # raises what stopped the polling
                raise RuntimeError("position polling stopped")
            if self.samples:
                seen = self.samples[-1][1]
                if all(seen.get(tp, 0) > off for tp, off in last.items()):
                    return True
            await asyncio.sleep(self.interval_s)
        return False

    def commit_times(self, sent: Sequence[Sent]) -> dict[str, float]:
        """event_id -> the first poll time at which its effects were visible."""
        by_partition: dict[tuple[str, int], list[Sent]] = defaultdict(list)
        for s in sent:
            by_partition[(s.topic, s.partition)].append(s)
        out: dict[str, float] = {}
        for tp, records in by_partition.items():
            records.sort(key=lambda s: s.offset)
            i = 0
            for at, seen in self.samples:
                position = seen.get(tp, 0)
                while i < len(records) and records[i].offset < position:
                    out[records[i].event_id] = at
                    i += 1
                if i == len(records):
                    break
        return out


@dataclass(slots=True)
class OutputCollector:
    """Reads an output topic; keeps CreateTime of each record by the id field it names."""

    consumer: AIOKafkaConsumer
    id_field: str
    seen: dict[str, int] = field(default_factory=dict)
    arrived: asyncio.Event = field(default_factory=asyncio.Event)
    _task: asyncio.Task[None] | None = None

    async def _run(self) -> None:
        while True:
            batch = await self.consumer.getmany(timeout_ms=100, max_records=5000)
            for records in batch.values():
                for r in records:
                    if r.value:
                        doc = orjson.loads(r.value)
                        self.seen.setdefault(doc[self.id_field], r.timestamp)
            if batch:
                self.arrived.set()

    async def wait_for(self, ids: Sequence[str], timeout_s: float) -> bool:
        """Until a record was seen for every id; False on timeout."""
        deadline = time.monotonic() + timeout_s
        while any(i not in self.seen for i in ids):
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            self.arrived.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.arrived.wait(), remaining)
        return True

    async def start(self) -> None:
        await self.consumer.start()
        self._task = asyncio.create_task(self._run(), name="output-collector")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self.consumer.stop()


def _stat(pid: int) -> tuple[str, float] | None:
    """(command name, CPU seconds user+system) of a process, None if it is gone."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    name = raw[raw.index("(") + 1 : raw.rindex(")")]
    fields = raw[raw.rindex(")") + 2 :].split()
    return name, (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def peak_rss_bytes(pid: int) -> int | None:
    """VmHWM: the largest resident set the process has had."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


def parent_pid(pid: int) -> int | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("PPid:"):
                return int(line.split()[1])
    except OSError:
        return None
    return None


def machine_cpu_seconds() -> float:
    """CPU seconds used by everything on the machine (first line of /proc/stat, less idle)."""
    fields = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    values = [int(v) for v in fields[:8]]
    return (sum(values) - values[3] - values[4]) / CLOCK_TICKS


def cpu_by_component(
    worker_pids: Collection[int], broker_pid: int | None, postmaster_pid: int | None
) -> dict[str, float]:
    """CPU seconds so far of the worker (or the API processes: several pids count as one part),
    our broker, our PostgreSQL server (postmaster and its children only: other servers on the
    machine are not ours), this process, and the rest of the machine: differences between two
    calls show which part used the cores in a phase."""
    out: dict[str, float] = defaultdict(float)
    me = os.getpid()
    ours = 0.0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        pid = int(entry.name)
        stat = _stat(pid)
        if stat is None:
            continue
        _, cpu = stat
        part = None
        if pid in worker_pids:
            part = "worker"
        elif pid == broker_pid:
            part = "broker"
        elif postmaster_pid is not None and (pid == postmaster_pid or parent_pid(pid) == postmaster_pid):
            part = "postgres"
        elif pid == me:
            part = "bench"
        if part is not None:
            out[part] += cpu
            ours += cpu
    out["other processes"] = machine_cpu_seconds() - ours
    return dict(out)


def cpu_delta(before: dict[str, float], after: dict[str, float]) -> dict[str, float]:
    return {k: round(after.get(k, 0.0) - before.get(k, 0.0), 2) for k in sorted(set(before) | set(after))}
