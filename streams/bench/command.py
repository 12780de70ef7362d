"""`tasksage bench`: throughput and latency of the pipeline, next to the limits of its parts.

See README "Performance" for what each figure means and how it is measured.
"""

from __future__ import annotations

import asyncio
import os
import platform
import shutil
import tempfile
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click
import orjson
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from processors.embedders import create_embedder
from processors.embedders.providers import LOCAL_PROVIDER_NAMES
from processors.postgres import bench_store
from processors.postgres.databases import create_database, drop_database
from streams.bench.comparison import compare_references
from streams.bench.preload import layer_inputs, load_history
from streams.bench.probes import PositionPoller
from streams.bench.report import (
    HALF_RATE_STREAMS,
    STREAMS,
    capacity_estimate,
    check_targets,
    missed_streams,
)
from streams.bench.run import (
    WORKER_COMMAND,
    Phases,
    WorkerProcess,
    embedding_cost,
    find_py_spy,
    postmaster_of,
    schedule_collector,
    settings_env,
    worker_peak_rss_mb,
)
from streams.bench.summary import out, print_summary
from streams.bench.workload import BenchWorkload
from streams.embedded import free_port
from streams.kafka import ensure_topics, make_producer
from streams.runtime import EmbeddedServices, open_pool, prepare_database
from streams.settings import Settings

# The load generator's linger: the producer default since Kafka 4.0 (KIP-1030). Events are
# stamped when sent, so the time they wait in the producer counts in their latency; at 1 ms the
# rated phases sent one record per request and the broker spent more on requests than records.
LOAD_LINGER_MS = 5

console = Console(stderr=True)


def run_settings(
    base: Settings, bootstrap: str, dsn: str, label: str, embedder: str, data_dir: Path
) -> dict[str, Any]:
    """Settings of the measured worker: unique topics and group, metrics off, quiet logs."""
    return {
        "kafka_bootstrap_servers": bootstrap,
        "database_url": dsn,
        "data_dir": str(data_dir),
        **base.namespaced(f"{label}-"),
        "embedder": embedder,
        "metrics_port": 0,
        "log_level": os.environ.get("TASKSAGE_BENCH_WORKER_LOG_LEVEL", "WARNING"),
    }


async def run_bench(
    base: Settings,
    *,
    events: int,
    history: int,
    embedder_name: str,
    light_events: int,
    profile: bool,
    keep: bool,
    streams: Sequence[str] = STREAMS,
    references: bool = True,
) -> dict[str, Any]:
    label = f"bench{int(time.time())}"
    work_dir = Path(tempfile.mkdtemp(prefix="tasksage-bench-"))
    configured = bool(base.kafka_bootstrap_servers and base.database_url)
    # The broker's jars stay in the user's data dir: the work dir is new every run.
    services_settings = base.model_copy(
        update={"data_dir": work_dir / "services", "kafka_jars_dir": base.kafka_jars_dir or base.data_dir}
    )
    services = EmbeddedServices(services_settings, kafka_port=free_port())
    try:
        async with services:
            assert services.endpoints is not None
            bootstrap, admin_dsn = services.endpoints.bootstrap, services.endpoints.dsn
            database = f"tasksage_{label}"
            dsn = await create_database(admin_dsn, database, purpose="the benchmark")
            overrides = run_settings(base, bootstrap, dsn, label, embedder_name, work_dir)
            settings = Settings.model_validate({**base.model_dump(), **overrides})
            try:
                return await _measure(
                    settings, overrides, work_dir, services, label,
                    events=events, history=history, light_events=light_events, profile=profile,
                    configured=configured, streams=streams, references=references,
                )  # fmt: skip
            finally:
                if not keep:
                    await drop_database(admin_dsn, database)
    finally:
        if not keep:
            # The embedded PostgreSQL's files (about 1 GB after 100k past tasks) go; the logs
            # and profiles the report names stay.
            shutil.rmtree(work_dir / "services" / "pg", ignore_errors=True)


async def _measure(
    settings: Settings,
    overrides: dict[str, Any],
    work_dir: Path,
    services: EmbeddedServices,
    label: str,
    *,
    events: int,
    history: int,
    light_events: int,
    profile: bool,
    configured: bool,
    streams: Sequence[str],
    references: bool,
) -> dict[str, Any]:
    bootstrap = settings.kafka_bootstrap_servers or ""
    dsn = settings.database_url.get_secret_value() if settings.database_url else ""
    # Measured in STREAMS order whatever the order asked: results need the tasks' phases first.
    streams = [s for s in STREAMS if s in streams]
    report: dict[str, Any] = {"run": {**_run_info(settings, events, history, configured), "streams": streams}}
    await prepare_database(settings, dsn)
    pool = await open_pool(settings, dsn)
    embedder = create_embedder(settings.embedder_config())
    workload = BenchWorkload(label)
    halves = sum(1 for s in streams if s in HALF_RATE_STREAMS)
    total = history + len(streams) * (2 * events + light_events) + halves * events + 60
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
    ) as progress:
        bar = progress.add_task("preload history", total=total)
        from processors.postgres.embedding_models import register_model

        async with pool.acquire() as conn:
            await register_model(conn, embedder.model_name, embedder.dimension, settings.embedder)
            preload = await load_history(
                conn, embedder, workload.history(history),
                hnsw_m=settings.hnsw_m, hnsw_ef_construction=settings.hnsw_ef_construction,
                on_progress=lambda done: progress.update(bar, completed=done),
                arms=BenchWorkload.arms(),
                features=layer_inputs() if settings.learned_enabled else None,
            )  # fmt: skip
        report["preload"] = {k: getattr(preload, k) for k in preload.__slots__}
        report["run"]["embedding_model"] = embedder.model_name
        report["embedding"] = await embedding_cost(embedder, BenchWorkload(label + "-cost"))
        await ensure_topics(settings, bootstrap)
        env = settings_env(overrides)
        worker = WorkerProcess(WORKER_COMMAND, env, work_dir / "worker.log")
        worker.start()
        producer = make_producer(settings, bootstrap, linger_ms=LOAD_LINGER_MS)
        await producer.start()
        poller = PositionPoller(pool, settings.consumer_group)
        poller.start()
        collector = await schedule_collector(settings, bootstrap)
        published = history

        def on_sent(i: int) -> None:
            progress.update(bar, completed=published + i)

        broker_pid = services.broker.process.pid if services.broker and services.broker.process else None
        postmaster = await postmaster_of(pool)
        phases = Phases(
            settings, producer, pool, workload, history, worker, broker_pid, postmaster, poller, collector, on_sent,
            timeout_s=max(120.0, events / 20),
        )  # fmt: skip
        try:
            progress.update(bar, description="worker start + warm-up")
            await phases.warm_up()
            published += 60
            report["streams"] = {}
            for stream in streams:
                progress.update(bar, description=stream)
                report["streams"][stream] = await phases.stream_phases(stream, events, light_events)
                published += (3 if stream in HALF_RATE_STREAMS else 2) * events + light_events
                progress.update(bar, completed=published)
            async with pool.acquire() as conn:
                # Every preloaded task carries the layer's inputs (preload.layer_inputs), so each
                # outcome of the measured phases teaches the layer, as in production.
                # The preload's own outcomes carry inputs but were loaded, not learned from.
                with_inputs = 0
                if settings.learned_enabled:
                    with_inputs = await bench_store.outcomes_with_layer_inputs(conn) - preload.outcomes
                report["learned_layer"] = {
                    "enabled": settings.learned_enabled,
                    "outcomes_learned": await bench_store.learned_outcomes(conn),
                    "outcomes_with_inputs": with_inputs,
                }
            report["worker"] = _worker_figures(report, worker)
            report["embedding"]["share_of_full_phase"] = _embedding_share(report)
            report["capacity_on_dedicated_cores"] = {
                s: capacity_estimate(report["streams"][s]["full"], os.cpu_count() or 1) for s in streams
            }
            checks = check_targets(report)
            py_spy = find_py_spy()
            profiles: dict[str, Any] = {}
            if profile and py_spy:
                for stream in missed_streams(checks):
                    progress.update(bar, description=f"profiling {stream}")
                    profiles[stream] = await phases.profiled(stream, events, py_spy, work_dir)
            elif profile:
                profiles["note"] = (
                    "py-spy not found: `pip install 'tasksage[bench]'` (or `make install`) for profiles of missed targets"
                )
            report["profiles"] = profiles
        finally:
            worker.stop()
            await collector.stop()
            await producer.stop()
            await poller.stop()
        if references:
            progress.update(bar, description="reference loops")
            report["references"] = await compare_references(
                settings, overrides, work_dir, pool, bootstrap, report, workload, py_spy if profile else None
            )
        report["targets"] = [c.as_dict() for c in check_targets(report)]
        progress.update(bar, completed=total, description="done")
    await embedder.aclose()
    await pool.close()
    report["work_dir"] = str(work_dir)
    report["run"]["load_average_at_end"] = load_average()
    return report


def _embedding_share(report: dict[str, Any]) -> dict[str, float]:
    """Estimated share of each embedding stream's full-speed phase spent embedding: the
    embedder's own time per text (timed alone in this process) times the texts, over the
    phase's wall time. The py-spy profile, when taken, shows the same from inside the worker."""
    per_text_s = report["embedding"]["ms_per_text_wall"] / 1000
    out = {}
    for stream in ("task-created", "message-ingested"):
        if stream not in report["streams"]:
            continue
        full = report["streams"][stream]["full"]
        if full.get("wall_s"):
            out[stream] = round(min(1.0, per_text_s * full["events"] / full["wall_s"]), 3)
    return out


def _worker_figures(report: dict[str, Any], worker: WorkerProcess) -> dict[str, Any]:
    per_1000 = {s: phases["full"]["worker_cpu_s_per_1000_events"] for s, phases in report["streams"].items()}
    return {"peak_rss_mb": worker_peak_rss_mb(worker), "cpu_s_per_1000_events": per_1000, "pid": worker.pid}


def load_average() -> list[str]:
    """Other work on the machine skews every figure: the report says how busy it was."""
    with open("/proc/loadavg") as f:
        return f.read().split()[:3]


def _run_info(settings: Settings, events: int, history: int, configured: bool) -> dict[str, Any]:
    return {
        "load_average_at_start": load_average(),
        "started_at": datetime.now(UTC).isoformat(),
        "events_per_phase": events,
        "history": history,
        "embedder": settings.embedder,
        "services": "configured"
        if configured
        else f"embedded ({'Apache Kafka' if settings.embedded_broker == 'kafka' else 'Tansu'} + pgserver)",
        "broker": "configured"
        if settings.kafka_bootstrap_servers and configured
        else settings.embedded_broker,
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "batch_max_records": settings.batch_max_records,
        "fetch_max_wait_ms": settings.fetch_max_wait_ms,
        "hnsw": {
            "m": settings.hnsw_m,
            "ef_construction": settings.hnsw_ef_construction,
            "ef_search": settings.hnsw_ef_search,
        },
        "topic_partitions": settings.topic_partitions,
    }


@click.command("bench")
@click.option("--events", type=int, default=5000, show_default=True, help="Events per stream and phase.")
@click.option("--history", type=int, default=100_000, show_default=True, help="Past tasks preloaded.")
@click.option("--embedder", type=click.Choice(LOCAL_PROVIDER_NAMES), default="hash", show_default=True)
@click.option(
    "--json", "json_path", type=click.Path(path_type=Path), default=None, help="Write the report here."
)
@click.option(
    "--light-events", type=int, default=150, show_default=True, help="Events of the light-load phase."
)
@click.option(
    "--profile/--no-profile", default=True, show_default=True, help="py-spy profile of missed targets."
)
@click.option("--keep", is_flag=True, help="Keep the benchmark database afterwards.")
@click.option(
    "--broker",
    type=click.Choice(["tansu", "kafka"]),
    default=None,
    help="Embedded broker to measure on (unless KAFKA_BOOTSTRAP_SERVERS is set) [env TASKSAGE_EMBEDDED_BROKER; default: tansu].",
)
@click.option(
    "--stream",
    "streams",
    type=click.Choice(STREAMS),
    multiple=True,
    help="Measure only this stream (repeat for more). Default: all three.",
)
@click.option(
    "--references/--no-references",
    default=True,
    show_default=True,
    help="Run the raw aiokafka, no-op and database reference loops after the streams.",
)
@click.pass_context
def bench(
    ctx: click.Context, events: int, history: int, embedder: str, json_path: Path | None,
    light_events: int, profile: bool, keep: bool, streams: tuple[str, ...], references: bool,
    broker: str | None,
) -> None:  # fmt: skip
    """Measure throughput and latency per event type against raw aiokafka and the database.

    Starts the embedded broker and database unless KAFKA_BOOTSTRAP_SERVERS and DATABASE_URL
    are set (then it creates and drops its own database on that server), preloads HISTORY past
    tasks, runs `tasksage worker` as a subprocess and publishes EVENTS per stream at light load,
    at the target rate and at full speed, then task-created again at half its measured full-speed
    rate (where its p99 event-to-schedule target is judged).

    While changing one stream, `--stream task-created --no-references` measures only that one
    (about a minute after the preload); targets of streams not run read "-".
    """
    from streams.commands.session import run_async, settings_from

    base = settings_from(ctx, embedded_broker=broker)

    async def main(stop: asyncio.Event) -> dict[str, Any]:
        return await run_bench(
            base, events=events, history=history, embedder_name=embedder, light_events=light_events,
            profile=profile, keep=keep, streams=streams or STREAMS, references=references,
        )  # fmt: skip

    report = run_async(main)
    if json_path is not None:
        json_path.write_bytes(orjson.dumps(report, option=orjson.OPT_INDENT_2))
    print_summary(report)
    if json_path is not None:
        out.print(f"report written to {json_path}")


COMMANDS = [bench]
