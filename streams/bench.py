"""`tasksage bench`: throughput and latency of the pipeline, next to the limits of its parts.

See README "Performance" for what each figure means and how it is measured.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import platform
import shutil
import statistics
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
from rich.table import Table

from processors.benchmarking.preload import load_history
from processors.benchmarking.report import (
    NOOP_TARGET,
    STREAMS,
    capacity_estimate,
    check_targets,
    missed_streams,
)
from processors.benchmarking.stats import ratio
from processors.benchmarking.workload import BenchWorkload
from processors.embedders import create_embedder
from streams.bench_probes import PositionPoller
from streams.bench_run import (
    NOOP_COMMAND,
    WORKER_COMMAND,
    Phases,
    WorkerProcess,
    create_database,
    drop_database,
    dsn_for,
    embedding_cost,
    find_py_spy,
    postmaster_of,
    profile_summary,
    sampled,
    schedule_collector,
    settings_env,
    worker_peak_rss_mb,
)
from streams.embedded import free_port
from streams.kafka import ensure_topics, make_producer
from streams.runtime import EmbeddedServices, open_pool, prepare_database
from streams.settings import Settings

# Raw aiokafka / no-op worker runs, alternated (see _references).
REFERENCE_PAIRS = 3
# The load generator's linger: the producer default since Kafka 4.0 (KIP-1030). Events are
# stamped when sent, so the time they wait in the producer counts in their latency; at 1 ms the
# rated phases sent one record per request and the broker spent more on requests than records.
LOAD_LINGER_MS = 5

console = Console(stderr=True)
out = Console()


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
            await create_database(admin_dsn, database)
            dsn = dsn_for(admin_dsn, database)
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
    total = history + len(streams) * (2 * events + light_events) + 60
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
    ) as progress:
        bar = progress.add_task("preload history", total=total)
        from processors.postgres.vectors import register_model

        async with pool.acquire() as conn:
            await register_model(conn, embedder.model_name, embedder.dimension, settings.embedder)
            preload = await load_history(
                conn, embedder, workload.history(history),
                hnsw_m=settings.hnsw_m, hnsw_ef_construction=settings.hnsw_ef_construction,
                on_progress=lambda done: progress.update(bar, completed=done),
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
                published += 2 * events + light_events
                progress.update(bar, completed=published)
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
            report["references"] = await _references(
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


async def _noop_run(
    settings: Settings,
    overrides: dict[str, Any],
    work_dir: Path,
    pool: Any,
    total: int,
    group_suffix: str,
    py_spy: str | None = None,
    profile_path: Path | None = None,
) -> tuple[int, float]:
    """The no-op worker drains the input topics under a consumer group of its own; (events,
    seconds) from its first visible progress. With py_spy, sampled into profile_path."""
    from processors.benchmarking.stats import progress_rate

    topics = list(settings.input_topics.values())
    group = settings.consumer_group + group_suffix
    env = settings_env({**overrides, "consumer_group": group, "snapshot_interval_s": 3600})
    noop = WorkerProcess(NOOP_COMMAND, env, work_dir / f"noop-worker{group_suffix}.log")
    poller = PositionPoller(pool, group, interval_s=0.02)
    poller.start()
    noop.start()
    deadline = time.monotonic() + max(120.0, total / 200)
    sampling = (
        sampled(py_spy, noop.pid, profile_path) if py_spy and profile_path else contextlib.nullcontext()
    )
    try:
        async with sampling:
            while time.monotonic() < deadline and sum(poller.committed(t) for t in topics) < total:
                if not noop.alive():
                    raise RuntimeError(f"the no-op worker exited:\n{noop.log_tail()}")
                await asyncio.sleep(0.05)
    finally:
        noop.stop()
        await poller.stop()
    samples = [(at, sum(v for (t, _), v in seen.items() if t in topics)) for at, seen in poller.samples]
    return progress_rate(samples)


async def _references(
    settings: Settings,
    overrides: dict[str, Any],
    work_dir: Path,
    pool: Any,
    bootstrap: str,
    report: dict[str, Any],
    workload: BenchWorkload,
    py_spy: str | None = None,
) -> dict[str, Any]:
    """The pipeline next to three loops that each leave parts out:

    - raw aiokafka: consume every input record and produce it again (the broker and client alone);
    - the no-op worker: the real worker with processors that only save positions and echo;
    - the database loop (streams/bench_database.py): fresh events of each stream, pre-decoded,
      straight to the stream's processor in full batches, no Kafka; the same SQL the pipeline
      runs per event, timed per statement by asyncpg's query logger.

    The Kafka loops drain the measured input topics from offset 0; the database loop writes
    events of its own ("dbref" ids) under its own consumer group. Ratios are the pipeline's
    full-speed throughput over each loop's.
    """
    from streams.bench_database import METHOD as DATABASE_METHOD
    from streams.bench_database import database_loop
    from streams.bench_reference import NOOP_ECHO_SUFFIX, raw_kafka_loop

    topics = list(settings.input_topics.values())
    async with pool.acquire() as conn:
        rows = await conn.fetch(
            "SELECT sum(next_offset) AS n FROM consumer_positions WHERE group_id = $1 AND topic = ANY($2::text[])",
            settings.consumer_group,
            topics,
        )
    total = int(rows[0]["n"] or 0)
    out_topic = settings.topic_task_schedules + ".raw-echo"
    await ensure_topics(settings, bootstrap, [out_topic, *(t + NOOP_ECHO_SUFFIX for t in topics)])
    # Each loop drains ~30k records in about a second, so one run swings with whatever else the
    # machine does: alternate the two loops and keep the median of the paired ratios.
    raw_runs: list[float | None] = []
    noop_runs: list[float | None] = []
    for run in range(REFERENCE_PAIRS):
        raw_events, raw_s = await raw_kafka_loop(settings, bootstrap, topics, out_topic, total)
        raw_runs.append(raw_events / raw_s if raw_s else None)
        noop_events, noop_s = await _noop_run(settings, overrides, work_dir, pool, total, f"-noop{run}")
        noop_runs.append(noop_events / noop_s if noop_s else None)
    pair_ratios = [
        r for r in (ratio(n, w) for n, w in zip(noop_runs, raw_runs, strict=True)) if r is not None
    ]
    raw_eps = _median([r for r in raw_runs if r is not None])
    noop_eps = _median([n for n in noop_runs if n is not None])
    noop_ratio = _median(pair_ratios)
    if py_spy and (noop_ratio or 0.0) < NOOP_TARGET:
        # Again under py-spy (a fresh group reads everything again), so the measured run above
        # carries no sampling overhead.
        path = work_dir / "profile-noop.txt"
        events, seconds = await _noop_run(
            settings, overrides, work_dir, pool, total, "-noop-profile", py_spy, path
        )
        report.setdefault("profiles", {})["no-op pipeline"] = {
            **profile_summary(path),
            "throughput_eps": round(events / seconds, 1) if seconds else None,
        }
    full = {s: phases["full"]["throughput_eps"] for s, phases in report["streams"].items()}
    run = report["run"]
    database = await database_loop(settings, workload, run["history"], run["events_per_phase"], list(full))
    return {
        "records": total,
        "raw_kafka_eps": None if raw_eps is None else round(raw_eps, 1),
        "noop_pipeline_eps": None if noop_eps is None else round(noop_eps, 1),
        "noop_vs_raw_kafka": None if noop_ratio is None else round(noop_ratio, 3),
        "raw_kafka_runs_eps": [None if r is None else round(r, 1) for r in raw_runs],
        "noop_pipeline_runs_eps": [None if n is None else round(n, 1) for n in noop_runs],
        "noop_vs_raw_kafka_runs": pair_ratios,
        "pipeline_vs_raw_kafka": {s: ratio(v, raw_eps) for s, v in full.items()},
        "method": (
            "each loop drains all three input topics from offset 0; rate from first visible progress; "
            f"{REFERENCE_PAIRS} raw/no-op pairs run alternately (each no-op run under a fresh consumer "
            "group, claiming every event afresh): eps are medians, the ratio the median of the pair ratios"
        ),
        "database_loop": database,
        "pipeline_vs_database_loop": {s: ratio(v, database[s]["eps"]) for s, v in full.items()},
        "database_loop_method": DATABASE_METHOD,
    }


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


def _median(values: list[float]) -> float | None:
    return statistics.median(values) if values else None


def _fmt(value: Any, unit: str = "") -> str:
    if value is None:
        return "-"
    if isinstance(value, float):  # ratios and ms per event need the second decimal (0.45 is not 0.5)
        return f"{value:,.2f}{unit}" if abs(value) < 10 else f"{value:,.1f}{unit}"
    return f"{value}{unit}"


def print_summary(report: dict[str, Any]) -> None:
    table = Table(
        title=f"tasksage bench: {report['run']['history']:,} history, {report['run']['embedder']} embedder"
    )
    for col in ("stream", "phase", "events/s", "p50 ms", "p95 ms", "p99 ms", "max ms", "worker CPU s/1k"):
        table.add_column(col, justify="right" if col not in ("stream", "phase") else "left")
    for stream, phases in report.get("streams", {}).items():
        for phase, r in phases.items():
            lat = r.get("schedule_latency_ms") or r.get("commit_latency_ms") or {}
            table.add_row(
                stream, phase, _fmt(r["throughput_eps"]), _fmt(lat.get("p50_ms")), _fmt(lat.get("p95_ms")),
                _fmt(lat.get("p99_ms")), _fmt(lat.get("max_ms")), _fmt(r["worker_cpu_s_per_1000_events"]),
            )  # fmt: skip
    out.print(table)
    for stream, index in (("execution-result", "neighbour"), ("message-ingested", "message")):
        full = report.get("streams", {}).get(stream, {}).get("full", {})
        if full.get("index_queue_drained_s") is not None:
            out.print(
                f"{stream} full speed: {index} index caught up {_fmt(full['index_queue_drained_s'])} s "
                f"after the first send ({_fmt(full.get('throughput_incl_index_eps'))} ev/s including the "
                "queued index inserts)"
            )
    refs = report.get("references", {})
    out.print(
        f"raw aiokafka {_fmt(refs.get('raw_kafka_eps'))} ev/s, no-op pipeline {_fmt(refs.get('noop_pipeline_eps'))} ev/s "
        f"(ratio {_fmt(refs.get('noop_vs_raw_kafka'))}); worker peak RSS {_fmt(report.get('worker', {}).get('peak_rss_mb'), ' MiB')}"
    )
    _print_database_loop(refs)
    for stream, cap in report.get("capacity_on_dedicated_cores", {}).items():
        if cap:
            per = ", ".join(f"{k} {v:.2f}" for k, v in cap["cpu_ms_per_event"].items())
            out.print(f"{stream}: CPU ms/event {per} -> ~{_fmt(cap['estimate_eps'])} ev/s on dedicated cores")
    targets = Table("target", "goal", "measured", "met", title="targets")
    for t in report.get("targets", []):
        met = {True: "[green]yes[/green]", False: "[red]no[/red]", None: "-"}[t["met"]]
        targets.add_row(t["name"], t["target"], _fmt(t["measured"]), met)
    out.print(targets)
    for stream, p in report.get("profiles", {}).items():
        if isinstance(p, dict):
            parts = ", ".join(f"{k} {v:.0%}" for k, v in list(p["by_part"].items())[:5])
            cpu = p.get("cpu_s", {}).get("worker")
            where = f"worker CPU {cpu}s; " if cpu is not None else f"{p['samples']} samples; "
            out.print(f"profile {stream}: {where}{parts}")


def _print_database_loop(refs: dict[str, Any]) -> None:
    versus = refs.get("pipeline_vs_database_loop", {})
    for stream, r in refs.get("database_loop", {}).items():
        share, ratio_ = r.get("db_share_of_wall"), versus.get(stream)
        out.print(
            f"database loop {stream}: {_fmt(r.get('eps'))} ev/s, "
            f"{'-' if share is None else f'{share:.0%}'} of wall in SQL, "
            f"pipeline/loop {'-' if ratio_ is None else f'{ratio_:.2f}'}"
        )
        for st in r.get("top_statements", [])[:3]:
            # One line each, cut at the terminal's edge: the JSON has the longer text.
            line = f"  {st['us_per_event']:>8,.1f} us/event {st['calls']:>5} calls  {st['sql']}"
            out.print(line, markup=False, highlight=False, no_wrap=True, overflow="ellipsis")


@click.command("bench")
@click.option("--events", type=int, default=5000, show_default=True, help="Events per stream and phase.")
@click.option("--history", type=int, default=100_000, show_default=True, help="Past tasks preloaded.")
@click.option("--embedder", type=click.Choice(["hash", "local"]), default="hash", show_default=True)
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
    at the target rate and at full speed.

    While changing one stream, `--stream task-created --no-references` measures only that one
    (about a minute after the preload); targets of streams not run read "-".
    """
    from streams.cli import run_async, settings_from

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
