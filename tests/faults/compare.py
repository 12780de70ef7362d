"""Read what tasksage left in PostgreSQL and on the output topics; compare it with the truth."""

from __future__ import annotations

import asyncio
import time
from collections import defaultdict
from dataclasses import dataclass, field

import asyncpg
import orjson

from streams.settings import Settings
from tests.faults.workload import Planned, Sums, Truth
from tests.support.processes import Placed, read_all


@dataclass(slots=True)
class Observed:
    tasks: dict[str, tuple[int, int, str | None]] = field(default_factory=dict)  # attempts, successes, kind
    descriptions: dict[str, str] = field(default_factory=dict)
    predictions: set[str] = field(default_factory=set)
    executions: set[str] = field(default_factory=set)
    held: set[str] = field(default_factory=set)
    messages: set[str] = field(default_factory=set)
    outcomes: dict[tuple[str, str, str], Sums] = field(default_factory=dict)
    arms: dict[tuple[str, str, str], Sums] = field(default_factory=dict)
    inbox: dict[str, int] = field(default_factory=dict)
    outbox: int = 0


def _sums(r: asyncpg.Record) -> Sums:
    return Sums(
        r["attempts"], r["successes"], r["duration_sum_ms"], r["duration_n"], r["cost_sum_usd"], r["cost_n"]
    )


async def observe(dsn: str) -> Observed:
    conn = await asyncpg.connect(dsn)
    try:
        # One snapshot for every table: otherwise a batch committing between two queries shows
        # its inbox rows but not its tasks, which looks exactly like a lost event.
        async with conn.transaction(isolation="repeatable_read", readonly=True):
            return await _observe(conn)
    finally:
        await conn.close()


async def _observe(conn: asyncpg.Connection) -> Observed:
    o = Observed()
    if not await conn.fetchval("SELECT to_regclass('public.inbox') IS NOT NULL"):
        return o  # no worker has migrated the database yet
    for r in await conn.fetch("SELECT task_id, attempts, successes, kind, description FROM tasks"):
        o.tasks[r["task_id"]] = (r["attempts"], r["successes"], r["kind"])
        o.descriptions[r["task_id"]] = r["description"]
    o.predictions = {r[0] for r in await conn.fetch("SELECT schedule_id FROM predictions")}
    o.executions = {r[0] for r in await conn.fetch("SELECT event_id FROM executions")}
    o.held = {r[0] for r in await conn.fetch("SELECT event_id FROM held_results")}
    o.messages = {r[0] for r in await conn.fetch("SELECT message_id FROM messages")}
    o.outcomes = {
        (r["task_id"], r["agent"], r["model"]): _sums(r)
        for r in await conn.fetch("SELECT * FROM task_arm_outcomes")
    }
    o.arms = {
        (r["scope"], r["agent"], r["model"]): _sums(r) for r in await conn.fetch("SELECT * FROM arm_stats")
    }
    o.inbox = {r[0]: r[1] for r in await conn.fetch("SELECT stream, count(*) FROM inbox GROUP BY stream")}
    o.outbox = await conn.fetchval("SELECT count(*) FROM outbox")
    return o


def where_missing(truth: Truth, o: Observed, planned: list[Planned], placed: list[Placed]) -> str:
    """Per partition, the offset range of the events whose effects are missing (a failure report)."""
    gone_events = {f"{t}" for t in set(truth.tasks) - set(o.tasks)}
    ranges: dict[tuple[str, int], list[int]] = defaultdict(list)
    for p, pl in zip(planned, placed, strict=True):
        if p.doc is None:
            continue
        missing = (
            (p.stream == "task-created" and p.doc["task_id"] in gone_events)
            or (p.stream == "execution-result" and p.doc["event_id"] in truth.executions - o.executions)
            or (p.stream == "message-ingested" and p.doc["message_id"] in truth.messages - o.messages)
        )
        if missing:
            ranges[(pl.topic, pl.partition)].append(pl.offset)
    return "\n".join(
        f"missing on {t}[{part}]: {len(offs)} records, offsets {min(offs)}..{max(offs)}"
        for (t, part), offs in sorted(ranges.items())
    )


async def settle(
    dsn: str, truth: Truth, timeout_s: float, *, outbox_empty: bool = True
) -> tuple[Observed, float]:
    """Wait until the inbox holds every published event (and the outbox is drained)."""
    started = time.monotonic()
    while True:
        o = await observe(dsn)
        done = all(o.inbox.get(s, 0) >= n for s, n in truth.inbox.items())
        if done and (o.outbox == 0 or not outbox_empty):
            return o, time.monotonic() - started
        if time.monotonic() - started > timeout_s:
            return o, time.monotonic() - started
        await asyncio.sleep(0.25)


@dataclass(frozen=True, slots=True)
class DeadLetter:
    source: tuple[str, int, int]
    error_class: str
    message: str
    value: bytes | None


async def dead_letters(settings: Settings) -> tuple[dict[tuple[str, int, int], DeadLetter], int]:
    """Dead letters by source (topic, partition, offset), and how many extra identical copies."""
    topics = [settings.dead_letter_topic(t) for t in settings.input_topics.values()]
    found: dict[tuple[str, int, int], DeadLetter] = {}
    copies = 0
    for r in await read_all(settings, topics):
        h = r.headers
        source = (
            h["__connect.errors.topic"].decode(),
            int(h["__connect.errors.partition"]),
            int(h["__connect.errors.offset"]),
        )
        letter = DeadLetter(
            source,
            h["__connect.errors.exception.class.name"].decode(),
            h["__connect.errors.exception.message"].decode(errors="replace"),
            r.value,
        )
        if source in found:
            assert found[source] == letter, f"two different dead letters for {source}"
            copies += 1
        found[source] = letter
    return found, copies


async def schedules(settings: Settings) -> tuple[set[str], int]:
    """Schedule ids on the task-schedules topic, and how many identical repeats."""
    seen: dict[str, bytes] = {}
    repeats = 0
    for r in await read_all(settings, [settings.topic_task_schedules]):
        assert r.value is not None
        schedule_id = orjson.loads(r.value)["schedule_id"]
        if schedule_id in seen:
            assert seen[schedule_id] == r.value, f"schedule {schedule_id} published with different content"
            repeats += 1
        seen[schedule_id] = r.value
    return set(seen), repeats


def hostile_sources(planned: list[Planned], placed: list[Placed]) -> dict[tuple[str, int, int], str]:
    return {
        (pl.topic, pl.partition, pl.offset): p.hostile
        for p, pl in zip(planned, placed, strict=True)
        if p.hostile
    }


@dataclass(slots=True)
class Verdict:
    lost: int = 0
    doubled: int = 0
    problems: list[str] = field(default_factory=list)

    def problem(self, text: str, detail: bool = False) -> None:
        """Summaries are all kept; per-row details only the first 20."""
        if not detail or sum(1 for p in self.problems if p.startswith("  ")) < 20:
            self.problems.append(f"  {text}" if detail else text)


def compare(
    truth: Truth,
    o: Observed,
    letters: dict[tuple[str, int, int], DeadLetter] | None = None,
    hostile: dict[tuple[str, int, int], str] | None = None,
) -> Verdict:
    v = Verdict()

    def missing(name: str, expected: set[str], actual: set[str]) -> None:
        gone, extra = expected - actual, actual - expected
        v.lost += len(gone)
        if gone:
            v.problem(f"{name}: {len(gone)} missing, e.g. {sorted(gone)[:3]}")
        if extra:
            v.problem(f"{name}: {len(extra)} unexpected, e.g. {sorted(extra)[:3]}")

    missing("tasks", set(truth.tasks), set(o.tasks))
    missing("predictions", truth.predictions, o.predictions)
    missing("executions", truth.executions, o.executions)
    missing("held results", truth.held, o.held)
    missing("messages", truth.messages, o.messages)
    for task_id, (attempts, successes) in truth.task_counts.items():
        got = o.tasks.get(task_id)
        if got is not None and got[:2] != (attempts, successes):
            v.doubled += max(0, got[0] - attempts)
            v.problem(f"task {task_id}: attempts/successes {got[:2]}, expected {(attempts, successes)}", True)
        if got is not None and got[2] != truth.tasks[task_id]:
            v.problem(f"task {task_id}: kind {got[2]!r}, expected {truth.tasks[task_id]!r}", True)
    for task_id, text in truth.descriptions.items():
        if task_id in o.descriptions and o.descriptions[task_id] != text:
            v.problem(f"task {task_id}: description not stored verbatim", True)
    for name, expected, actual in (
        ("task_arm_outcomes", truth.outcomes, o.outcomes),
        ("arm_stats", truth.arms, o.arms),
    ):
        for key in set(expected) | set(actual):
            want, got = expected.get(key, Sums()), actual.get(key, Sums())
            if not want.same(got):
                v.problem(f"{name} {key}: {got}, expected {want}", True)
    # Counted twice: each result applied more than once shows up once, in its task_arm_outcomes row.
    v.doubled = sum(
        max(0, o.outcomes[k].attempts - truth.outcomes.get(k, Sums()).attempts) for k in o.outcomes
    )
    for stream, n in truth.inbox.items():
        if o.inbox.get(stream, 0) != n:
            v.problem(f"inbox {stream}: {o.inbox.get(stream, 0)} rows, expected {n}")
    if letters is not None and hostile is not None:
        gone = set(hostile) - set(letters)
        v.lost += len(gone)
        if gone:
            v.problem(
                f"dead letters: {len(gone)} hostile records missing, e.g. {[(s, hostile[s]) for s in sorted(gone)[:3]]}"
            )
        extra = set(letters) - set(hostile)
        if extra:
            v.problem(
                f"dead letters: {len(extra)} valid records dead-lettered, e.g. {[letters[s] for s in sorted(extra)[:2]]}"
            )
        for source, letter in letters.items():
            if not letter.error_class or not letter.message:
                v.problem(f"dead letter {source} has no reason")
    return v


def counts_by(planned: list[Planned]) -> dict[str, int]:
    out: dict[str, int] = defaultdict(int)
    for p in planned:
        out["hostile" if p.hostile else p.stream] += 1
    return dict(out)
