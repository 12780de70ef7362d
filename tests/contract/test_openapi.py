"""deploy/openapi.json is the API's document as the code generates it, and its request bodies
are the event contracts (so the API and the topics cannot disagree)."""

from __future__ import annotations

import orjson

from processors.contracts import load_schema
from streams.api.app import create_app
from streams.commands.api import openapi_text
from streams.settings import REPO_ROOT, Settings

COMMITTED = REPO_ROOT / "deploy" / "openapi.json"


def generated() -> str:
    return openapi_text(create_app(Settings.model_validate({}), connect=False).openapi())


def test_committed_document_equals_the_generated_one() -> None:
    assert COMMITTED.read_text("utf-8") == generated(), (
        "deploy/openapi.json is stale: run `tasksage openapi --output deploy/openapi.json`"
    )


def test_request_bodies_are_the_event_schemas() -> None:
    doc = orjson.loads(generated())
    components = doc["components"]["schemas"]
    for path, name, component in (
        ("/v1/tasks", "task-created", "TaskCreatedInput"),
        ("/v1/results", "execution-result", "ExecutionResultInput"),
        ("/v1/messages", "message-ingested", "MessageIngestedInput"),
        ("/v1/recommendations", "task-created", "TaskCreatedInput"),
    ):
        body = doc["paths"][path]["post"]["requestBody"]["content"]["application/json"]["schema"]
        assert body == {"$ref": f"#/components/schemas/{component}"}
        schema = load_schema(name)
        assert components[component]["properties"] == schema["properties"]
        assert components[component]["additionalProperties"] is False
        # Only the envelope fields the API fills are optional here.
        assert set(schema["required"]) - set(components[component]["required"]) == {
            "event_id",
            "schema_version",
            "occurred_at",
        }
    answer = doc["paths"]["/v1/recommendations"]["post"]["responses"]["200"]["content"]["application/json"]
    assert answer["schema"] == {"$ref": "#/components/schemas/TaskSchedule"}
    assert components["TaskSchedule"]["properties"] == load_schema("task-schedule")["properties"]
