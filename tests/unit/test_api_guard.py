"""The API's guard in front of every route: a request past its time answers 504 (retriable), a
body past the limit 413, both as the JSON error document, and each is counted by status."""

from __future__ import annotations

import asyncio

import httpx
import orjson
from prometheus_client import REGISTRY
from starlette.types import Receive, Scope, Send

from streams.api.guard import UNMATCHED, Guard


async def slow_or_echo(scope: Scope, receive: Receive, send: Send) -> None:
    """Sleeps when asked to (?sleep=S), else answers 200 with the body's length."""
    query = scope.get("query_string", b"").decode()
    if query.startswith("sleep="):
        await asyncio.sleep(float(query.removeprefix("sleep=")))
    body = b""
    while True:
        message = await receive()
        body += message.get("body", b"")
        if not message.get("more_body"):
            break
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": str(len(body)).encode()})


def count(status: str) -> float:
    labels = {"route": UNMATCHED, "method": "POST", "status": status}
    return REGISTRY.get_sample_value("tasksage_api_requests_total", labels) or 0.0


async def call(guard: Guard, path: str, body: bytes) -> httpx.Response:
    transport = httpx.ASGITransport(app=guard)
    async with httpx.AsyncClient(transport=transport, base_url="http://api") as client:
        return await client.post(path, content=body)


def test_a_request_past_its_time_answers_504_retriable() -> None:
    guard = Guard(slow_or_echo, max_body_bytes=1024, timeout_s=0.05)
    before = count("504")
    answer = asyncio.run(call(guard, "/x?sleep=5", b"{}"))
    assert answer.status_code == 504
    error = orjson.loads(answer.content)["error"]
    assert error["retriable"] is True and "longer than 0.05 s" in error["message"]
    assert count("504") == before + 1


def test_a_request_within_its_time_and_size_passes() -> None:
    guard = Guard(slow_or_echo, max_body_bytes=1024, timeout_s=1.0)
    before = count("200")
    answer = asyncio.run(call(guard, "/x?sleep=0.01", b"a" * 1024))
    assert (answer.status_code, answer.text) == (200, "1024")
    assert count("200") == before + 1


def test_a_body_past_the_limit_answers_413() -> None:
    guard = Guard(slow_or_echo, max_body_bytes=1024, timeout_s=1.0)
    answer = asyncio.run(call(guard, "/x", b"a" * 1025))
    assert answer.status_code == 413
    error = orjson.loads(answer.content)["error"]
    assert error["code"] == "payload_too_large" and "TASKSAGE_API_MAX_BODY_BYTES" in error["hint"]
