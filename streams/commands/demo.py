"""`tasksage demo`: the whole job on the embedded broker and database, with a live view.

Publishes a seeded sample workload in rounds: tasks, then (once their schedules are out) the
outcome of the (agent, model) each schedule chose, plus chat messages. Later rounds are
scheduled with what earlier rounds taught.
"""

from __future__ import annotations

import asyncio
import contextlib
import statistics
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.live import Live
from rich.table import Table
from rich.text import Text

from processors.contracts import TaskSchedule
from processors.contracts.codec import decode_task_schedule
from processors.demo_workload import MODEL_COST_USD, UNUSED_TIER_TOML, SampleTask, SampleWorkload
from processors.embedders.providers import LOCAL_PROVIDER_NAMES
from processors.pipeline.insights import InsightsBuilder
from processors.scheduling.types import Arm
from streams.client import TasksagePublisher
from streams.commands.insights import summary_lines
from streams.embedded import clear_data_dir, free_port
from streams.kafka import make_consumer
from streams.runtime import EmbeddedServices, open_runtime
from streams.settings import Settings
from streams.worker.loop import Worker

# Wide enough for the summary tables even when output is piped (CI logs, `make demo | tee`).
console = Console(width=None if Console().is_terminal else 120)


@dataclass(slots=True)
class DemoState:
    schedules: dict[str, TaskSchedule] = field(default_factory=dict)
    published_tasks: int = 0
    published_results: int = 0
    round: int = 0
    rounds: int = 0
    phase: str = "starting"
    started: float = field(default_factory=time.monotonic)
    rows: list[tuple[SampleTask, TaskSchedule, Any]] = field(default_factory=list)
    insights: list[str] = field(default_factory=list)


def progress_line(state: DemoState) -> Text:
    cost = sum(r[2].cost_usd or 0 for r in state.rows)
    ok = sum(r[2].success for r in state.rows)
    rate = f"{ok / len(state.rows):.0%}" if state.rows else "-"
    return Text.assemble(
        ("tasksage demo ", "bold"),
        f"round {state.round}/{state.rounds} | {state.phase} | tasks {state.published_tasks} "
        f"scheduled {len(state.schedules)} | results {state.published_results} | success {rate} "
        f"| cost ${cost:.3f} | {time.monotonic() - state.started:.0f}s",
    )


async def collect_schedules(
    settings: Settings, bootstrap: str, state: DemoState, ready: asyncio.Event
) -> None:
    consumer = make_consumer(
        settings,
        bootstrap,
        settings.topic_task_schedules,
        group_id=None,
        auto_offset_reset="earliest",
        fetch_max_wait_ms=20,
    )
    await consumer.start()
    ready.set()
    try:
        while True:
            batch = await consumer.getmany(timeout_ms=200)
            for records in batch.values():
                for r in records:
                    if r.value:
                        s = decode_task_schedule(r.value)
                        state.schedules[s.task_id] = s
    finally:
        await consumer.stop()


async def wait_until(predicate: Any, timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError(f"demo: timed out after {timeout_s:.0f}s waiting for {what}")
        await asyncio.sleep(0.05)


async def run_demo(settings: Settings, rounds: int, per_round: int, seed: int, live: Live) -> DemoState:
    state = DemoState(rounds=rounds)
    workload = SampleWorkload(seed, planted=True)
    async with EmbeddedServices(settings, kafka_port=free_port()) as services:
        assert services.endpoints is not None
        runtime = await open_runtime(settings, services.endpoints)
        worker = Worker(runtime)
        worker_task = asyncio.create_task(worker.run())
        ready = asyncio.Event()
        collector = asyncio.create_task(
            collect_schedules(settings, services.endpoints.bootstrap, state, ready)
        )
        refresher = asyncio.create_task(_refresh(live, state))
        try:
            await ready.wait()
            async with TasksagePublisher(settings, services.endpoints.bootstrap) as publisher:
                for number in range(1, rounds + 1):
                    state.round = number
                    state.phase = "publishing tasks"
                    batch = workload.tasks(per_round)
                    for sample in batch:
                        await publisher.publish_task(sample.task, wait=False)
                        await publisher.publish_message(workload.message(sample), wait=False)
                    await publisher.flush()
                    state.published_tasks += len(batch)
                    state.phase = "waiting for schedules"
                    await wait_until(
                        lambda b=batch: all(s.task.task_id in state.schedules for s in b), 120, "schedules"
                    )
                    state.phase = "publishing outcomes"
                    for sample in batch:
                        chosen = state.schedules[sample.task.task_id]
                        result = workload.outcome(sample, Arm(chosen.agent, chosen.model))
                        await publisher.publish_result(result, wait=False)
                        state.rows.append((sample, chosen, result))
                    await publisher.flush()
                    state.published_results += len(batch)
                    state.phase = "learning"
                    await wait_until(
                        lambda: (
                            worker.stats.processed[settings.topic_execution_result] >= state.published_results
                        ),
                        120,
                        "outcomes to be applied",
                    )
            state.phase = "insights"
            builder = InsightsBuilder(runtime.pool, runtime.embedder, settings.insights_config())
            state.insights = await summary_lines(builder)
            state.phase = "done"
        finally:
            for task in (collector, refresher):
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            worker.stop()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(worker_task, 30)
            await runtime.close()
    return state


async def _refresh(live: Live, state: DemoState) -> None:
    while True:
        live.update(progress_line(state))
        await asyncio.sleep(0.25)


def summary(state: DemoState) -> list[Table]:
    by_kind: dict[str, list[tuple[SampleTask, TaskSchedule, Any]]] = defaultdict(list)
    for row in state.rows:
        by_kind[row[0].family.name].append(row)
    late = state.rounds // 2
    per_kind = Table(title="What tasksage learned (figures from the second half of the run)")
    for header in ("task family", "tasks", "cold starts", "now recommends"):
        per_kind.add_column(header, no_wrap=True)
    for header in ("predicted success", "actual success", "predicted duration", "actual duration"):
        per_kind.add_column(header, justify="right")
    for name, rows in sorted(by_kind.items()):
        half = rows[len(rows) * late // max(1, state.rounds) :] or rows
        choice = Counter(f"{r[1].agent}/{r[1].model}" for r in half).most_common(1)[0][0]
        durations = [r[1].predicted_duration_ms for r in half if r[1].predicted_duration_ms is not None]
        per_kind.add_row(
            name,
            str(len(rows)),
            str(sum(r[1].cold_start for r in rows)),
            choice,
            f"{statistics.fmean(r[1].success_probability for r in half):.0%}",
            f"{statistics.fmean(float(r[2].success) for r in half):.0%}",
            f"{statistics.fmean(durations) / 1000:.1f}s" if durations else "-",
            f"{statistics.fmean(r[2].duration_ms for r in half) / 1000:.1f}s",
        )
    target = state.rows[0][1].success_target if state.rows else 0.0
    totals = Table(
        "policy",
        "success rate",
        "total cost",
        title=f"{len(state.rows)} tasks; success target {target:.0%} (cheapest choice expected to reach it)",
    )
    learned = state.rows[len(state.rows) // 2 :]
    for label, rows in (
        ("tasksage, whole run (incl. cold start)", state.rows),
        ("tasksage, second half", learned),
    ):
        totals.add_row(
            label,
            f"{statistics.fmean(float(r[2].success) for r in rows):.1%}",
            f"${sum(r[2].cost_usd for r in rows):.3f}",
        )
    for label, model in (
        ("always the strongest model (expected)", "large"),
        ("always the cheapest model (expected)", "small"),
    ):
        for scope, rows in (("", learned),):
            arm_rows = [(r[0], Arm(r[0].family.agent, model)) for r in rows]
            totals.add_row(
                f"{label}, second half{scope}",
                f"{statistics.fmean(s.success_probability(a) for s, a in arm_rows):.1%}",
                f"${sum(MODEL_COST_USD[a.model] for _, a in arm_rows):.3f}",
            )
    return [per_kind, totals]


@click.command()
@click.option("--rounds", type=int, default=8, show_default=True, help="Rounds of tasks, then outcomes.")
@click.option("--tasks-per-round", type=int, default=60, show_default=True, help="Tasks published per round.")
@click.option("--seed", type=int, default=7, show_default=True, help="Seed of the sample workload.")
@click.option("--embedder", type=click.Choice(LOCAL_PROVIDER_NAMES), default="hash", show_default=True)
@click.pass_context
def demo(ctx: click.Context, rounds: int, tasks_per_round: int, seed: int, embedder: str) -> None:
    """Run the main job on the embedded broker and database and show the result.

    Starts Tansu and PostgreSQL + pgvector in DATA_DIR/demo (wiped first), the worker, and
    a sample workload; stops everything at the end or on Ctrl-C.
    """
    from streams.commands.session import console as err
    from streams.commands.session import run_async, until_stopped

    data_dir = Path(ctx.obj["data_dir"]) / "demo"
    clear_data_dir(data_dir)
    # The shipped tier table plus the planted arm that no demo task can use.
    data_dir.mkdir(parents=True, exist_ok=True)
    tiers_file = data_dir / "tiers.toml"
    shipped: Path = Settings.model_fields["tiers_file"].default
    tiers_file.write_text(shipped.read_text("utf-8") + UNUSED_TIER_TOML, "utf-8")
    # The demo always runs on the embedded services, whatever the environment points at.
    settings = Settings.model_validate(
        {
            "data_dir": data_dir,
            "embedder": embedder,
            "metrics_port": 0,
            "snapshot_interval_s": 1.0,
            "tiers_file": tiers_file,
            "kafka_bootstrap_servers": None,
            "database_url": None,
        }
    )
    err.print(f"starting the embedded broker and PostgreSQL in {data_dir} ...")

    async def main(stop: asyncio.Event) -> DemoState:
        with Live(Text("tasksage demo: starting"), console=console, refresh_per_second=4) as live:
            return await until_stopped(run_demo(settings, rounds, tasks_per_round, seed, live), stop)

    state = run_async(main)
    console.print()
    for table in summary(state):
        console.print(table)
    if state.insights:
        console.print(
            "[bold]Insights[/bold] (`tasksage insights accuracy|failures|gaps|arms` for the full view):"
        )
        for line in state.insights:
            console.print(f"  - {line}")
    console.print(
        "Schedules are on the task-schedules topic; see README for `tasksage up`, `consume`, `status`."
    )


COMMANDS = [demo]
