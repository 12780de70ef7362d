"""The `tasksage` command line. Every option can also be set by environment variable (see README)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import sys
import time
from collections.abc import Awaitable, Callable, Coroutine
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

import click
import orjson
from rich.console import Console
from rich.table import Table

from processors.errors import ConfigurationError, InvalidEvent, TasksageError
from streams.settings import Settings

T = TypeVar("T")
console = Console(stderr=True)
out = Console()


def setup_logging(level: str) -> None:
    logging.basicConfig(
        level=getattr(logging, level.upper(), logging.INFO),
        format="%(asctime)s %(levelname)-7s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    for noisy in ("aiokafka", "kafka", "pgserver"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, logging.getLogger().level))


def run_async(factory: Callable[[asyncio.Event], Awaitable[T]]) -> T:
    """Run a coroutine; SIGINT/SIGTERM set the stop event for a graceful shutdown."""

    async def main() -> T:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        return await factory(stop)

    try:
        return asyncio.run(main())
    except TasksageError as exc:
        console.print(f"[red]error:[/red] {exc}")
        raise SystemExit(2) from None


async def until_stopped(work: Coroutine[Any, Any, T], stop: asyncio.Event) -> T:
    """Run `work` until it finishes or `stop` is set; on stop, cancel it and exit 130 (as an
    interrupted shell command does)."""
    job = asyncio.create_task(work)
    stopper = asyncio.create_task(stop.wait())
    await asyncio.wait({job, stopper}, return_when=asyncio.FIRST_COMPLETED)
    stopper.cancel()
    if not job.done():
        job.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await job
        raise SystemExit(130)
    return job.result()


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.option(
    "--log-level", envvar="TASKSAGE_LOG_LEVEL", default="INFO", show_default=True, help="Log level."
)
@click.option(
    "--data-dir",
    envvar="TASKSAGE_DATA_DIR",
    type=click.Path(path_type=Path),
    default=Path(".tasksage"),
    show_default=True,
    help="Where the embedded broker and database keep their files.",
)
@click.pass_context
def cli(ctx: click.Context, log_level: str, data_dir: Path) -> None:
    """tasksage: learn from task outcomes on Kafka, publish optimized schedules.

    Without KAFKA_BOOTSTRAP_SERVERS / DATABASE_URL, `tasksage up` starts an embedded
    Kafka-protocol broker (Tansu) and PostgreSQL + pgvector (pgserver); the other commands
    then find them through DATA_DIR/services.json.
    """
    setup_logging(log_level)
    ctx.obj = {"data_dir": data_dir}


def settings_from(ctx: click.Context, **overrides: Any) -> Settings:
    values = {k: v for k, v in overrides.items() if v is not None}
    values.setdefault("data_dir", ctx.obj["data_dir"])
    try:
        return Settings(**values)
    except Exception as exc:
        raise click.UsageError(f"invalid settings: {exc}") from None


@cli.command()
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
    from streams.blas import limit_blas_threads
    from streams.gc_tuning import settle_after_start
    from streams.metrics import Health, MetricsServer
    from streams.runtime import open_runtime
    from streams.worker import Worker

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


@cli.command()
@click.option(
    "--embedder",
    type=click.Choice(["hash", "local", "openai"]),
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


@cli.command()
@click.pass_context
def migrate(ctx: click.Context) -> None:
    """Apply the numbered SQL migrations in sql/ (forward-only, checksummed, locked)."""
    import asyncpg

    from processors.postgres.migrations import migrate as apply
    from streams.runtime import resolve_endpoints

    settings = settings_from(ctx)

    async def main(stop: asyncio.Event) -> None:
        conn = await asyncpg.connect(resolve_endpoints(settings).dsn)
        try:
            done = await apply(conn)
        finally:
            await conn.close()
        if done:
            for m in done:
                out.print(f"applied {m.version:04d}_{m.name}.sql")
        else:
            out.print("database is up to date")

    run_async(main)


@cli.command()
@click.argument("event_type", type=click.Choice(["task-created", "execution-result", "message-ingested"]))
@click.argument("source", type=click.File("rb"), default="-")
@click.option(
    "--fill/--no-fill",
    default=True,
    show_default=True,
    help="Add missing event_id, schema_version, occurred_at.",
)
@click.pass_context
def publish(ctx: click.Context, event_type: str, source: Any, fill: bool) -> None:
    """Publish JSON Lines (one event per line) from SOURCE, a file or - for stdin (the default).

    Each line is validated against the event's JSON Schema first; invalid lines are
    reported with their line number and reason and are not sent.
    """
    from streams.client import TasksagePublisher, complete_event

    settings = settings_from(ctx)

    async def main(stop: asyncio.Event) -> tuple[int, int]:
        sent = bad = 0
        async with TasksagePublisher(settings) as publisher:
            futures = []
            for number, line in enumerate(source, start=1):
                if not line.strip():
                    continue
                try:
                    payload = line.strip()
                    if fill:
                        doc = orjson.loads(payload)
                        if isinstance(doc, dict):
                            payload = orjson.dumps(complete_event(doc))
                    futures.append(await publisher.publish_raw(event_type, payload, wait=False))
                    sent += 1
                except InvalidEvent as exc:
                    bad += 1
                    console.print(f"line {number}: [red]not sent[/red]: {exc}")
                except orjson.JSONDecodeError as exc:
                    bad += 1
                    console.print(f"line {number}: [red]not sent[/red]: not valid JSON ({exc})")
            await asyncio.gather(*futures)
        return sent, bad

    sent, bad = run_async(main)
    out.print(f"{sent} sent, {bad} invalid")
    if bad:
        raise SystemExit(1)


@cli.command()
@click.argument("topic")
@click.option("--from-beginning", is_flag=True, help="Start at the oldest record instead of new ones.")
@click.option("--limit", type=int, default=None, help="Stop after N records.")
@click.option("--timeout", type=float, default=None, help="Stop after S seconds without records.")
@click.pass_context
def consume(
    ctx: click.Context, topic: str, from_beginning: bool, limit: int | None, timeout: float | None
) -> None:
    """Print records of TOPIC as JSON Lines (dead letters include their headers)."""
    from streams.kafka import make_consumer
    from streams.runtime import resolve_endpoints

    settings = settings_from(ctx)

    async def main(stop: asyncio.Event) -> int:
        consumer = make_consumer(
            settings,
            resolve_endpoints(settings).bootstrap,
            topic,
            group_id=None,
            auto_offset_reset="earliest" if from_beginning else "latest",
            fetch_max_wait_ms=100,
        )
        await consumer.start()
        count = 0
        try:
            while not stop.is_set() and (limit is None or count < limit):
                batch = await consumer.getmany(timeout_ms=int((timeout or 3600) * 1000))
                if not batch:
                    break
                for records in batch.values():
                    for r in records:
                        line: Any
                        try:
                            line = orjson.loads(r.value) if r.value else None
                        except orjson.JSONDecodeError:
                            line = {"raw": (r.value or b"").decode("utf-8", "replace")}
                        if r.headers:
                            line = {
                                "value": line,
                                "headers": {k: v.decode("utf-8", "replace") for k, v in r.headers},
                            }
                        sys.stdout.write(orjson.dumps(line).decode() + "\n")
                        count += 1
                        if limit is not None and count >= limit:
                            break
                    if limit is not None and count >= limit:
                        break  # a batch can hold several partitions: stop across all of them
                sys.stdout.flush()
        finally:
            await consumer.stop()
        return count

    run_async(main)


@cli.command()
@click.option("--topics", multiple=True, help="Input topics to replay [default: all three].")
@click.option(
    "--from-beginning",
    "from_beginning",
    is_flag=True,
    default=True,
    help="Replay from the oldest record (the default without --since).",
)
@click.option(
    "--since",
    type=click.DateTime(),
    default=None,
    help="Replay only records timestamped at or after this local time.",
)
@click.pass_context
def replay(ctx: click.Context, topics: tuple[str, ...], from_beginning: bool, since: datetime | None) -> None:
    """Reprocess input topics through the pipeline (backfill).

    Safe to run at any time and any number of times: effects are keyed by event id, so
    events already applied change nothing and only missing ones are applied.
    """
    from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

    from streams.replay import replay as run_replay
    from streams.runtime import open_runtime, resolve_endpoints

    settings = settings_from(ctx)
    chosen = list(topics) or list(settings.input_topics.values())
    unknown = [t for t in chosen if t not in settings.input_topics.values()]
    if unknown:
        raise click.UsageError(f"not input topics: {', '.join(unknown)}")

    async def main(stop: asyncio.Event) -> Any:
        runtime = await open_runtime(settings, resolve_endpoints(settings))
        try:
            with Progress(
                TextColumn("replay"),
                BarColumn(),
                TextColumn("{task.completed}/{task.total}"),
                TimeRemainingColumn(),
                console=console,
            ) as progress:
                bar = progress.add_task("replay", total=None)
                return await run_replay(
                    runtime,
                    chosen,
                    since=since,
                    on_progress=lambda done, total: progress.update(bar, completed=done, total=total),
                )
        finally:
            await runtime.close()

    report = run_async(main)
    out.print(
        f"replayed {report.records} records in {report.seconds:.1f}s: {report.processed} applied, "
        f"{report.duplicates} already applied, {report.dead_lettered} dead-lettered"
        + (f"; {report.outside_window} older than the replay window skipped" if report.outside_window else "")
    )


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@click.pass_context
def status(ctx: click.Context, as_json: bool) -> None:
    """Show services, topics, consumer lag, row counts and embedding coverage."""
    from streams.runtime import open_pool, resolve_endpoints
    from streams.status import gather_status

    settings = settings_from(ctx)

    async def main(stop: asyncio.Event) -> Any:
        endpoints = resolve_endpoints(settings)
        pool = await open_pool(settings, endpoints.dsn)
        try:
            label = endpoints.dsn.split("@")[-1]  # never print credentials
            return await gather_status(settings, endpoints.bootstrap, label, pool)
        finally:
            await pool.close()

    report = run_async(main)
    if as_json:
        import dataclasses

        out.print_json(orjson.dumps(dataclasses.asdict(report), default=str).decode())
        return
    out.print(f"broker   {report.bootstrap}\ndatabase {report.database} (pgvector {report.pgvector})")
    table = Table("topic", "partitions", "records", "lag", title="topics")
    for t in report.topics:
        table.add_row(
            t["topic"], str(t["partitions"]), str(t["records"]), "" if t["lag"] is None else str(t["lag"])
        )
    out.print(table)
    rows = Table("table", "rows", title="rows")
    for name, count in report.rows.items():
        rows.add_row(name, str(count))
    out.print(rows)
    cov = Table("table", "model", "reads", "embedded", "missing", "coverage", title="embedding coverage")
    for c in report.coverage:
        cov.add_row(
            c["table"],
            c["model"],
            "active" if c["active"] else "",
            f"{c['embedded']}/{c['total']}",
            str(c["missing"]),
            f"{c['coverage']:.1%}",
        )
    out.print(cov)
    budget = report.budget.get("daily_usd")
    spend = Table(
        "provider", "model", "texts", "tokens", "requests", "est. cost (USD)", title="embedding usage"
    )
    for u in report.usage:
        spend.add_row(
            u["provider"],
            u["model"],
            str(u["texts"]),
            str(u["tokens"]),
            str(u["requests"]),
            f"{u['cost_usd']:.4f}",
        )
    out.print(spend)
    out.print(
        f"spent today (UTC): ${report.budget.get('spent_today_usd') or 0:.4f}"
        + (f" of a ${budget:.2f} daily budget" if budget is not None else ", no daily budget")
    )


def _register_optional_commands() -> None:
    import importlib

    from streams.commands import COMMAND_MODULES

    for name in COMMAND_MODULES:
        for command in importlib.import_module(name).COMMANDS:
            cli.add_command(command)


def main() -> None:
    import warnings

    # pgserver asks platformdirs for a runtime dir it does not need; the warning is noise.
    warnings.filterwarnings("ignore", message=".*XDG_RUNTIME_DIR.*")
    _register_optional_commands()
    try:
        cli(standalone_mode=True)
    except ConfigurationError as exc:
        console.print(f"[red]error:[/red] {exc}")
        raise SystemExit(2) from None
