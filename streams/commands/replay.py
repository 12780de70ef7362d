"""`tasksage replay`: reprocess input topics through the pipeline."""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Any

import click

from streams.commands.session import console, out, run_async, settings_from


@click.command()
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

    from streams.runtime import open_runtime, resolve_endpoints
    from streams.worker.replay import replay as run_replay

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
        + (f"; the learned layer learned {report.learned} queued outcomes" if report.learned else "")
    )


COMMANDS = [replay]
