"""`tasksage bench-api`: the API's speed. A history of past tasks and a message corpus are
preloaded into a fresh database of embedded services, `tasksage api` runs as its own process,
and a load generator in another process (streams/bench/api_load.py) drives
POST /v1/recommendations and GET /v1/search, each twice: with closed-loop clients (how many
requests a second the API can answer) and at a fixed arrival rate (the latency at that load).
Targets: recommendations p95 <= 25 ms at >= 300 requests/s, search p95 <= 50 ms at the same
rate (README "HTTP API")."""

from __future__ import annotations

import asyncio
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import click
import httpx
import orjson

from processors.embedders import create_embedder
from processors.postgres import bulk_load, knowledge
from processors.postgres.databases import create_database
from processors.postgres.embedding_models import ensure_indexes, register_model
from processors.scheduling.tiers import load_tiers
from streams.bench.preload import load_history, load_messages
from streams.bench.probes import cpu_by_component, cpu_delta
from streams.bench.run import WorkerProcess, postmaster_of, settings_env
from streams.bench.workload import BenchWorkload
from streams.embedded import free_port
from streams.runtime import EmbeddedServices, open_pool, prepare_database
from streams.settings import Settings

API_COMMAND = [sys.executable, "-c", "from streams.commands.cli import main; main()", "api"]
TARGETS = {"recommendations_p95_ms": 25.0, "recommendations_per_s": 300.0, "search_p95_ms": 50.0}
COMMANDS: list[click.Command] = []


async def _preload(
    settings: Settings, dsn: str, history: int, messages: int, label: str
) -> tuple[dict[str, Any], int | None]:
    """The figures of the preload, and the PostgreSQL server's pid (its CPU is measured)."""
    await prepare_database(settings, dsn)
    pool = await open_pool(settings, dsn)
    embedder = create_embedder(settings.embedder_config())
    workload = BenchWorkload(label)
    try:
        async with pool.acquire() as conn:
            await register_model(conn, embedder.model_name, embedder.dimension, settings.embedder)
            await knowledge.replace_tiers(conn, load_tiers(settings.tiers_file))
            report = await load_history(
                conn, embedder, workload.history(history),
                hnsw_m=settings.hnsw_m, hnsw_ef_construction=settings.hnsw_ef_construction,
            )  # fmt: skip
            corpus = [workload.message("corpus", i) for i in range(messages)]
            vectors = await embedder.embed([m.content for m in corpus])
            await load_messages(
                conn,
                [(m.message_id, m.source, m.author, m.content) for m in corpus],
                embedder.model_name,
                vectors,
                occurred_at=corpus[0].occurred_at,
            )
            await ensure_indexes(conn, embedder.model_name, embedder.dimension)
            await bulk_load.analyze(conn)
        postmaster = await postmaster_of(pool)
    finally:
        await embedder.aclose()
        await pool.close()
    figures = {
        "tasks": report.tasks,
        "outcomes": report.outcomes,
        "messages": messages,
        "load_s": report.load_s,
    }
    return figures, postmaster


async def _ready(base: str, api: WorkerProcess, timeout_s: float = 120.0) -> None:
    deadline = time.monotonic() + timeout_s
    async with httpx.AsyncClient(base_url=base) as client:
        while time.monotonic() < deadline:
            if not api.alive():
                raise click.ClickException(f"tasksage api exited; see {api.log_path}")
            try:
                if (await client.get("/readyz")).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            await asyncio.sleep(0.2)
    raise click.ClickException(f"tasksage api was not ready within {timeout_s:.0f} s; see {api.log_path}")


def _measured_load(config: dict[str, Any], api_pids: list[int], postmaster: int | None) -> dict[str, Any]:
    """One load run, with the CPU each part used in it per request answered (warm-up included):
    the API, PostgreSQL, the load generator, and the rest of the machine (other jobs: a
    latency figure means little when they took a core)."""
    before = cpu_by_component(api_pids, None, postmaster)
    children_before = resource.getrusage(resource.RUSAGE_CHILDREN)
    figures = _load(config)
    used = cpu_delta(before, cpu_by_component(api_pids, None, postmaster))
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    load_cpu = (children.ru_utime + children.ru_stime) - (children_before.ru_utime + children_before.ru_stime)
    parts = {
        "api": used.get("worker", 0.0),
        "postgres": used.get("postgres", 0.0),
        "load generator": load_cpu,
        "other processes": max(0.0, used.get("other processes", 0.0) - load_cpu),
    }
    answered = max(1, figures["answered_with_warmup"])
    figures["cpu_ms_per_request"] = {k: round(v * 1000 / answered, 3) for k, v in parts.items()}
    return figures


def _load(config: dict[str, Any]) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, "-m", "streams.bench.api_load"],
        input=orjson.dumps(config),
        capture_output=True,
        check=True,
        timeout=config["duration_s"] + config.get("warmup_s", 1.0) + 120,
    )
    result: dict[str, Any] = orjson.loads(done.stdout.splitlines()[-1])
    return result


async def run_bench_api(
    base_settings: Settings,
    *,
    history: int,
    messages: int,
    duration_s: float,
    concurrency: int,
    rate: float,
    api_processes: int = 2,
) -> dict[str, Any]:
    label = f"benchapi{int(time.time())}"
    work_dir = Path(tempfile.mkdtemp(prefix="tasksage-bench-api-"))
    services = EmbeddedServices(
        base_settings.model_copy(update={"data_dir": work_dir / "services"}), kafka_port=free_port()
    )
    report: dict[str, Any] = {
        "run": {
            "history": history,
            "messages": messages,
            "duration_s": duration_s,
            "concurrency": concurrency,
            "rate_per_s": rate,
            "api_processes": api_processes,
            "cpus": os.cpu_count(),
            "load_average_before": [round(x, 2) for x in os.getloadavg()],
        },
        "targets": TARGETS,
    }
    try:
        async with services:
            assert services.endpoints is not None
            database = f"tasksage_{label}"
            dsn = await create_database(services.endpoints.dsn, database, purpose="the API benchmark")
            overrides = {
                "kafka_bootstrap_servers": services.endpoints.bootstrap,
                "database_url": dsn,
                "data_dir": str(work_dir),
                "api_rate_limit": "1000000/second",
                "log_level": "WARNING",
            }
            settings = Settings.model_validate({**base_settings.model_dump(), **overrides})
            report["preload"], postmaster = await _preload(settings, dsn, history, messages, label)
            apis: dict[str, WorkerProcess] = {}
            for i in range(api_processes):
                port = free_port()
                env = settings_env({**overrides, "api_port": port})
                apis[f"http://127.0.0.1:{port}"] = WorkerProcess(API_COMMAND, env, work_dir / f"api-{i}.log")
            try:
                for base, api in apis.items():
                    api.start()
                    await _ready(base, api)
                pids = [api.pid for api in apis.values()]
                workload = BenchWorkload(label + "-load", seed=7)
                bodies = [_task_body(workload, i) for i in range(2000)]
                queries = [{"q": workload.message("q", i).content, "limit": 10} for i in range(500)]
                routes = {
                    "recommendations": {"method": "POST", "path": "/v1/recommendations", "bodies": bodies},
                    "search": {"method": "GET", "path": "/v1/search", "params": queries},
                }
                for name, route in routes.items():
                    common = {"bases": list(apis), "duration_s": duration_s, "warmup_s": 2.0, **route}
                    for phase, drive in (
                        (name, {"concurrency": concurrency}),
                        (f"{name}_at_rate", {"rate": rate, "seed": 7}),
                    ):
                        report[phase] = await asyncio.to_thread(
                            _measured_load, {**common, **drive}, pids, postmaster
                        )
            finally:
                for api in apis.values():
                    api.stop()
        report["run"]["load_average_after"] = [round(x, 2) for x in os.getloadavg()]
        report["met"] = _met(report)
        return report
    finally:
        shutil.rmtree(work_dir, ignore_errors=True)


def _task_body(workload: BenchWorkload, i: int) -> dict[str, Any]:
    task = workload.task_created("rec", i)
    return {
        "task_id": task.task_id,
        "description": task.description,
        "kind": task.kind,
        "event_id": task.event_id,
    }


def _met(report: dict[str, Any]) -> dict[str, bool | None]:
    """Throughput from the closed-loop run (what the API can answer); latency from the run at the
    fixed rate, which counts only when that rate is the target's and every request was answered."""
    capacity, rated = report["recommendations"], report["recommendations_at_rate"]
    at_target = rated["offered_per_s"] >= TARGETS["recommendations_per_s"]

    def p95_within(figures: dict[str, Any], limit: float) -> bool | None:
        if figures["p95_ms"] is None:
            return None
        return bool(at_target and figures["ok"] == figures["requests"] and figures["p95_ms"] <= limit)

    return {
        "recommendations_p95_ms": p95_within(rated, TARGETS["recommendations_p95_ms"]),
        "recommendations_per_s": capacity["requests_per_s"] >= TARGETS["recommendations_per_s"],
        "search_p95_ms": p95_within(report["search_at_rate"], TARGETS["search_p95_ms"]),
    }


@click.command("bench-api")
@click.option(
    "--history", type=click.IntRange(100), default=100_000, show_default=True, help="Past tasks preloaded."
)
@click.option(
    "--messages", type=click.IntRange(100), default=20_000, show_default=True, help="Messages to search."
)
@click.option(
    "--duration", type=click.FloatRange(1), default=20.0, show_default=True, help="Seconds per route."
)
@click.option(
    "--concurrency",
    type=click.IntRange(1),
    default=16,
    show_default=True,
    help="Closed-loop clients in the load process (the capacity runs).",
)
@click.option(
    "--rate",
    type=click.FloatRange(1),
    default=TARGETS["recommendations_per_s"],
    show_default=True,
    help="Requests a second, Poisson arrivals, for the latency runs; the p95 targets count at 300 or more.",
)
@click.option(
    "--api-processes",
    type=click.IntRange(1, 16),
    default=2,
    show_default=True,
    help="`tasksage api` processes, each on its own port, taking requests in turn (replicas on one machine).",
)
@click.option(
    "--json",
    "json_path",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    help="Write the report here.",
)
@click.pass_context
def bench_api(
    ctx: click.Context,
    history: int,
    messages: int,
    duration: float,
    concurrency: int,
    rate: float,
    api_processes: int,
    json_path: Path | None,
) -> None:
    """Measure `tasksage api` (API_PROCESSES processes, requests sent to each in turn) on fresh
    embedded services with HISTORY past tasks: /v1/recommendations and /v1/search, each with
    CONCURRENCY closed-loop clients (capacity) and then at RATE requests a second (latency at that
    load). Prints the figures and the targets met."""
    from streams.commands.session import out, run_async, settings_from

    settings = settings_from(ctx)

    async def main(stop: asyncio.Event) -> dict[str, Any]:
        return await run_bench_api(
            settings,
            history=history,
            messages=messages,
            duration_s=duration,
            concurrency=concurrency,
            rate=rate,
            api_processes=api_processes,
        )

    report = run_async(main)
    text = orjson.dumps(report, option=orjson.OPT_INDENT_2).decode()
    if json_path is not None:
        json_path.write_text(text + "\n", "utf-8")
    out.print_json(text)


COMMANDS.append(bench_api)
