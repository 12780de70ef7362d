"""`tasksage evaluate` (prequential replay through the real worker, broker and database),
with the services and runs around it. The commands are in streams/commands/evaluate.py.

Every replay runs against its own fresh database and topics, on the embedded services (started in
DATA_DIR/evaluate) or on the configured KAFKA_BOOTSTRAP_SERVERS / DATABASE_URL, with the worker
in this process. The bookkeeping rules are in processors/evaluation/replay.py.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from processors.contracts import TaskSchedule, encode
from processors.contracts.codec import decode_task_schedule
from processors.errors import TasksageError
from processors.evaluation.dataset import Dataset
from processors.evaluation.offline import Feedback, Prediction
from processors.evaluation.replay import (
    RevealLedger,
    arms_to_reveal,
    default_tiers,
    prediction_from_schedule,
    result_events,
    tiers_toml,
)
from processors.evaluation.runs import RunRecord
from processors.postgres.databases import create_database, drop_database
from processors.scheduling.types import Arm
from streams.kafka import make_consumer, make_producer
from streams.runtime import Endpoints, open_runtime
from streams.settings import Settings
from streams.worker.loop import Worker

log = logging.getLogger(__name__)
Progress = Callable[[str, int, int], None]  # (phase, done, total)


class ReplayStalled(TasksageError):
    """The worker stopped making progress during an evaluation replay."""


@dataclass(frozen=True, slots=True)
class ReplayOptions:
    feedback: Feedback = "full"
    reveal_delay: int = 0
    success_target: float = 0.8
    success_value_usd: float | None = None  # set: the value rule (TASKSAGE_SUCCESS_VALUE_USD)
    exploration_rate: float | None = None  # None: 0 with full feedback, the settings' value with bandit
    use_profiles: bool = True
    learning_rate: float | None = None  # None: the settings' value
    stall_timeout_s: float = 180.0
    label: str = "tasksage"


def run_options(
    options: ReplayOptions, targets: list[float], values: list[float] | None
) -> list[ReplayOptions]:
    """One replay per success target, or per success value (the value rule) when values are given."""
    if values:
        return [
            replace(options, success_target=targets[0], success_value_usd=v, label=f"value ${v:g}")
            for v in values
        ]
    return [replace(options, success_target=t, label=f"target {t:g}") for t in targets]


def run_settings(base: Settings, options: ReplayOptions, run_id: str, dsn: str, tiers_file: Path) -> Settings:
    prefix = f"eval-{run_id}-"
    exploration = options.exploration_rate
    if exploration is None:
        exploration = 0.0 if options.feedback == "full" else base.exploration_rate
    update: dict[str, Any] = {
        "database_url": dsn,
        "tiers_file": tiers_file,
        "success_target": options.success_target,
        "success_value_usd": options.success_value_usd,
        "exploration_rate": exploration,
        "use_profiles": options.use_profiles,
        "metrics_port": 0,
    }
    if options.learning_rate is not None:
        update["learning_rate"] = options.learning_rate
    return base.model_copy(update={**update, **base.namespaced(prefix)})


class _Collector:
    """Reads the task-schedules topic into a dict; wakes the driver on every batch."""

    def __init__(self, consumer: AIOKafkaConsumer) -> None:
        self.consumer = consumer
        self.schedules: dict[str, TaskSchedule] = {}
        self.arrived = asyncio.Event()
        self.on_schedule: Callable[[TaskSchedule], None] = lambda s: None

    async def run(self) -> None:
        while True:
            batch = await self.consumer.getmany(timeout_ms=100)
            for records in batch.values():
                for record in records:
                    if record.value is None:
                        continue
                    schedule = decode_task_schedule(record.value)
                    if schedule.task_id not in self.schedules:  # a re-sent schedule is the same one
                        self.schedules[schedule.task_id] = schedule
                        self.on_schedule(schedule)
            if batch:
                self.arrived.set()


async def live_replay(
    base: Settings,
    endpoints: Endpoints,
    dataset: Dataset,
    options: ReplayOptions,
    work_dir: Path,
    progress: Progress | None = None,
    keep_database: str | None = None,
) -> RunRecord:
    """Replay the dataset through a real worker in this process; returns the per-task record.

    The run gets a new database on the server (dropped afterwards unless `keep_database` names it)."""
    run_id = uuid.uuid4().hex[:10]
    database = keep_database or f"tasksage_eval_{run_id}"
    dsn = await create_database(endpoints.dsn, database)
    tiers_file = _write_tiers(work_dir, run_id, dataset)
    settings = run_settings(base, options, run_id, dsn, tiers_file)
    try:
        return await _replay(settings, Endpoints(endpoints.bootstrap, dsn), dataset, options, progress)
    finally:
        _remove(tiers_file)
        if keep_database is None:
            await drop_database(endpoints.dsn, database)


def _write_tiers(work_dir: Path, run_id: str, dataset: Dataset) -> Path:
    """The dataset's tier table as the TOML file the runtime loads (small, so written inline)."""
    work_dir.mkdir(parents=True, exist_ok=True)
    path = work_dir / f"tiers-{run_id}.toml"
    path.write_text(tiers_toml(default_tiers(dataset)), encoding="utf-8")
    return path


def _remove(path: Path) -> None:
    path.unlink(missing_ok=True)


async def _replay(
    settings: Settings,
    endpoints: Endpoints,
    dataset: Dataset,
    options: ReplayOptions,
    progress: Progress | None,
) -> RunRecord:
    runtime = await open_runtime(settings, endpoints)
    worker = Worker(runtime)
    ready = asyncio.Event()
    worker_task = asyncio.create_task(worker.run(ready), name="evaluate-worker")
    consumer = make_consumer(
        settings,
        endpoints.bootstrap,
        settings.topic_task_schedules,
        group_id=None,
        auto_offset_reset="earliest",
        fetch_max_wait_ms=10,
    )
    producer = make_producer(settings, endpoints.bootstrap)
    collector_task: asyncio.Task[None] | None = None
    try:
        await _wait_ready(ready, worker_task)
        await consumer.start()
        await producer.start()
        collector = _Collector(consumer)
        collector_task = asyncio.create_task(collector.run(), name="evaluate-schedules")
        started = time.monotonic()
        record = await _drive(settings, dataset, options, worker, worker_task, collector, producer, progress)
        return RunRecord(
            label=options.label,
            success_target=options.success_target,
            success_value_usd=options.success_value_usd,
            feedback=options.feedback,
            predictions=record[0],
            visible=record[1],
            revealed=record[2],
            seconds=time.monotonic() - started,
            use_profiles=options.use_profiles,
            learning_rate=settings.learning_rate,
        )
    finally:
        if collector_task is not None:
            collector_task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await collector_task
        with contextlib.suppress(Exception):
            await consumer.stop()
        with contextlib.suppress(Exception):
            await producer.stop()
        worker.stop()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(worker_task, settings.shutdown_timeout_s)
        await runtime.close()


async def _wait_ready(ready: asyncio.Event, worker_task: asyncio.Task[None]) -> None:
    waiter = asyncio.create_task(ready.wait())
    await asyncio.wait({waiter, worker_task}, timeout=120, return_when=asyncio.FIRST_COMPLETED)
    if worker_task.done():
        waiter.cancel()
        worker_task.result()  # raises the worker's error
        raise ReplayStalled("the worker stopped before it was ready")
    if not ready.is_set():
        waiter.cancel()
        raise ReplayStalled("the worker was not ready within 120 s")


async def _drive(
    settings: Settings,
    dataset: Dataset,
    options: ReplayOptions,
    worker: Worker,
    worker_task: asyncio.Task[None],
    collector: _Collector,
    producer: AIOKafkaProducer,
    progress: Progress | None,
) -> tuple[tuple[Prediction, ...], tuple[int, ...], tuple[tuple[Arm, ...], ...]]:
    n = len(dataset.tasks)
    ledger = RevealLedger(n, options.reveal_delay)
    results_topic = settings.topic_execution_result
    index_of = {item.task.task_id: i for i, item in enumerate(dataset.tasks)}
    visible = [0] * n
    revealed: list[tuple[Arm, ...]] = [()] * n

    layer = worker.runtime.pipeline.learned

    def applied() -> int:
        s = worker.stats
        return s.processed[results_topic] + s.duplicates[results_topic] + s.dead_lettered[results_topic]

    def on_schedule(schedule: TaskSchedule) -> None:
        # What the schedule could have seen, taken when it arrives: an upper bound (the worker
        # decided a little earlier), so the baselines fed this prefix are never short-changed.
        i = index_of.get(schedule.task_id)
        if i is not None:
            visible[i] = min(i, ledger.applied_prefix(applied()))

    collector.on_schedule = on_schedule
    last_progress = time.monotonic()
    while not ledger.done():
        if worker_task.done():
            worker_task.result()
            raise ReplayStalled("the worker stopped during the replay")
        sends = []
        seen = applied()
        target = ledger.publishable(seen)
        if target > ledger.published:
            # Prequential: the next tasks are decided with every outcome counted in `seen`, the
            # learned layer's included (the worker's learner would take them a pass later).
            await layer.catch_up(worker.runtime.pool, settings.learned_batch)
        while ledger.published < target:
            task = dataset.tasks[ledger.published].task
            sends.append(
                await producer.send(
                    settings.topic_task_created, encode(task), key=task.task_id.encode(), partition=0
                )
            )
            ledger.mark_published()
        while ledger.revealed < ledger.published:
            item = dataset.tasks[ledger.revealed]
            schedule = collector.schedules.get(item.task.task_id)
            if schedule is None:
                break
            arms = arms_to_reveal(dataset, ledger.revealed, schedule_arm(schedule), options.feedback)
            events = result_events(dataset, ledger.revealed, arms)
            for event in events:
                key = event.task_id.encode()
                sends.append(await producer.send(results_topic, encode(event), key=key, partition=0))
            revealed[ledger.revealed] = tuple(arms)
            ledger.mark_revealed(len(events))
        if sends:
            await asyncio.gather(*sends)
            last_progress = time.monotonic()
            if progress is not None:
                progress("replay", ledger.revealed, n)
            continue
        collector.arrived.clear()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(collector.arrived.wait(), 0.01)
        if applied() >= ledger.total_events and ledger.published == ledger.revealed < n:
            last_progress = time.monotonic()  # waiting on nothing but our own loop
        if time.monotonic() - last_progress > options.stall_timeout_s:
            raise ReplayStalled(
                f"no progress for {options.stall_timeout_s:.0f} s: {ledger.published} tasks published, "
                f"{len(collector.schedules)} schedules received, {ledger.revealed} revealed, "
                f"{applied()} of {ledger.total_events} outcome events applied"
            )
    for _ in range(int(options.stall_timeout_s / 0.02)):  # let the last outcomes land before stopping
        if applied() >= ledger.total_events:
            break
        await asyncio.sleep(0.02)
    predictions = tuple(prediction_from_schedule(collector.schedules[t.task.task_id]) for t in dataset.tasks)
    return predictions, tuple(visible), tuple(revealed)


def schedule_arm(schedule: TaskSchedule) -> Arm:
    return Arm(schedule.agent, schedule.model)


# --- orchestration: services, runs, report ---------------------------------------------------


@contextlib.asynccontextmanager
async def evaluation_services(base: Settings) -> Any:
    """The configured broker and database if both are set, else embedded ones in DATA_DIR/evaluate."""
    if base.kafka_bootstrap_servers and base.database_url:
        yield Endpoints(base.kafka_bootstrap_servers, base.database_url.get_secret_value())
        return
    from streams.embedded import clear_data_dir, free_port
    from streams.runtime import EmbeddedServices

    data_dir = base.data_dir / "evaluate"
    clear_data_dir(data_dir)
    async with EmbeddedServices(
        base.model_copy(update={"data_dir": data_dir}), kafka_port=free_port()
    ) as services:
        assert services.endpoints is not None
        yield services.endpoints


async def evaluate(
    base: Settings,
    dataset: Dataset,
    targets: list[float],
    options: ReplayOptions,
    *,
    values: list[float] | None = None,
    ablate_profiles: bool = False,
    endpoints: Endpoints | None = None,
    progress: Progress | None = None,
    keep_runs: list[RunRecord] | None = None,
) -> dict[str, Any]:
    """Live runs (one per target, or per success value when `values` are given: the value rule,
    plus the ablation) and the report built from them; the run records are appended to
    `keep_runs` when given."""
    from processors.evaluation.report import build_report

    runs: list[RunRecord] = []
    ablations: list[RunRecord] = []
    work_dir = base.data_dir / "evaluate-runs"

    async def all_runs(found: Endpoints) -> None:
        for setting in run_options(options, targets, values):
            runs.append(await live_replay(base, found, dataset, setting, work_dir, progress))
        if ablate_profiles:
            off = replace(
                options,
                success_target=targets[0],
                use_profiles=False,
                learning_rate=0.0,
                label="profiles off",
            )
            ablations.append(await live_replay(base, found, dataset, off, work_dir, progress))

    if endpoints is not None:
        await all_runs(endpoints)
    else:
        async with evaluation_services(base) as found:
            await all_runs(found)
    main_settings = run_settings(base, replace(options, success_target=targets[0]), "x", "", Path("."))
    meta = {
        "embedder": base.embedder,
        "reveal_delay": options.reveal_delay,
        "targets": targets,
        "values_usd": values or [],
        "pipeline": "live: worker in this process, Kafka-protocol broker and PostgreSQL + pgvector",
        "visibility": (
            f"task i was published only after the outcomes of tasks < i - {options.reveal_delay} were "
            "applied; outcomes were published only after the task's own schedule arrived"
        ),
        "run_seconds": [round(r.seconds or 0.0, 1) for r in (*runs, *ablations)],
    }
    if keep_runs is not None:
        keep_runs.extend((*runs, *ablations))
    return build_report(dataset, main_settings.scheduler_config(), runs, ablations, meta)
