"""One benchmark run: services, preload, the worker subprocess, phases, references.

Kept apart from the command (streams/bench/command.py) so the steps read top to bottom.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from processors.contracts import encode
from processors.contracts.inputs import BY_NAME
from processors.embedders.base import Embedder
from processors.postgres import bench_store, index_queue, overview
from processors.postgres.pool import Pool
from streams.bench.probes import (
    OutputCollector,
    PositionPoller,
    Sent,
    cpu_by_component,
    cpu_delta,
    parent_pid,
    peak_rss_bytes,
    publish,
)
from streams.bench.profile import summarize_collapsed
from streams.bench.report import FIRST_OUTCOME_EVERY, HALF_RATE_STREAMS, LIGHT_RATE, STREAMS, TARGET_RATES
from streams.bench.stats import rate, summarize
from streams.bench.workload import BenchWorkload
from streams.kafka import make_consumer
from streams.settings import Settings

# Streams whose batches leave HNSW inserts to the index merger (sql/0006, sql/0008).
QUEUEING_STREAMS = ("execution-result", "message-ingested")
WORKER_COMMAND = [sys.executable, "-c", "from streams.commands.cli import main; main()", "worker"]
NOOP_COMMAND = [
    sys.executable,
    "-c",
    "from streams.bench.reference_loops import noop_worker_main; noop_worker_main()",
]


# Settings read these plain names before their TASKSAGE_ forms: set them, or the caller's
# (the server the benchmark was pointed at) would win over the benchmark's own database.
_PLAIN_NAMES = {"kafka_bootstrap_servers": "KAFKA_BOOTSTRAP_SERVERS", "database_url": "DATABASE_URL"}


def settings_env(overrides: dict[str, Any]) -> dict[str, str]:
    env = dict(os.environ)
    for name, value in overrides.items():
        env[_PLAIN_NAMES.get(name, f"TASKSAGE_{name.upper()}")] = str(value)
    return env


def find_py_spy() -> str | None:
    local = Path(sys.executable).parent / "py-spy"
    return str(local) if local.exists() else shutil.which("py-spy")


@dataclass(slots=True)
class WorkerProcess:
    """A `tasksage worker` (or no-op worker) in its own process, so its RSS and CPU are its own."""

    command: list[str]
    env: dict[str, str]
    log_path: Path
    process: subprocess.Popen[bytes] | None = None

    def start(self) -> int:
        log = open(self.log_path, "ab")  # noqa: SIM115 - closed with the process
        self.process = subprocess.Popen(self.command, env=self.env, stdout=log, stderr=subprocess.STDOUT)
        return self.process.pid

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def stop(self, timeout_s: float = 30.0) -> int | None:
        if self.process is None:
            return None
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout_s)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
        return self.process.returncode

    def log_tail(self, lines: int = 30) -> str:
        with contextlib.suppress(OSError):
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        return ""


@dataclass(slots=True)
class PhaseResult:
    stream: str
    phase: str
    offered_rate: float | None
    sent: list[Sent]
    commit_at: dict[str, float]
    output_ms: dict[str, int]
    wall_s: float
    cpu_s: dict[str, float]
    index_drained_s: float | None = None  # from the first send until the index queue was empty
    learning_drained_s: float | None = None  # ... until the learned layer had learned every outcome

    def as_dict(self) -> dict[str, Any]:
        n = len(self.sent)
        first = min(s.sent_at for s in self.sent)
        done = [self.commit_at[s.event_id] for s in self.sent if s.event_id in self.commit_at]
        commit = [
            (self.commit_at[s.event_id] - s.sent_at) * 1000 for s in self.sent if s.event_id in self.commit_at
        ]
        schedule = [
            float(self.output_ms[s.event_id] - s.timestamp_ms)
            for s in self.sent
            if s.event_id in self.output_ms
        ]
        worker_cpu = self.cpu_s.get("worker", 0.0)
        out: dict[str, Any] = {
            "events": n,
            "offered_rate_eps": self.offered_rate,
            "publish_eps": rate(n, max(s.sent_at for s in self.sent) - first),
            "throughput_eps": rate(len(done), max(done) - first) if done else 0.0,
            "committed": len(done),
            "wall_s": round(self.wall_s, 3),
            "commit_latency_ms": _summary(commit),
            "cpu_s": self.cpu_s,
            "worker_cpu_s_per_1000_events": round(worker_cpu / n * 1000, 3) if n else None,
            "worker_cpu_utilisation": round(worker_cpu / self.wall_s, 3) if self.wall_s else None,
        }
        if self.stream in QUEUEING_STREAMS:
            drained = self.index_drained_s
            out["index_queue_drained_s"] = None if drained is None else round(drained, 3)
            # Effects visible is the throughput; this one also waits for the queued index inserts.
            out["throughput_incl_index_eps"] = rate(len(done), drained) if drained and done else None
        if self.stream == "execution-result":
            learned = self.learning_drained_s
            out["learning_queue_drained_s"] = None if learned is None else round(learned, 3)
            # And this one for the learner (sql/0015): outcomes learned per second, sustained.
            out["throughput_incl_learning_eps"] = rate(len(done), learned) if learned and done else None
        if self.stream == "task-created":
            out["schedule_latency_ms"] = _summary(schedule)
            out["schedules_seen"] = len(schedule)
        return out


def _summary(values: Sequence[float]) -> dict[str, Any] | None:
    s = summarize(values)
    return None if s is None else {f: getattr(s, f) for f in s.__slots__}


@dataclass(slots=True)
class Phases:
    """Publishes each stream's events in the light, rated and full-speed phases and measures them."""

    settings: Settings
    producer: Any
    pool: Pool
    workload: BenchWorkload
    history: int
    worker: WorkerProcess
    broker_pid: int | None
    postmaster_pid: int | None
    poller: PositionPoller
    schedules: OutputCollector
    on_sent: Callable[[int], None]
    timeout_s: float
    counters: dict[str, int] = field(default_factory=dict)
    unexecuted: list[str] = field(default_factory=list)  # tasks published here, no outcome yet

    def events(self, stream: str, phase: str, n: int) -> list[tuple[str, bytes, bytes]]:
        out = []
        for _ in range(n):
            i = self.counters.get(stream, 0) + 1
            self.counters[stream] = i
            event: Any
            if stream == "task-created":
                event = self.workload.task_created(phase, i)
                self.unexecuted.append(event.task_id)
            elif stream == "execution-result":
                first = self.unexecuted.pop() if i % FIRST_OUTCOME_EVERY == 0 and self.unexecuted else None
                event = self.workload.execution_result(phase, i, self.history, first)
            else:
                event = self.workload.message(phase, i)
            out.append((event.event_id, getattr(event, BY_NAME[stream].key_field).encode(), encode(event)))
        return out

    async def run(self, stream: str, phase: str, n: int, offered: float | None) -> PhaseResult:
        topic = self.settings.input_topics[stream]
        events = self.events(stream, phase, n)
        before = cpu_by_component((self.worker.pid,), self.broker_pid, self.postmaster_pid)
        started = time.time()
        sent = await publish(self.producer, topic, events, rate=offered, on_sent=self.on_sent)
        ok = await self.poller.wait_for(sent, self.timeout_s, self.worker.alive)
        if ok and stream == "task-created":
            await self.schedules.wait_for([s.event_id for s in sent], 30.0)
        wall = time.time() - started
        # First outcomes queue task vectors for the neighbour index (sql/0006), messages their
        # own (sql/0008), outcomes themselves wait for the learned layer (sql/0015): the phase
        # ends when the merger and the learner have caught up, so their CPU counts here and not
        # in the next phase.
        drained_at, learned_at = await self._queues_drained(self.timeout_s) if ok else (None, None)
        after = cpu_by_component((self.worker.pid,), self.broker_pid, self.postmaster_pid)
        if not self.worker.alive():
            raise RuntimeError(f"the worker exited during {stream}/{phase}:\n{self.worker.log_tail()}")
        output = {
            s.event_id: self.schedules.seen[s.event_id] for s in sent if s.event_id in self.schedules.seen
        }
        return PhaseResult(
            stream,
            phase,
            offered,
            sent,
            self.poller.commit_times(sent),
            output,
            wall,
            cpu_delta(before, after),
            None if drained_at is None else drained_at - started,
            None if learned_at is None else learned_at - started,
        )

    async def _queues_drained(self, timeout_s: float) -> tuple[float | None, float | None]:
        """Times at which both index queues, and the learning queue, were empty (None: not within
        timeout_s)."""
        deadline = time.monotonic() + timeout_s
        index_at: float | None = None
        learning_at: float | None = None
        while time.monotonic() < deadline and (index_at is None or learning_at is None):
            async with self.pool.acquire() as conn:
                if index_at is None and await index_queue.queues_empty(conn):
                    index_at = time.time()
                if learning_at is None and not await overview.row_count(conn, "learned_queue"):
                    learning_at = time.time()
            await asyncio.sleep(0.02)
        return index_at, learning_at

    async def warm_up(self, n: int = 20) -> None:
        sent: list[Sent] = []
        for stream in STREAMS:
            sent += await publish(
                self.producer, self.settings.input_topics[stream], self.events(stream, "warmup", n), rate=None
            )
        if not await self.poller.wait_for(sent, 120, self.worker.alive):
            raise RuntimeError(f"the worker did not process the warm-up events:\n{self.worker.log_tail()}")

    async def stream_phases(self, stream: str, events: int, light_events: int) -> dict[str, Any]:
        """Light load, the target rate, full speed; for task-created also half the full-speed
        rate measured just before, where latency is judged on any machine (a fixed rate is
        light on a fast one and overload on a slow one)."""
        out: dict[str, Any] = {}
        plan = (
            ("light", light_events, LIGHT_RATE),
            ("rated", events, TARGET_RATES[stream]),
            ("full", events, None),
        )
        for phase, n, offered in plan:
            result = await self.run(stream, phase, n, offered)
            out[phase] = result.as_dict()
            await asyncio.sleep(0.5)
        if stream in HALF_RATE_STREAMS and out["full"]["throughput_eps"]:
            result = await self.run(stream, "half", events, out["full"]["throughput_eps"] / 2)
            out["half"] = result.as_dict()
        return out

    async def profiled(self, stream: str, events: int, py_spy: str, out_dir: Path) -> dict[str, Any]:
        """The full-speed phase again, with py-spy sampling the worker."""
        path = out_dir / f"profile-{stream}.txt"
        async with sampled(py_spy, self.worker.pid, path):
            result = await self.run(stream, "profile", events, None)
        return {
            **profile_summary(path),
            "throughput_eps": result.as_dict()["throughput_eps"],
            "cpu_s": result.cpu_s,
        }


@contextlib.asynccontextmanager
async def sampled(py_spy: str, pid: int, path: Path) -> AsyncIterator[None]:
    """py-spy records on-CPU samples of process `pid` into `path` while the body runs."""
    spy = await asyncio.create_subprocess_exec(
        py_spy, "record", "--pid", str(pid), "--rate", "200", "--format", "raw",
        "--nonblocking", "--output", str(path),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )  # fmt: skip
    await asyncio.sleep(1.0)  # attach
    try:
        yield
    finally:
        spy.send_signal(signal.SIGINT)
        try:
            await asyncio.wait_for(spy.wait(), 30)
        except TimeoutError:
            spy.kill()
            await spy.wait()


def profile_summary(path: Path) -> dict[str, Any]:
    summary = summarize_collapsed(path.read_text() if path.exists() else "")
    return {
        "tool": "py-spy record --rate 200 (on-CPU samples of the worker process)",
        "samples": summary.samples,
        "by_part": summary.by_part,
        "top_functions": summary.top_self,
        "collapsed_stacks": str(path),
    }


async def embedding_cost(embedder: Embedder, workload: BenchWorkload, n: int = 500) -> dict[str, float]:
    """Seconds per text of this embedder on the benchmark's texts, timed alone in this process."""
    texts = [workload.task_created("embedcost", i).description for i in range(n)]
    await embedder.embed(texts[:16])
    started_cpu = time.process_time()
    started = time.perf_counter()
    await embedder.embed(texts)
    wall = time.perf_counter() - started
    return {
        "texts": n,
        "ms_per_text_wall": round(wall / n * 1000, 4),
        "ms_per_text_cpu": round((time.process_time() - started_cpu) / n * 1000, 4),
    }


async def schedule_collector(settings: Settings, bootstrap: str) -> OutputCollector:
    # Latency is read from each schedule's CreateTime, so how soon the bench fetches it does not
    # matter; a long fetch wait keeps this probe's polling off the broker (Tansu answers an empty
    # fetch only when the wait is over, so a 5 ms wait is 200 fetches a second).
    consumer = make_consumer(
        settings, bootstrap, settings.topic_task_schedules, group_id=None, fetch_max_wait_ms=100
    )
    collector = OutputCollector(consumer, "source_event_id")
    await collector.start()
    return collector


async def postmaster_of(pool: Pool) -> int | None:
    """The server process of our database (its children are the backends and helpers)."""
    async with pool.acquire() as conn:
        backend = await bench_store.backend_pid(conn)
    return parent_pid(backend)


def worker_peak_rss_mb(worker: WorkerProcess) -> float | None:
    rss = peak_rss_bytes(worker.pid) if worker.alive() else None
    return None if rss is None else round(rss / 2**20, 1)
