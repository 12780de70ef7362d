"""Thousands of random and hostile records among valid ones: every hostile one is dead-lettered
with a reason, every valid one is processed, and the worker never restarts."""

from __future__ import annotations

import os
import random
from typing import Any

import orjson
import pytest

from processors.contracts.inputs import DECODERS
from processors.errors import InvalidEvent
from streams.kafka import ensure_topics
from tests.faults.compare import compare, dead_letters, hostile_sources, settle
from tests.faults.conftest import SEEDS, report
from tests.faults.flow import publish_paced
from tests.faults.workload import (
    MESSAGES,
    RESULTS,
    TASKS,
    Planned,
    WorkloadShape,
    generate,
    ground_truth,
    hostile_record,
)
from tests.support.fake_openai import FakeOpenAIServer, _Handler
from tests.support.processes import WorkerProcess, worker_processes

pytestmark = pytest.mark.slow

HOSTILE = int(os.environ.get("TASKSAGE_FAULT_FUZZ", "3000"))
WRONG_DIMENSION_MARK = "WRONGDIM"


class _WrongDimensionHandler(_Handler):
    """Answers requests that contain the mark with vectors one dimension too long, like a
    provider that silently changed its model."""

    def _send_embeddings(self, payload: dict[str, Any], inputs: tuple[str, ...], dimension: int) -> None:
        if any(WRONG_DIMENSION_MARK in text for text in inputs):
            dimension += 1
        super()._send_embeddings(payload, inputs, dimension)


def mutate(rng: random.Random, p: Planned, n: int) -> Planned:
    """A valid record broken in a way that can never be processed."""
    assert p.value is not None and p.doc is not None
    raw = p.value
    how = rng.choice(["truncate", "bad-byte", "nul", "drop-field", "retype", "extra", "nest"])
    doc = dict(p.doc, event_id=f"fuzz-{n}")
    required = [k for k in doc if k not in ("schema_version", "kind", "priority", "duration_ms", "cost_usd")]
    if how == "truncate":
        value = raw[: rng.randint(1, len(raw) - 1)]
    elif how == "bad-byte":
        at = rng.randint(0, len(raw))
        value = raw[:at] + rng.choice([b"\xff", b"\xc3\x28", b"\xed\xa0\x80", b"\x80"]) + raw[at:]
    elif how == "nul":
        field = next(k for k in ("description", "content", "agent") if k in doc)
        doc[field] = doc[field] + "\u0000"
        value = orjson.dumps(doc)
    elif how == "drop-field":
        del doc[rng.choice(required)]
        value = orjson.dumps(doc)
    elif how == "retype":
        name = rng.choice(required)
        doc[name] = rng.choice(
            [v for v in (7, -1.5, None, [1], {"x": {}}, False) if type(v) is not type(doc[name])]
        )
        value = orjson.dumps(doc)
    elif how == "extra":
        doc[f"x{rng.randint(0, 999)}"] = rng.choice([1, "y", None, [], {}])
        value = orjson.dumps(doc)
    else:  # nesting deeper than any parser allows
        depth = rng.randint(2000, 5000)
        value = b"[" * depth + b"]" * depth
    return Planned(p.stream, p.key, value, None, f"mutated-{how}")


def deep_value(rng: random.Random, depth: int) -> bytes:
    """JSON bytes nesting `depth` objects and arrays (built as bytes: no encoder goes this deep)."""
    opening: list[bytes] = []
    closing: list[bytes] = []
    for _ in range(depth):
        if rng.random() < 0.5:
            opening.append(b'{"k":')
            closing.append(b"}")
        else:
            opening.append(b"[")
            closing.append(b"]")
    leaf = orjson.dumps(rng.choice([1, "x", None, [], {}]))
    return b"".join(opening) + leaf + b"".join(reversed(closing))


def wide_value(rng: random.Random) -> bytes:
    """A flat or shallow but wide JSON value: many keys or many items."""
    n = rng.randint(50, 4000)
    shape = rng.choice(["object", "array", "strings", "nested"])
    if shape == "object":
        return orjson.dumps({f"k{i}": i for i in range(n)})
    if shape == "array":
        return orjson.dumps(list(range(n)))
    if shape == "strings":
        return orjson.dumps([f"s{i}" for i in range(n)])
    return orjson.dumps([{"a": [{"b": [i]}]} for i in range(n // 10)])


def deep_or_wide(rng: random.Random, p: Planned, n: int, max_event_bytes: int) -> Planned:
    """A valid event with one field (any of them, free-form objects included, or a new one)
    replaced by a deep or wide value. Some stay valid (a context a few levels deep): those must
    be processed, the rest dead-lettered; the codec, which the worker uses, tells which."""
    assert p.doc is not None
    doc = dict(p.doc, event_id=f"deep-{n}")
    for id_field in ("task_id", "message_id"):
        if id_field in doc and p.stream != RESULTS:
            doc[id_field] = f"deep-{id_field}-{n}"
    free_form = {TASKS: ["context", "requirements", "dependencies"], RESULTS: [], MESSAGES: []}[p.stream]
    field = rng.choice([*doc, *free_form, *free_form, f"x{rng.randint(0, 99)}"])
    if field == "schema_version":
        field = "context" if p.stream == TASKS else field
    deep = rng.random() < 0.6
    value = (
        deep_value(rng, rng.choice([rng.randint(1, 70), rng.randint(60, 5000)])) if deep else wide_value(rng)
    )
    if field == "context" and not value.startswith(b"{"):
        value = b'{"v":' + value + b"}"
    doc[field] = "@@deep-or-wide@@"
    raw = orjson.dumps(doc).replace(orjson.dumps(doc[field]), value, 1)
    label = f"{'deep' if deep else 'wide'}-{field}"
    try:
        DECODERS[p.stream](raw, max_event_bytes)
    except InvalidEvent:
        return Planned(p.stream, p.key, raw, None, label)
    return Planned(p.stream, p.key, raw, doc, None)


def random_json(rng: random.Random, depth: int = 0) -> Any:
    kind = rng.choice(
        ["int", "float", "str", "bool", "null", "list", "dict"] if depth < 4 else ["int", "str"]
    )
    if kind == "int":
        return rng.randint(-(2**63), 2**63 - 1)
    if kind == "float":
        return rng.uniform(-1e9, 1e9)
    if kind == "str":
        return "".join(chr(rng.randint(1, 0x2FFF)) for _ in range(rng.randint(0, 30)))
    if kind == "bool":
        return rng.random() < 0.5
    if kind == "null":
        return None
    if kind == "list":
        return [random_json(rng, depth + 1) for _ in range(rng.randint(0, 5))]
    return {f"k{i}": random_json(rng, depth + 1) for i in range(rng.randint(0, 5))}


def fuzz_workload(seed: int, hostile: int, max_event_bytes: int) -> list[Planned]:
    rng = random.Random(seed)
    valid = generate(seed, WorkloadShape(events=max(300, hostile // 3), hostile_share=0, duplicate_share=0))
    bad: list[Planned] = []
    for n in range(hostile):
        roll = rng.random()
        stream = rng.choice([TASKS, RESULTS, MESSAGES])
        if roll < 0.3:
            bad.append(hostile_record(rng, stream, n, max_event_bytes))
        elif roll < 0.6:
            bad.append(mutate(rng, rng.choice(valid), n))
        elif roll < 0.85:
            bad.append(deep_or_wide(rng, rng.choice(valid), n, max_event_bytes))
        else:
            bad.append(Planned(stream, rng.randbytes(8), orjson.dumps(random_json(rng)), None, "random-json"))
    # Valid events whose text the embedding provider answers with the wrong dimension.
    for n, p in enumerate([p for p in valid if p.stream in (TASKS, MESSAGES)][:6]):
        assert p.doc is not None
        field = "description" if p.stream == TASKS else "content"
        doc = dict(p.doc, event_id=f"wrongdim-{n}", **{field: f"{WRONG_DIMENSION_MARK} {p.doc[field]}"})
        if p.stream == TASKS:
            doc["task_id"] = f"wrongdim-task-{n}"
        else:
            doc["message_id"] = f"wrongdim-message-{n}"
        bad.append(Planned(p.stream, p.key, orjson.dumps(doc), None, "wrong-dimension"))
    mixed = valid + bad
    rng.shuffle(mixed)
    return mixed


async def test_hostile_records_are_dead_lettered_and_valid_ones_processed(fault_settings, tmp_path) -> None:
    seed = SEEDS[0] + 300
    fake = FakeOpenAIServer(default_dimension=1536)
    fake._server.RequestHandlerClass = _WrongDimensionHandler
    fake.start()
    settings = fault_settings(
        embedder="openai",
        openai_base_url=fake.base_url,
        embedding_model="text-embedding-3-small",
        embedding_dimension=128,
        embed_max_retries=0,
    )
    planned = fuzz_workload(seed, HOSTILE, settings.max_event_bytes)
    truth = ground_truth(planned)
    worker = WorkerProcess(settings, tmp_path / "logs")
    try:
        assert settings.kafka_bootstrap_servers
        await ensure_topics(settings, settings.kafka_bootstrap_servers)
        with worker_processes(worker):
            worker.start()
            placed = await publish_paced(settings, planned, duration_s=5, chunk=500)
            observed, drained_s = await settle(settings.database_url.get_secret_value(), truth, timeout_s=240)
            letters, copies = await dead_letters(settings)
            still_running = worker.alive and worker.starts == 1
    finally:
        fake.stop()
    hostile = hostile_sources(planned, placed)
    verdict = compare(truth, observed, letters, hostile)
    by_class: dict[str, int] = {}
    for letter in letters.values():
        by_class[letter.error_class] = by_class.get(letter.error_class, 0) + 1
    report(
        "fuzz",
        seed=seed,
        faults=f"{len(hostile)} hostile records",
        published=len(planned),
        valid=truth.valid_events,
        lost=verdict.lost,
        doubled=verdict.doubled,
        dead_lettered=len(letters),
        dead_letters_by_class=by_class,
        drain_after_publish_s=round(drained_s, 1),
        repeated_outputs=copies,
    )
    assert verdict.problems == [], "\n".join(verdict.problems)
    assert (verdict.lost, verdict.doubled) == (0, 0)
    assert still_running, "the worker restarted or died"
    wrong = {s for s, kind in hostile.items() if kind == "wrong-dimension"}
    assert {letters[s].error_class for s in wrong} == {"WrongDimension"}
