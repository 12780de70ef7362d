"""`tasksage publish` and `consume`: JSON Lines in and out of topics."""

from __future__ import annotations

import asyncio
import sys
from typing import Any

import click
import orjson

from processors.contracts.inputs import STREAM_NAMES
from processors.errors import InvalidEvent
from streams.commands.session import console, out, run_async, settings_from


@click.command()
@click.argument("event_type", type=click.Choice(STREAM_NAMES))
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


@click.command()
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


COMMANDS = [publish, consume]
