"""`tasksage up`, `worker` and `migrate`: start the services and the worker, apply migrations."""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

import click

from processors.embedders.providers import PROVIDER_NAMES
from streams.commands.session import console, out, run_async, settings_from
from streams.settings import Settings


@click.command()
@click.option("--fresh", is_flag=True, help="Wipe the embedded data directory first.")
@click.option("--no-worker", is_flag=True, help="Start only the services.")
@click.option("--kafka-port", type=int, default=None, help="Port of the embedded broker [default: 19092].")
@click.option(
    "--broker",
    type=click.Choice(["tansu", "kafka"]),
    default=None,
    help="Embedded broker: tansu (light, memory only) or kafka (Apache Kafka in KRaft mode, logs "
    "kept in DATA_DIR/kafka; needs Java; jars fetched by Maven on first use) "
    "[env TASKSAGE_EMBEDDED_BROKER, default: tansu].",
)
@click.pass_context
def up(ctx: click.Context, fresh: bool, no_worker: bool, kafka_port: int | None, broker: str | None) -> None:
    """Start the embedded broker and database (unless configured) and the worker.

    Runs in the foreground until Ctrl-C, then stops everything it started. Tansu keeps data
    in memory only; Apache Kafka (--broker kafka) keeps its log in DATA_DIR/kafka; the
    database keeps its files in DATA_DIR/pg.
    """
    from streams.embedded import clear_data_dir
    from streams.runtime import EmbeddedServices

    settings = settings_from(ctx, embedded_broker=broker)
    if fresh:
        clear_data_dir(settings.data_dir)

    async def main(stop: asyncio.Event) -> None:
        async with EmbeddedServices(settings, kafka_port=kafka_port) as services:
            assert services.endpoints is not None
            console.print("[green]services are up[/green]; in another shell:")
            # soft_wrap: a wrapped export line cannot be copied into a shell.
            console.print(f"  export KAFKA_BOOTSTRAP_SERVERS={services.endpoints.bootstrap}", soft_wrap=True)
            console.print(f"  export DATABASE_URL='{services.endpoints.dsn}'", soft_wrap=True)
            console.print("  (or run tasksage commands from this directory: they find these services)")
            if no_worker:
                from streams.runtime import prepare_database

                await prepare_database(settings, services.endpoints.dsn)
                await stop.wait()
                return
            await _run_worker(settings, services.endpoints, stop)

    run_async(main)


async def _run_worker(settings: Settings, endpoints: Any, stop: asyncio.Event) -> None:
    from streams.gc_tuning import settle_after_start
    from streams.metrics import Health, MetricsServer
    from streams.runtime import open_runtime
    from streams.worker.blas import limit_blas_threads
    from streams.worker.loop import Worker

    runtime = await open_runtime(settings, endpoints)
    health = Health()
    server = MetricsServer(settings.metrics_port, health)
    await server.start()
    worker = Worker(runtime, health)
    # This process is the worker's alone (in-process workers of tests and `evaluate` keep the
    # interpreter's settings): what start-up built is not scanned again.
    settle_after_start(settings.gc_young_threshold)
    limit_blas_threads(settings.blas_threads)
    task = asyncio.create_task(worker.run())
    console.print(
        f"worker consuming {', '.join(settings.input_topics.values())} "
        f"(metrics and /healthz on :{settings.metrics_port}); Ctrl-C stops"
    )
    stopper = asyncio.create_task(stop.wait())
    await asyncio.wait({task, stopper}, return_when=asyncio.FIRST_COMPLETED)
    stopper.cancel()
    await _stop_worker(worker, task, settings.shutdown_timeout_s)
    await server.stop()
    try:
        await asyncio.wait_for(runtime.close(), max(0.5, settings.shutdown_timeout_s * 0.1))
    except Exception as exc:
        logging.getLogger(__name__).warning("closing connections: %s", exc or "timed out")
        runtime.pool.terminate()
    if task.done() and not task.cancelled() and task.exception() is not None:
        raise SystemExit(1)


async def _stop_worker(worker: Any, task: asyncio.Task[None], timeout_s: float) -> None:
    """Finish the in-flight batch (or hand it back) and leave the group within `timeout_s`."""
    log = logging.getLogger(__name__)
    started = time.monotonic()
    worker.stop()
    done, _ = await asyncio.wait({task}, timeout=max(0.5, timeout_s * 0.6))
    if not done:
        log.warning("in-flight batch still running after %.1fs: handing it back uncommitted", timeout_s * 0.6)
        task.cancel()
        await asyncio.wait({task}, timeout=max(0.5, timeout_s * 0.3))
    log.info("worker shut down in %.1fs", time.monotonic() - started)


@click.command()
@click.option(
    "--embedder",
    type=click.Choice(PROVIDER_NAMES),
    default=None,
    help="Embedding provider [default: TASKSAGE_EMBEDDER, else hash].",
)
@click.option("--group", "consumer_group", default=None, help="Consumer group [default: tasksage].")
@click.option("--metrics-port", type=int, default=None, help="Prometheus and /healthz port (0 = off).")
@click.pass_context
def worker(
    ctx: click.Context, embedder: str | None, consumer_group: str | None, metrics_port: int | None
) -> None:
    """Run the stream processor against the configured (or `up`-started) services."""
    from streams.runtime import resolve_endpoints

    settings = settings_from(ctx, embedder=embedder, consumer_group=consumer_group, metrics_port=metrics_port)

    async def main(stop: asyncio.Event) -> None:
        await _run_worker(settings, resolve_endpoints(settings), stop)

    run_async(main)


@click.command()
@click.pass_context
def migrate(ctx: click.Context) -> None:
    """Apply the numbered SQL migrations in sql/ (forward-only, checksummed, locked)."""
    from processors.postgres.migrations import migrate_database
    from streams.runtime import resolve_endpoints

    settings = settings_from(ctx)

    async def main(stop: asyncio.Event) -> None:
        done = await migrate_database(resolve_endpoints(settings).dsn)
        if done:
            for m in done:
                out.print(f"applied {m.version:04d}_{m.name}.sql")
        else:
            out.print("database is up to date")

    run_async(main)


COMMANDS = [up, worker, migrate]
