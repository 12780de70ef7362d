"""The API's types. Request bodies and the schedule are the event contracts themselves (the
JSON Schemas in processors/contracts/schemas), placed in the OpenAPI document's components, so
the API and the topics cannot disagree; the other answers are pydantic models."""

from __future__ import annotations

import copy
from datetime import datetime
from functools import cache
from typing import Any, Literal

from pydantic import BaseModel, Field

from processors.contracts import load_schema

# Envelope fields a caller may leave out: the API fills them as `tasksage publish` does.
FILLED = ("event_id", "schema_version", "occurred_at")
INPUTS = {
    "task-created": "TaskCreatedInput",
    "execution-result": "ExecutionResultInput",
    "message-ingested": "MessageIngestedInput",
}
OUTPUTS = {"task-schedule": "TaskSchedule", "task-created": "TaskCreated"}


def ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _component(name: str, *, optional_envelope: bool) -> dict[str, Any]:
    schema = copy.deepcopy(load_schema(name))
    schema.pop("$schema", None)
    schema.pop("$id", None)
    if optional_envelope:
        schema["required"] = [f for f in schema.get("required", []) if f not in FILLED]
        schema["description"] = (
            schema.get("description", "")
            + " event_id, schema_version and occurred_at are filled when left out."
        ).strip()
    return schema


@cache
def contract_components() -> dict[str, dict[str, Any]]:
    out = {title: _component(name, optional_envelope=True) for name, title in INPUTS.items()}
    out.update({title: _component(name, optional_envelope=False) for name, title in OUTPUTS.items()})
    return out


def json_body(component: str, description: str) -> dict[str, Any]:
    """openapi_extra of a route whose body is one of the contract components."""
    return {
        "requestBody": {
            "required": True,
            "description": description,
            "content": {"application/json": {"schema": ref(component)}},
        }
    }


def json_answer(component: str, description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": ref(component)}}}


class Accepted(BaseModel):
    """An event validated and written to its input topic."""

    event_id: str
    topic: str
    partition: int
    offset: int


class StoredSchedule(BaseModel):
    """A schedule as the worker stored it (the fields of a task-schedule record it keeps)."""

    schedule_id: str
    task_id: str
    agent: str
    model: str
    success_probability: float
    confidence: float
    predicted_duration_ms: float | None
    expected_cost_usd: float | None
    success_target: float
    cold_start: bool
    exploration: bool
    embedding_model: str
    alternatives: list[dict[str, Any]]
    source_event_id: str
    created_at: datetime


class Outcome(BaseModel):
    """One execution result of a task."""

    event_id: str
    agent: str
    model: str
    success: bool
    duration_ms: float | None
    cost_usd: float | None
    error_message: str | None
    finished_at: datetime
    occurred_at: datetime


class TaskDetail(BaseModel):
    task: dict[str, Any] = Field(json_schema_extra={"allOf": [{"$ref": "#/components/schemas/TaskCreated"}]})
    status: Literal["pending", "succeeded", "failed"]
    attempts: int
    successes: int
    schedule: StoredSchedule | None
    outcomes: list[Outcome]


class ScheduleWait(BaseModel):
    """POST /v1/tasks?wait=S: the event, and its schedule when the worker made it in time."""

    accepted: Accepted
    schedule: StoredSchedule | None


class Hit(BaseModel):
    id: str
    text: str
    score: float
    similarity: float | None
    vector_rank: int | None
    text_rank: int | None
    details: dict[str, str]


class SearchPage(BaseModel):
    kind: Literal["messages", "tasks"]
    mode: Literal["vector", "hybrid", "similar"]
    model: str
    hits: list[Hit]
    next_cursor: str | None = Field(description="Pass as `cursor` for the next page; null on the last.")


class ArmStat(BaseModel):
    scope: str = Field(description="'*' for every task, else the task kind")
    agent: str
    model: str
    attempts: int
    successes: int
    success_rate: float | None
    mean_duration_ms: float | None
    mean_cost_usd: float | None
    updated_at: datetime


class Arms(BaseModel):
    arms: list[ArmStat]


class Health(BaseModel):
    status: Literal["ok", "unavailable"]
    problems: dict[str, str] = {}
