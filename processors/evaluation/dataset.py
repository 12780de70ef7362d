"""Evaluation datasets: JSON Lines of tasks in time order, each with the outcome of every (agent,
model) tried on it. Schema: processors/contracts/schemas/evaluation-dataset.json.

    {"dataset": {"name": ..., "arms": [...], "tiers": [...], "attribution": ...}}   optional header
    {"task": {task-created fields}, "outcomes": [{"agent", "model", "success", "duration_ms"?, "cost_usd"?}]}

Parsing is pure (lines in, values out); `load_dataset` / `write_dataset` are the file adapters.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

import fastjsonschema
import msgspec
import orjson

from processors.contracts import TaskCreated
from processors.contracts.codec import decode_task_created
from processors.errors import InvalidEvent, TasksageError
from processors.scheduling.tiers import ANY_KIND
from processors.scheduling.types import Arm, TierOption

EPOCH = datetime(2026, 1, 1, tzinfo=UTC)  # replayed task times start here, one second apart
SCHEMA_FILE = "schemas/evaluation-dataset.json"


class DatasetError(TasksageError):
    """The dataset file is malformed; the message names the line."""


@dataclass(frozen=True, slots=True)
class ArmSpec:
    arm: Arm
    cost_usd: float | None = None  # list price per call, used when an outcome has no cost_usd
    duration_ms: float | None = None
    label: str | None = None

    @property
    def name(self) -> str:
        return self.label or arm_name(self.arm)


@dataclass(frozen=True, slots=True)
class Outcome:
    arm: Arm
    success: bool
    duration_ms: float | None = None
    cost_usd: float | None = None


@dataclass(frozen=True, slots=True)
class DatasetTask:
    task: TaskCreated
    outcomes: tuple[Outcome, ...]
    truth: Mapping[Arm, float] = field(default_factory=dict)  # synthetic ground truth, never replayed

    def outcome(self, arm: Arm) -> Outcome | None:
        return next((o for o in self.outcomes if o.arm == arm), None)


@dataclass(frozen=True, slots=True)
class DatasetHeader:
    name: str
    description: str = ""
    source: str = ""
    attribution: str = ""
    arms: tuple[ArmSpec, ...] = ()
    tiers: tuple[TierOption, ...] = ()
    notes: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Dataset:
    header: DatasetHeader
    tasks: tuple[DatasetTask, ...]

    @property
    def arms(self) -> tuple[Arm, ...]:
        """Every arm in the header or in any outcome, sorted."""
        seen = {a.arm for a in self.header.arms} | {o.arm for t in self.tasks for o in t.outcomes}
        return tuple(sorted(seen))

    @property
    def has_truth(self) -> bool:
        """Every task carries its true success probabilities (simulated data)."""
        return all(item.truth for item in self.tasks)

    def arm_spec(self, arm: Arm) -> ArmSpec:
        return next((a for a in self.header.arms if a.arm == arm), ArmSpec(arm))

    def head(self, limit: int | None) -> Dataset:
        return self if limit is None else Dataset(self.header, self.tasks[: max(limit, 0)])


def arm_name(arm: Arm) -> str:
    return f"{arm.agent}/{arm.model}"


def parse_arm_name(text: str) -> Arm:
    agent, sep, model = text.partition("/")
    if not sep or not agent or not model:
        raise DatasetError(f"arm name {text!r} must look like 'agent/model'")
    return Arm(agent, model)


@cache
def _validator() -> Any:
    text = resources.files("processors.contracts").joinpath(SCHEMA_FILE).read_text("utf-8")
    return fastjsonschema.compile(json.loads(text))


def _header(doc: Mapping[str, Any]) -> DatasetHeader:
    d = doc["dataset"]
    tiers: list[TierOption] = []
    position: dict[str, int] = {}
    for row in d.get("tiers", []):
        position[row["kind"]] = position.get(row["kind"], 0) + 1
        tiers.append(
            TierOption(
                kind=row["kind"],
                tier=position[row["kind"]],
                arm=Arm(row["agent"], row["model"]),
                cost_per_call_usd=row.get("cost_per_call_usd"),
                expected_duration_ms=row.get("expected_duration_ms"),
                prior_success=row.get("prior_success"),
            )
        )
    return DatasetHeader(
        name=d["name"],
        description=d.get("description", ""),
        source=d.get("source", ""),
        attribution=d.get("attribution", ""),
        arms=tuple(
            ArmSpec(Arm(a["agent"], a["model"]), a.get("cost_usd"), a.get("duration_ms"), a.get("label"))
            for a in d.get("arms", [])
        ),
        tiers=tuple(tiers),
        notes=tuple(d.get("notes", [])),
    )


def _task(doc: Mapping[str, Any], index: int, number: int) -> DatasetTask:
    fields = dict(doc["task"])
    fields.setdefault("event_id", f"eval-task:{fields['task_id']}")
    fields.setdefault("schema_version", 1)
    fields.setdefault("occurred_at", (EPOCH + timedelta(seconds=index)).isoformat())
    try:
        task = decode_task_created(orjson.dumps(fields))
    except InvalidEvent as exc:
        raise DatasetError(f"line {number}: task is not a valid task-created event: {exc}") from None
    outcomes = tuple(
        Outcome(Arm(o["agent"], o["model"]), o["success"], o.get("duration_ms"), o.get("cost_usd"))
        for o in doc["outcomes"]
    )
    if len({o.arm for o in outcomes}) != len(outcomes):
        raise DatasetError(f"line {number}: an (agent, model) appears twice in outcomes")
    truth = {parse_arm_name(k): float(v) for k, v in doc.get("truth", {}).items()}
    return DatasetTask(task, outcomes, truth)


def parse_dataset(lines: Iterable[str | bytes], default_name: str = "dataset") -> Dataset:
    """Validate and parse dataset lines (blank lines are skipped)."""
    header: DatasetHeader | None = None
    tasks: list[DatasetTask] = []
    ids: set[str] = set()
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            doc = orjson.loads(line)
            _validator()(doc)
        except orjson.JSONDecodeError as exc:
            raise DatasetError(f"line {number}: not JSON: {exc}") from None
        except fastjsonschema.JsonSchemaValueException as exc:
            raise DatasetError(
                f"line {number}: does not match evaluation-dataset.json: {exc.message}"
            ) from None
        if "dataset" in doc:
            if header is not None or tasks:
                raise DatasetError(f"line {number}: the dataset header must be the first line")
            header = _header(doc)
            continue
        item = _task(doc, len(tasks), number)
        if item.task.task_id in ids:
            raise DatasetError(f"line {number}: task_id {item.task.task_id!r} appears twice")
        ids.add(item.task.task_id)
        tasks.append(item)
    if not tasks:
        raise DatasetError("the dataset has no tasks")
    return Dataset(header or DatasetHeader(default_name), tuple(tasks))


def load_dataset(path: Path) -> Dataset:
    try:
        with path.open("rb") as handle:
            return parse_dataset(handle, default_name=path.stem)
    except OSError as exc:
        raise DatasetError(f"cannot read dataset {path}: {exc}") from None


def header_document(header: DatasetHeader) -> dict[str, Any]:
    doc: dict[str, Any] = {"name": header.name}
    for key in ("description", "source", "attribution"):
        if getattr(header, key):
            doc[key] = getattr(header, key)
    if header.arms:
        doc["arms"] = [
            _drop_none(
                {
                    "agent": a.arm.agent,
                    "model": a.arm.model,
                    "cost_usd": a.cost_usd,
                    "duration_ms": a.duration_ms,
                    "label": a.label,
                }
            )
            for a in header.arms
        ]
    if header.tiers:
        ordered = sorted(header.tiers, key=lambda t: (t.kind, t.tier))
        doc["tiers"] = [
            _drop_none(
                {
                    "kind": t.kind,
                    "agent": t.arm.agent,
                    "model": t.arm.model,
                    "cost_per_call_usd": t.cost_per_call_usd,
                    "expected_duration_ms": t.expected_duration_ms,
                    "prior_success": t.prior_success,
                }
            )
            for t in ordered
        ]
    if header.notes:
        doc["notes"] = list(header.notes)
    return {"dataset": doc}


def task_document(item: DatasetTask, *, keep_envelope: bool = False) -> dict[str, Any]:
    task = item.task
    fields: dict[str, Any] = {"task_id": task.task_id, "description": task.description}
    if keep_envelope:
        fields |= {"event_id": task.event_id, "occurred_at": task.occurred_at.isoformat()}
    if task.kind is not None:
        fields["kind"] = task.kind
    if task.priority:
        fields["priority"] = task.priority
    if task.requested_agent is not None:
        fields["requested_agent"] = task.requested_agent
    if task.context:
        fields["context"] = task.context
    doc: dict[str, Any] = {
        "task": fields,
        "outcomes": [
            _drop_none(
                {
                    "agent": o.arm.agent,
                    "model": o.arm.model,
                    "success": o.success,
                    "duration_ms": o.duration_ms,
                    "cost_usd": o.cost_usd,
                }
            )
            for o in item.outcomes
        ],
    }
    if item.truth:
        doc["truth"] = {arm_name(a): round(p, 6) for a, p in sorted(item.truth.items())}
    return doc


def dataset_lines(dataset: Dataset) -> Iterator[bytes]:
    yield orjson.dumps(header_document(dataset.header))
    for item in dataset.tasks:
        yield orjson.dumps(task_document(item))


def write_dataset(dataset: Dataset, path: Path) -> int:
    """Write the dataset as JSON Lines; returns the number of tasks."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as handle:
        for line in dataset_lines(dataset):
            handle.write(line + b"\n")
    return len(dataset.tasks)


def _drop_none(doc: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in doc.items() if v is not None}


def outcome_cost(dataset: Dataset, outcome: Outcome) -> float | None:
    """The outcome's own cost, else the arm's list price."""
    return outcome.cost_usd if outcome.cost_usd is not None else dataset.arm_spec(outcome.arm).cost_usd


def without_kinds(dataset: Dataset) -> Dataset:
    """The dataset with `kind` dropped from every task and the tier table reduced to its '*' rows
    (completed as tier_rows does): what a replay sees when upstream labels nothing."""
    tasks = tuple(replace(item, task=msgspec.structs.replace(item.task, kind=None)) for item in dataset.tasks)
    header = replace(
        dataset.header,
        name=f"{dataset.header.name} (kinds withheld)",
        tiers=tuple(r for r in tier_rows(dataset) if r.kind == ANY_KIND),
    )
    return Dataset(header, tasks)


def tier_rows(dataset: Dataset) -> tuple[TierOption, ...]:
    """The tier table every replay of the dataset uses, live worker and offline baselines alike.

    The header's rows for arms the dataset has, plus, when no '*' row is left, one '*' row per
    arm, cheapest list price first (no priors). So every kind has tier rows and a cold start never
    falls back to the configured default arm, which the dataset may not have (its outcomes and
    costs would be unknown to the report)."""
    known = set(dataset.arms)
    rows = tuple(r for r in dataset.header.tiers if r.arm in known)
    if any(r.kind == ANY_KIND for r in rows):
        return rows
    price = _list_prices(dataset)
    arms = sorted(dataset.arms, key=lambda a: (price.get(a, 0.0), a))
    fallback = tuple(
        TierOption(ANY_KIND, i, a, price.get(a), dataset.arm_spec(a).duration_ms)
        for i, a in enumerate(arms, start=1)
    )
    return rows + fallback


def _list_prices(dataset: Dataset) -> dict[Arm, float]:
    """Each arm's header price, else the mean cost of its recorded outcomes (what an operator
    without a price list would write); arms with neither are left out."""
    sums: dict[Arm, list[float]] = {}
    for item in dataset.tasks:
        for o in item.outcomes:
            if o.cost_usd is not None:
                sums.setdefault(o.arm, []).append(o.cost_usd)
    out = {a: sum(v) / len(v) for a, v in sums.items()}
    out.update({s.arm: s.cost_usd for s in dataset.header.arms if s.cost_usd is not None})
    return out
