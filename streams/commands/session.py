"""What every command shares: the two consoles (stderr for progress and errors, stdout for
results), settings from the click context, and running a coroutine until Ctrl-C."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import sys
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, TypeVar

import click
from rich.console import Console

from processors.errors import TasksageError
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


def run_async(factory: Callable[[asyncio.Event], Awaitable[T]], *, fast_loop: bool = False) -> T:
    """Run a coroutine; SIGINT/SIGTERM set the stop event for a graceful shutdown. `fast_loop`:
    on uvloop (the API, whose requests are mostly socket work: HTTP in, PostgreSQL round trips)."""

    async def main() -> T:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        return await factory(stop)

    loop_factory: Callable[[], asyncio.AbstractEventLoop] | None = None
    if fast_loop:
        import uvloop

        loop_factory = uvloop.new_event_loop
    try:
        with asyncio.Runner(loop_factory=loop_factory) as runner:
            return runner.run(main())
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


def settings_from(ctx: click.Context, **overrides: Any) -> Settings:
    values = {k: v for k, v in overrides.items() if v is not None}
    values.setdefault("data_dir", ctx.obj["data_dir"])
    try:
        return Settings(**values)
    except Exception as exc:
        raise click.UsageError(f"invalid settings: {exc}") from None
