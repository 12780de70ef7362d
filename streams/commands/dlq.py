"""`tasksage dlq`: look at dead letters and send fixed ones back to their source topic.

Dead letters carry Kafka Connect's headers (`__connect.errors.topic`, `.partition`, `.offset`,
`.exception.class.name`, `.exception.message`). The usual repair loop:

    tasksage dlq list --json > bad.jsonl        # one dead letter per line, value parsed when JSON
    $EDITOR bad.jsonl                            # fix the values (or keep only lines to resend)
    tasksage dlq replay --from-file bad.jsonl    # validated, then sent to each record's source topic

`tasksage dlq replay` without a file re-sends dead letters unchanged (selected by error class or
offset), for failures whose cause was outside the record: a size limit since raised, a task
that has arrived since its result expired, a worker bug since fixed.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import click
import orjson
from aiokafka import ConsumerRecord

from processors.contracts.inputs import DECODERS
from processors.errors import InvalidEvent
from streams.kafka import ensure_topics, make_consumer, start_producer
from streams.settings import Settings

HEADER = "__connect.errors."
REPLAYED_FROM = "tasksage.replayed_from"
TRUNCATED = "tasksage.truncated_from_bytes"  # set on dead letters too big to send whole


@dataclass(frozen=True, slots=True)
class DeadLetter:
    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: dict[str, bytes]

    def header(self, name: str) -> str:
        return self.headers.get(HEADER + name, b"").decode("utf-8", "replace")

    @property
    def source_topic(self) -> str:
        return self.header("topic")

    @property
    def error_class(self) -> str:
        return self.header("exception.class.name")

    @property
    def where(self) -> str:
        return f"{self.topic}/{self.partition}/{self.offset}"

    def document(self) -> dict[str, Any]:
        """A JSON-ready line: edit `value` and feed the line back to `dlq replay --from-file`."""
        value: Any = None
        if self.value is not None:
            try:
                value = orjson.loads(self.value)
            except orjson.JSONDecodeError:
                value = {"raw": self.value.decode("utf-8", "replace")}
        return {
            "dlq": {"topic": self.topic, "partition": self.partition, "offset": self.offset},
            "source": {
                "topic": self.source_topic,
                "partition": _int(self.header("partition")),
                "offset": _int(self.header("offset")),
            },
            "error": {"class": self.error_class, "message": self.header("exception.message")},
            "event_id": self.headers.get("tasksage.event_id", b"").decode("utf-8", "replace") or None,
            "key": None if self.key is None else self.key.decode("utf-8", "replace"),
            "value": value,
        }


def _int(text: str) -> int | None:
    return int(text) if text.lstrip("-").isdigit() else None


def dead_letter_topics(settings: Settings, chosen: Sequence[str] = ()) -> list[str]:
    """The dead-letter topics to read: the given ones (input topic names are mapped), or all."""
    if not chosen:
        return [settings.dead_letter_topic(t) for t in settings.input_topics.values()]
    inputs = set(settings.input_topics.values())
    return [settings.dead_letter_topic(t) if t in inputs else t for t in chosen]


async def read_dead_letters(settings: Settings, bootstrap: str, topics: Sequence[str]) -> list[DeadLetter]:
    """Every record on `topics`, from the beginning to the end as it is now."""
    await ensure_topics(settings, bootstrap, list(topics))
    consumer = make_consumer(settings, bootstrap, *topics, group_id=None, fetch_max_wait_ms=50)
    await consumer.start()
    out: list[DeadLetter] = []
    try:
        idle_polls = 0
        while idle_polls < 5:  # end offsets can be one batch short on Tansu: stop on quiet
            batch = await consumer.getmany(timeout_ms=200)
            idle_polls = 0 if batch else idle_polls + 1
            for records in batch.values():
                out.extend(_dead_letter(r) for r in records)
    finally:
        await consumer.stop()
    return sorted(out, key=lambda d: (d.topic, d.partition, d.offset))


def _dead_letter(r: ConsumerRecord[bytes, bytes]) -> DeadLetter:
    return DeadLetter(r.topic, r.partition, r.offset, r.key, r.value, dict(r.headers or ()))


def select(
    letters: Iterable[DeadLetter], error_classes: Sequence[str], offsets: Sequence[str]
) -> list[DeadLetter]:
    """Filter by error class and by `topic/partition/offset` (or `partition/offset`) of the DLQ."""
    picked = []
    for d in letters:
        if error_classes and d.error_class not in error_classes:
            continue
        if offsets and d.where not in offsets and f"{d.partition}/{d.offset}" not in offsets:
            continue
        picked.append(d)
    return picked


@dataclass(frozen=True, slots=True)
class Resend:
    topic: str
    key: bytes | None
    value: bytes
    replayed_from: str


def resend_from_letters(letters: Iterable[DeadLetter]) -> tuple[list[Resend], list[str]]:
    out, skipped = [], []
    for d in letters:
        if not d.source_topic or d.value is None:
            skipped.append(f"{d.where}: no source topic or no value (a tombstone), nothing to send")
        elif TRUNCATED in d.headers:
            skipped.append(f"{d.where}: the dead letter holds only the start of the record")
        else:
            out.append(Resend(d.source_topic, d.key, d.value, d.where))
    return out, skipped


def resend_from_lines(settings: Settings, lines: Iterable[str]) -> tuple[list[Resend], list[str]]:
    """Fixed records from `dlq list --json` lines; (valid ones, reasons for the others)."""
    streams = {topic: name for name, topic in settings.input_topics.items()}
    out: list[Resend] = []
    problems: list[str] = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            doc = orjson.loads(line)
            topic = doc["source"]["topic"]
            value = doc["value"]
            payload = value.encode() if isinstance(value, str) else orjson.dumps(value)
            if topic not in streams:
                raise InvalidEvent(f"{topic!r} is not an input topic")
            DECODERS[streams[topic]](payload, settings.max_event_bytes)
        except (orjson.JSONDecodeError, KeyError, TypeError, InvalidEvent) as exc:
            problems.append(f"line {number}: {type(exc).__name__}: {exc}")
            continue
        key = doc.get("key")
        where = doc.get("dlq") or {}
        out.append(
            Resend(
                topic,
                None if key is None else str(key).encode(),
                payload,
                f"{where.get('topic')}/{where.get('partition')}/{where.get('offset')}",
            )
        )
    return out, problems


async def send(settings: Settings, bootstrap: str, records: Sequence[Resend]) -> int:
    producer = await start_producer(settings, bootstrap)
    try:
        futures = [
            await producer.send(
                r.topic, r.value, key=r.key, headers=[(REPLAYED_FROM, r.replayed_from.encode())]
            )
            for r in records
        ]
        for f in futures:
            await f
    finally:
        await producer.stop()
    return len(records)


@click.group()
def dlq() -> None:
    """Inspect dead letters and send fixed records back to their source topic."""


@dlq.command("list")
@click.option("--topic", "topics", multiple=True, help="Dead-letter (or input) topic [default: all].")
@click.option("--error-class", "error_classes", multiple=True, help="Only this error class.")
@click.option("--json", "as_json", is_flag=True, help="One JSON document per line (editable).")
@click.pass_context
def list_command(
    ctx: click.Context, topics: tuple[str, ...], error_classes: tuple[str, ...], as_json: bool
) -> None:
    """Show dead letters with their source and reason."""
    from rich.table import Table

    from streams.commands.session import out, run_async, settings_from
    from streams.runtime import resolve_endpoints

    settings = settings_from(ctx)

    async def main(stop: Any) -> list[DeadLetter]:
        bootstrap = resolve_endpoints(settings).bootstrap
        return await read_dead_letters(settings, bootstrap, dead_letter_topics(settings, topics))

    letters = select(run_async(main), error_classes, ())
    if as_json:
        for d in letters:
            sys.stdout.write(orjson.dumps(d.document()).decode() + "\n")
        return
    table = Table(
        "dead letter", "source", "error", "reason", "event id", title=f"{len(letters)} dead letters"
    )
    for d in letters:
        doc = d.document()
        src = doc["source"]
        table.add_row(
            d.where,
            f"{src['topic']}/{src['partition']}/{src['offset']}",
            d.error_class,
            doc["error"]["message"][:120],
            doc["event_id"] or "",
        )
    out.print(table)


@dlq.command("replay")
@click.option("--topic", "topics", multiple=True, help="Dead-letter (or input) topic [default: all].")
@click.option("--error-class", "error_classes", multiple=True, help="Only dead letters of this class.")
@click.option("--offset", "offsets", multiple=True, help="Only this dead letter: TOPIC/PARTITION/OFFSET.")
@click.option(
    "--from-file",
    type=click.File("r"),
    default=None,
    help="Send fixed records: lines of `dlq list --json` with edited values ('-' for stdin).",
)
@click.option("--dry-run", is_flag=True, help="Show what would be sent, send nothing.")
@click.pass_context
def replay_command(
    ctx: click.Context,
    topics: tuple[str, ...],
    error_classes: tuple[str, ...],
    offsets: tuple[str, ...],
    from_file: Any,
    dry_run: bool,
) -> None:
    """Send dead letters (fixed from a file, or unchanged) back to their source topic.

    Fixed records are validated against their schema first; invalid lines are reported and not
    sent. Effects stay exactly-once: a record whose event was applied meanwhile changes nothing.
    """
    from streams.commands.session import console, out, run_async, settings_from
    from streams.runtime import resolve_endpoints

    settings = settings_from(ctx)

    async def main(stop: Any) -> tuple[int, list[str]]:
        bootstrap = resolve_endpoints(settings).bootstrap
        if from_file is not None:
            records, problems = resend_from_lines(settings, from_file)
        else:
            letters = await read_dead_letters(settings, bootstrap, dead_letter_topics(settings, topics))
            records, problems = resend_from_letters(select(letters, error_classes, offsets))
        if dry_run:
            for r in records:
                out.print(f"would send {r.replayed_from} -> {r.topic} ({len(r.value)} bytes)")
            return 0, problems
        return await send(settings, bootstrap, records), problems

    sent, problems = run_async(main)
    for p in problems:
        console.print(f"[red]not sent[/red]: {p}")
    out.print(f"{sent} records sent back to their source topics, {len(problems)} invalid")
    if problems:
        raise SystemExit(1)


COMMANDS = [dlq]
