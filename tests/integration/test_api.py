"""`tasksage api` as its clients use it: over HTTP, against a worker on the embedded broker and
database. Recommendations equal the worker's schedules on the same state; published events
are processed by the worker; reads show what the worker stored."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import asyncpg
import httpx
import orjson
import pytest

from processors.contracts.codec import validate_output
from streams.runtime import Endpoints
from streams.settings import Settings
from tests.support.api import BOTH, READ, TOKENS, WRITE, bearer, running_api
from tests.support.tables import learning_caught_up
from tests.support.topics import read_topic
from tests.support.waiting import eventually

MODELS = ("small", "medium", "large")


def task_doc(task_id: str, description: str, kind: str = "research") -> dict[str, Any]:
    return {"event_id": f"created-{task_id}", "task_id": task_id, "description": description, "kind": kind}


def result_doc(task_id: str, model: str, success: bool) -> dict[str, Any]:
    return {
        "event_id": f"result-{task_id}-{model}",
        "task_id": task_id,
        "agent": "researcher",
        "model": model,
        "success": success,
        "finished_at": "2026-03-02T10:00:00+00:00",
        "duration_ms": 1200.0,
        "cost_usd": {"small": 0.001, "medium": 0.01, "large": 0.1}[model],
    }


async def _history(client: httpx.AsyncClient, n: int) -> None:
    """n tasks, each with one outcome per model: the large model always succeeds on 'compare'."""
    for i in range(n):
        hard = i % 2 == 0
        text = f"compare store {i} with store {i + 1} for caching" if hard else f"summarize release {i} notes"
        r = await client.post("/v1/tasks", json=task_doc(f"h{i}", text), headers=bearer(WRITE))
        assert r.status_code == 202, r.text
        for model in MODELS:
            success = model == "large" or not hard
            r = await client.post(
                "/v1/results", json=result_doc(f"h{i}", model, success), headers=bearer(WRITE)
            )
            assert r.status_code == 202, r.text


async def _applied(client: httpx.AsyncClient, attempts: int) -> None:
    async def total() -> int:
        r = await client.get("/v1/arms", params={"kind": "*"}, headers=bearer(READ))
        return sum(a["attempts"] for a in r.json()["arms"])

    await eventually(total, lambda t: t == attempts, timeout_s=60)


async def _settled(endpoints: Endpoints) -> None:
    """Wait until the worker's learner has taught the learned layer every queued outcome: until
    then the worker and the API may decide with layers a pass apart."""
    conn = await asyncpg.connect(endpoints.dsn)
    try:
        await learning_caught_up(conn)
    finally:
        await conn.close()


def _assert_same_schedule(left: Any, right: Any, path: str = "$") -> None:
    if isinstance(left, float) or isinstance(right, float):
        assert left == pytest.approx(right, rel=1e-6, abs=1e-9), path
    elif isinstance(left, dict):
        assert isinstance(right, dict) and left.keys() == right.keys(), path
        for key in left:
            _assert_same_schedule(left[key], right[key], f"{path}.{key}")
    elif isinstance(left, list):
        assert isinstance(right, list) and len(left) == len(right), path
        for i, (a, b) in enumerate(zip(left, right, strict=True)):
            _assert_same_schedule(a, b, f"{path}[{i}]")
    else:
        assert left == right, path


async def test_recommendation_equals_the_schedule_the_worker_publishes(
    make_settings: Callable[..., Settings], endpoints: Endpoints, worker_factory: Callable[[Settings], Any]
) -> None:
    settings = make_settings(api_tokens=TOKENS)
    async with (
        worker_factory(settings),
        running_api(settings, endpoints) as base,
        httpx.AsyncClient(base_url=base, timeout=30) as client,
    ):
        await _history(client, 8)
        await _applied(client, 8 * len(MODELS))
        await _settled(endpoints)
        new = task_doc("new-1", "compare store 3 with store 9 for caching")
        r = await client.post("/v1/recommendations", json=new, headers=bearer(READ))
        assert r.status_code == 200, r.text
        validate_output("task-schedule", r.content)
        recommended = r.json()
        assert recommended["alternatives"] and recommended["similar_tasks"]
        # Nothing was published or stored by the recommendation.
        r = await client.get("/v1/tasks/new-1", headers=bearer(READ))
        assert r.status_code == 404
        # The worker decides the same task on the same state.
        r = await client.post("/v1/tasks", params={"wait": 30}, json=new, headers=bearer(BOTH))
        assert r.status_code == 200, r.text
        assert r.json()["schedule"]["source_event_id"] == "created-new-1"
        records = await read_topic(settings, settings.topic_task_schedules, 9)
        published = [orjson.loads(x.value) for x in records if x.key == b"new-1"]
        assert len(published) == 1
        for doc in (published[0], recommended):
            doc.pop("occurred_at")
        # Same decision, same fields; numbers agree to float32 precision (the worker's neighbour
        # distances may come from the HNSW index while the API's came from an exact scan).
        _assert_same_schedule(recommended, published[0])
        # The task view shows what the worker stored.
        r = await client.get("/v1/tasks/new-1", headers=bearer(READ))
        assert r.status_code == 200
        view = r.json()
        assert view["task"]["description"] == new["description"]
        assert view["schedule"]["agent"] == recommended["agent"]
        assert view["schedule"]["model"] == recommended["model"]
        assert view["outcomes"] == []
        r = await client.get("/v1/tasks/h0", headers=bearer(READ))
        assert sorted(o["model"] for o in r.json()["outcomes"]) == sorted(MODELS)
        assert r.json()["status"] == "succeeded"


async def test_search_pages_with_a_cursor_and_similar_messages(
    make_settings: Callable[..., Settings], endpoints: Endpoints, worker_factory: Callable[[Settings], Any]
) -> None:
    settings = make_settings(api_tokens=TOKENS)
    async with (
        worker_factory(settings),
        running_api(settings, endpoints) as base,
        httpx.AsyncClient(base_url=base, timeout=30, headers=bearer(BOTH)) as client,
    ):
        for i in range(7):
            doc = {
                "message_id": f"m{i}",
                "source": "slack" if i % 2 else "email",
                "author": "ana",
                "content": f"the payment service times out after deploy {i}",
            }
            r = await client.post("/v1/messages", json=doc)
            assert r.status_code == 202, r.text
            assert r.json()["event_id"]

        async def found() -> int:
            r = await client.get("/v1/search", params={"q": "payment timeout", "limit": 100})
            return len(r.json()["hits"]) if r.status_code == 200 else -1

        await eventually(found, lambda n: n == 7, timeout_s=60)
        seen: list[str] = []
        cursor = None
        first_cursor = None
        pages = 0
        while True:
            params: dict[str, Any] = {"q": "payment timeout", "limit": 3, "mode": "hybrid"}
            if cursor:
                params["cursor"] = cursor
            r = await client.get("/v1/search", params=params)
            assert r.status_code == 200, r.text
            page = r.json()
            seen += [h["id"] for h in page["hits"]]
            pages += 1
            cursor = page["next_cursor"]
            first_cursor = first_cursor or cursor
            if cursor is None:
                break
        assert pages == 3
        assert sorted(seen) == [f"m{i}" for i in range(7)]
        r = await client.get("/v1/search", params={"q": "payment", "source": "slack", "limit": 10})
        assert sorted(h["id"] for h in r.json()["hits"]) == ["m1", "m3", "m5"]
        r = await client.get("/v1/search", params={"q": "other", "cursor": first_cursor})
        assert r.status_code == 400 and "another query" in r.json()["error"]["message"]
        r = await client.get("/v1/search", params={"q": "x", "kind": "tasks", "source": "slack"})
        assert r.status_code == 400 and r.json()["error"]["code"] == "bad_request"
        r = await client.get("/v1/messages/m2/similar", params={"limit": 10})
        assert r.status_code == 200
        ids = [h["id"] for h in r.json()["hits"]]
        assert "m2" not in ids and len(ids) == 6
        r = await client.get("/v1/messages/nope/similar")
        assert r.status_code == 404 and r.json()["error"]["code"] == "not_found"


async def test_published_events_are_validated_like_the_topics(
    make_settings: Callable[..., Settings], endpoints: Endpoints, worker_factory: Callable[[Settings], Any]
) -> None:
    settings = make_settings(api_tokens=TOKENS, api_max_body_bytes=4096)
    async with (
        worker_factory(settings),
        running_api(settings, endpoints) as base,
        httpx.AsyncClient(base_url=base, timeout=30, headers=bearer(WRITE)) as client,
    ):
        r = await client.post("/v1/tasks", json={"task_id": "t1"})
        assert r.status_code == 422
        assert "description" in r.json()["error"]["message"]
        r = await client.post("/v1/tasks", json={**task_doc("t1", "x"), "priority": 101})
        assert r.status_code == 422
        r = await client.post("/v1/tasks", content=b"{not json", headers={"Content-Type": "application/json"})
        assert r.status_code == 400
        r = await client.post("/v1/tasks", json=task_doc("t1", "x" * 5000))
        assert r.status_code == 413 and r.json()["error"]["code"] == "payload_too_large"
        r = await client.post("/v1/tasks", json=task_doc("t1", "write the summary"))
        assert r.status_code == 202
        assert r.json()["event_id"] == "created-t1"
        assert r.json()["topic"] == settings.topic_task_created


async def test_insights_serve_the_insights_snapshot_of_the_stored_outcomes(
    make_settings: Callable[..., Settings], endpoints: Endpoints, worker_factory: Callable[[Settings], Any]
) -> None:
    settings = make_settings(api_tokens=TOKENS)
    async with (
        worker_factory(settings),
        running_api(settings, endpoints) as base,
        httpx.AsyncClient(base_url=base, timeout=30) as client,
    ):
        await _history(client, 4)
        await _applied(client, 4 * len(MODELS))
        r = await client.get("/v1/insights", headers=bearer(READ))
        assert r.status_code == 200, r.text
        validate_output("insights-snapshot", r.content)
        windows = {w["window"]: w for w in r.json()["accuracy"]}
        # An outcome is scored against the estimate its task's schedule made for that arm.
        predicted = 0
        for i in range(4):
            view = (await client.get(f"/v1/tasks/h{i}", headers=bearer(READ))).json()
            arms = {(a["agent"], a["model"]) for a in view["schedule"]["alternatives"]}
            predicted += sum(("researcher", m) in arms for m in MODELS)
        assert windows["all"]["outcomes"] == predicted
        r = await client.get("/v1/insights/arms", headers=bearer(READ))
        assert r.status_code == 200, r.text
        assert {(a["agent"], a["model"]) for a in r.json()["arms"]} >= {("researcher", m) for m in MODELS}
        assert (await client.get("/v1/insights/nothing", headers=bearer(READ))).status_code == 422
        assert (await client.get("/v1/insights")).status_code == 401
