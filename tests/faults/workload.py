"""A seeded mixed workload and the ground truth it implies.

The generator writes task-created, execution-result and message-ingested events, with results
that arrive before their task, results whose task never comes (they must stay held), records
published twice, SQL-looking and non-ASCII text, and hostile records that must be dead-lettered.
The ground truth is computed from the generator's own documents, never from tasksage code.
"""

from __future__ import annotations

import random
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson

TASKS, RESULTS, MESSAGES = "task-created", "execution-result", "message-ingested"
ARMS = [
    ("generalist", "small"),
    ("generalist", "medium"),
    ("coder", "small"),
    ("coder", "large"),
    ("researcher", "medium"),
]
KINDS = ["code", "docs", "ops", "research", None]
WORDS = [
    "fix",
    "update",
    "refactor",
    "billing",
    "invoice",
    "login",
    "parser",
    "cache",
    "retry",
    "timeout",
    "schema",
    "report",
    "export",
    "import",
    "migrate",
    "index",
    "vector",
    "search",
    "deploy",
    "rollback",
    "alert",
    "metric",
    "dashboard",
    "queue",
    "worker",
    "typo",
    "docs",
    "test",
    "flaky",
    "crash",
    "memory",
    "leak",
    "latency",
    "upgrade",
    "dependency",
    "audit",
    "security",
    "token",
]
# Valid text that must be stored verbatim: parameterised SQL only, any Unicode but NUL.
NASTY = [
    "Robert'); DROP TABLE tasks;--",
    "1' OR '1'='1'; DELETE FROM inbox; --",
    "$1 $2 ::text; SELECT pg_sleep(10);",
    "'; TRUNCATE arm_stats CASCADE; --",
    "emoji \U0001f680 \u00fc \u00f1 \u4e2d\u6587 \u05e2\u05d1\u05e8\u05d9\u05ea \u202eoverride",
    'back\\slash "quotes" %s %d {0} ${x} <script>alert(1)</script>',
    "tab\tnew\nline\r\n\u2028separator",
]


@dataclass(frozen=True, slots=True)
class Planned:
    stream: str
    key: bytes | None
    value: bytes | None
    doc: dict[str, Any] | None = None  # the event, when it is valid
    hostile: str | None = None  # why it must be dead-lettered


def _text(rng: random.Random, long_share: float = 0.02) -> str:
    words = " ".join(rng.choice(WORDS) for _ in range(rng.randint(3, 14)))
    if rng.random() < 0.08:
        words = f"{words} {rng.choice(NASTY)}"
    if rng.random() < long_share:
        words = words + " " + " ".join(rng.choice(WORDS) for _ in range(rng.randint(400, 1200)))
    return words


def _when(rng: random.Random) -> str:
    base = datetime(2026, 1, 1, tzinfo=UTC)
    return (base + timedelta(seconds=rng.randint(0, 86400 * 60))).isoformat()


def hostile_record(rng: random.Random, stream: str, n: int, max_event_bytes: int) -> Planned:
    """One record that can never be processed, chosen among every way input goes wrong."""
    eid = f"hostile-{n}"
    base: dict[str, Any] = {"event_id": eid, "schema_version": 1, "occurred_at": _when(rng)}
    if stream == TASKS:
        base |= {"task_id": f"H{n}", "description": _text(rng, 0)}
    elif stream == RESULTS:
        base |= {"task_id": f"H{n}", "agent": "coder", "model": "small", "success": True}
        base |= {"finished_at": _when(rng)}
    else:
        base |= {"message_id": f"H{n}", "source": "chat", "author": "eve", "content": _text(rng, 0)}
    text_field = {TASKS: "description", RESULTS: "agent", MESSAGES: "content"}[stream]
    required = [k for k in base if k != "schema_version"]
    kind = rng.choice(
        [
            "malformed-json",
            "random-bytes",
            "not-an-object",
            "missing-field",
            "wrong-type",
            "schema-version",
            "oversized",
            "invalid-utf8",
            "nul",
            "tombstone",
            "empty",
            "extra-field",
            "bad-timestamp",
            "out-of-range",
        ]
    )
    key = f"H{n}".encode()
    value: bytes | None
    if kind == "malformed-json":
        whole = orjson.dumps(base)
        value = whole[: rng.randint(1, len(whole) - 1)]
    elif kind == "random-bytes":
        value = rng.randbytes(rng.randint(1, 300))
        if value[:1] in (b"{", b"[", b'"') or value.strip(b" \t\r\n").isdigit():
            value = b"\xff" + value
    elif kind == "not-an-object":
        value = rng.choice([b"[1, 2, 3]", b'"just a string"', b"42", b"null", b"true", b"[]"])
    elif kind == "missing-field":
        del base[rng.choice(required)]
        value = orjson.dumps(base)
    elif kind == "wrong-type":
        name = rng.choice(required)
        wrong = [
            v for v in (123, 4.5, None, ["list"], {"o": 1}, True, "text") if type(v) is not type(base[name])
        ]
        base[name] = rng.choice(wrong)
        value = orjson.dumps(base)
    elif kind == "schema-version":
        base["schema_version"] = rng.choice([0, 2, 99, -1])
        value = orjson.dumps(base)
    elif kind == "oversized":
        base[text_field] = "x" * (max_event_bytes + 10)
        value = orjson.dumps(base)
    elif kind == "invalid-utf8":
        value = orjson.dumps(base).replace(b'"event_id"', b'"event_\xff\xfeid"', 1)
    elif kind == "nul":
        base[text_field] = f"before\u0000after {base[text_field]}"
        value = orjson.dumps(base)
    elif kind == "tombstone":
        value = None
    elif kind == "empty":
        value = b""
    elif kind == "extra-field":
        base["unexpected"] = "field"
        value = orjson.dumps(base)
    elif kind == "bad-timestamp":
        base["occurred_at"] = rng.choice(["yesterday", "2026-13-45T99:00:00Z", "", "0"])
        value = orjson.dumps(base)
    else:  # out-of-range numbers the schema forbids
        if stream == TASKS:
            base["priority"] = rng.choice([-1, 101, 2**62])
        elif stream == RESULTS:
            base["duration_ms"] = rng.choice([-5, 1e13])
        else:
            base["source"] = ""
        value = orjson.dumps(base)
    return Planned(stream, key, value, None, kind)


@dataclass(frozen=True, slots=True)
class WorkloadShape:
    events: int
    hostile_share: float = 0.04
    duplicate_share: float = 0.05
    early_share: float = 0.10  # results published before their task
    orphan_share: float = 0.03  # results whose task never comes
    max_event_bytes: int = 64_000


def generate(seed: int, shape: WorkloadShape) -> list[Planned]:
    """Events in publication order; deterministic for a seed."""
    rng = random.Random(seed)
    n = shape.events
    n_dup = int(n * shape.duplicate_share)
    n_hostile = int(n * shape.hostile_share)
    n_valid = n - n_dup - n_hostile
    n_tasks = max(1, int(n_valid * 0.3))
    n_messages = int(n_valid * 0.2)
    n_results = n_valid - n_tasks - n_messages
    timed: list[tuple[float, Planned]] = []
    task_times: list[tuple[str, float]] = []
    for i in range(n_tasks):
        task_id = f"s{seed}-T{i}"
        doc = {
            "event_id": f"s{seed}-task-{i}",
            "schema_version": 1,
            "occurred_at": _when(rng),
            "task_id": task_id,
            "description": _text(rng),
            "kind": rng.choice(KINDS),
            "priority": rng.randint(0, 100),
        }
        t = rng.random()
        task_times.append((task_id, t))
        timed.append((t, Planned(TASKS, task_id.encode(), orjson.dumps(doc), doc)))
    for i in range(n_results):
        roll = rng.random()
        if roll < shape.orphan_share:
            task_id, t = f"s{seed}-orphan-{i}", rng.random()
        else:
            task_id, t_task = rng.choice(task_times)
            early = roll < shape.orphan_share + shape.early_share
            t = t_task - rng.uniform(0.001, 0.2) if early else t_task + rng.uniform(0.001, 0.3)
        agent, model = rng.choice(ARMS)
        doc = {
            "event_id": f"s{seed}-result-{i}",
            "schema_version": 1,
            "occurred_at": _when(rng),
            "task_id": task_id,
            "agent": agent,
            "model": model,
            "success": rng.random() < 0.7,
            "finished_at": _when(rng),
            "duration_ms": round(rng.uniform(100, 60_000), 3) if rng.random() < 0.9 else None,
            "cost_usd": round(rng.uniform(0.0001, 0.2), 6) if rng.random() < 0.8 else None,
        }
        timed.append((t, Planned(RESULTS, task_id.encode(), orjson.dumps(doc), doc)))
    for i in range(n_messages):
        message_id = f"s{seed}-M{i}"
        doc = {
            "event_id": f"s{seed}-message-{i}",
            "schema_version": 1,
            "occurred_at": _when(rng),
            "message_id": message_id,
            "source": rng.choice(["slack", "email", "github"]),
            "author": rng.choice(["ana", "bo", "chen", "dara"]),
            "content": _text(rng),
        }
        timed.append((rng.random(), Planned(MESSAGES, message_id.encode(), orjson.dumps(doc), doc)))
    for i in range(n_hostile):
        timed.append(
            (
                rng.random(),
                hostile_record(rng, rng.choice([TASKS, RESULTS, MESSAGES]), i, shape.max_event_bytes),
            )
        )
    timed.sort(key=lambda x: x[0])
    ordered = [p for _, p in timed]
    # Upstream retries: the same bytes again, a little or a lot later.
    valid_positions = [i for i, p in enumerate(ordered) if p.doc is not None]
    for _ in range(n_dup):
        source = rng.choice(valid_positions)
        at = min(len(ordered), source + 1 + int(rng.expovariate(1 / 200)))
        ordered.insert(at, ordered[source])
        valid_positions = [i + (1 if i >= at else 0) for i in valid_positions]
    return ordered


@dataclass(slots=True)
class Sums:
    attempts: int = 0
    successes: int = 0
    duration_sum_ms: float = 0.0
    duration_n: int = 0
    cost_sum_usd: float = 0.0
    cost_n: int = 0

    def add(self, doc: dict[str, Any]) -> None:
        self.attempts += 1
        self.successes += int(doc["success"])
        if doc.get("duration_ms") is not None:
            self.duration_sum_ms += doc["duration_ms"]
            self.duration_n += 1
        if doc.get("cost_usd") is not None:
            self.cost_sum_usd += doc["cost_usd"]
            self.cost_n += 1

    def same(self, other: Sums) -> bool:
        return (
            (self.attempts, self.successes, self.duration_n, self.cost_n)
            == (other.attempts, other.successes, other.duration_n, other.cost_n)
            and abs(self.duration_sum_ms - other.duration_sum_ms) <= 1e-6 * max(1.0, self.duration_sum_ms)
            and abs(self.cost_sum_usd - other.cost_sum_usd) <= 1e-9 * max(1.0, self.cost_sum_usd)
        )


@dataclass(slots=True)
class Truth:
    """What the database must hold after every published event was processed exactly once."""

    tasks: dict[str, str | None] = field(default_factory=dict)  # task_id -> kind
    descriptions: dict[str, str] = field(default_factory=dict)
    predictions: set[str] = field(default_factory=set)
    executions: set[str] = field(default_factory=set)
    held: set[str] = field(default_factory=set)
    messages: set[str] = field(default_factory=set)
    task_counts: dict[str, tuple[int, int]] = field(default_factory=dict)
    outcomes: dict[tuple[str, str, str], Sums] = field(default_factory=lambda: defaultdict(Sums))
    arms: dict[tuple[str, str, str], Sums] = field(default_factory=lambda: defaultdict(Sums))
    inbox: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    hostile: int = 0
    valid_events: int = 0


def ground_truth(planned: list[Planned]) -> Truth:
    truth = Truth()
    seen: set[str] = set()
    results: list[dict[str, Any]] = []
    for p in planned:
        if p.doc is None:
            truth.hostile += 1
            truth.inbox[p.stream] += 1  # its `rejected:` key
            continue
        if p.doc["event_id"] in seen:
            continue
        seen.add(p.doc["event_id"])
        truth.valid_events += 1
        truth.inbox[p.stream] += 1
        if p.stream == TASKS:
            truth.tasks[p.doc["task_id"]] = p.doc.get("kind")
            truth.descriptions[p.doc["task_id"]] = p.doc["description"]
            truth.predictions.add(f"{p.doc['task_id']}:{p.doc['event_id']}")
        elif p.stream == RESULTS:
            results.append(p.doc)
        else:
            truth.messages.add(p.doc["message_id"])
    counts: dict[str, list[int]] = {t: [0, 0] for t in truth.tasks}
    for doc in results:
        task_id = doc["task_id"]
        if task_id not in truth.tasks:
            truth.held.add(doc["event_id"])
            continue
        truth.executions.add(doc["event_id"])
        counts[task_id][0] += 1
        counts[task_id][1] += int(doc["success"])
        truth.outcomes[(task_id, doc["agent"], doc["model"])].add(doc)
        truth.arms[("*", doc["agent"], doc["model"])].add(doc)
        kind = truth.tasks[task_id]
        if kind:
            truth.arms[(kind, doc["agent"], doc["model"])].add(doc)
    truth.task_counts = {t: (a, s) for t, (a, s) in counts.items()}
    return truth
