"""Who may call what: scopes, bad tokens, the rate limit, the exposure rule, and the answers
to unknown paths and wrong methods, all over HTTP against a running API."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from processors.errors import ConfigurationError
from streams.api.server import serve
from streams.runtime import Endpoints, prepare_database
from streams.settings import Settings
from tests.support.api import BOTH, READ, TOKENS, WRITE, bearer, running_api

TASK = {"task_id": "a1", "description": "write the summary"}


async def test_scopes_decide_what_a_token_may_do(
    make_settings: Callable[..., Settings], endpoints: Endpoints
) -> None:
    settings = make_settings(api_tokens=TOKENS)
    async with running_api(settings, endpoints) as base, httpx.AsyncClient(base_url=base) as client:
        r = await client.get("/v1/arms")
        assert r.status_code == 401
        assert r.headers["www-authenticate"] == "Bearer"
        assert r.json()["error"]["code"] == "unauthorized"
        r = await client.get("/v1/arms", headers={"Authorization": "Bearer " + "x" * 24})
        assert r.status_code == 401 and r.json()["error"]["message"] == "the bearer token is not valid"
        r = await client.get("/v1/arms", headers={"Authorization": "Basic dXNlcjpwYXNz"})
        assert r.status_code == 401
        # read may read, not publish; write may publish, not read
        assert (await client.get("/v1/arms", headers=bearer(READ))).status_code == 200
        r = await client.post("/v1/tasks", json=TASK, headers=bearer(READ))
        assert r.status_code == 403 and r.json()["error"]["message"] == "the token lacks the write scope"
        assert (await client.post("/v1/tasks", json=TASK, headers=bearer(WRITE))).status_code == 202
        assert (await client.get("/v1/arms", headers=bearer(WRITE))).status_code == 403
        assert (await client.get("/v1/arms", headers=bearer(BOTH))).status_code == 200
        # probes and scrapes carry no token
        assert (await client.get("/healthz")).status_code == 200
        assert (await client.get("/metrics")).status_code == 200


async def test_unknown_paths_and_wrong_methods_answer_json_errors(
    make_settings: Callable[..., Settings], endpoints: Endpoints
) -> None:
    settings = make_settings(api_tokens=TOKENS)
    async with running_api(settings, endpoints) as base, httpx.AsyncClient(base_url=base) as client:
        before = (await client.get("/metrics")).text
        r = await client.post("/tasks/predict", headers=bearer(BOTH))
        assert r.status_code == 404
        assert r.json() == {
            "error": {"code": "not_found", "message": "Not Found", "hint": None, "retriable": False}
        }
        r = await client.delete("/v1/tasks/a1", headers=bearer(BOTH))
        assert r.status_code == 405 and r.json()["error"]["code"] == "method_not_allowed"
        assert r.headers["allow"] == "GET"
        r = await client.post("/metrics")
        assert r.status_code == 405
        r = await client.get("/v1/tasks/unknown", headers=bearer(READ))
        assert r.status_code == 404 and r.json()["error"]["message"] == "no task 'unknown'"
        r = await client.get("/v1/search", params={"q": "x", "limit": 0}, headers=bearer(READ))
        assert r.status_code == 422 and "limit" in r.json()["error"]["message"]
        after = (await client.get("/metrics")).text
        # The registry is the process's: counted since `before`, as a scraper's rate() would.
        for sample in (
            'tasksage_api_requests_total{method="POST",route="unmatched",status="404"}',
            'tasksage_api_requests_total{method="DELETE",route="/v1/tasks/{task_id}",status="405"}',
            'tasksage_api_requests_total{method="GET",route="/v1/tasks/{task_id}",status="404"}',
            'tasksage_api_request_seconds_count{method="GET",route="/v1/tasks/{task_id}"}',
            'tasksage_api_requests_total{method="GET",route="/v1/search",status="422"}',
        ):
            assert value(after, sample) - value(before, sample) == 1.0, sample


def value(scrape: str, sample: str) -> float:
    for line in scrape.splitlines():
        if line.startswith(sample + " "):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


async def test_rate_limit_per_token(make_settings: Callable[..., Settings], endpoints: Endpoints) -> None:
    settings = make_settings(api_tokens=TOKENS, api_rate_limit="3/minute")
    async with running_api(settings, endpoints) as base, httpx.AsyncClient(base_url=base) as client:
        answers = [(await client.get("/v1/arms", headers=bearer(READ))).status_code for _ in range(4)]
        assert answers == [200, 200, 200, 429]
        r = await client.get("/v1/arms", headers=bearer(READ))
        assert r.json()["error"]["retriable"] is True and int(r.headers["retry-after"]) >= 1
        # another token has its own window
        assert (await client.get("/v1/arms", headers=bearer(BOTH))).status_code == 200


async def test_no_tokens_refuses_a_public_address_unless_insecure(
    make_settings: Callable[..., Settings], endpoints: Endpoints, tmp_path: Path
) -> None:
    settings = make_settings(api_host="0.0.0.0", api_port=0)
    await prepare_database(settings, endpoints.dsn)
    with pytest.raises(ConfigurationError, match="not a loopback address"):
        await serve(settings, asyncio.Event(), endpoints)
    stop = asyncio.Event()
    stop.set()  # starts, then stops at once: the check passed
    await serve(make_settings(api_host="0.0.0.0", api_port=0, api_insecure=True), stop, endpoints)
    tokens = tmp_path / "tokens"
    tokens.write_text("# operators\nread,write:" + "t" * 20 + "\n", "utf-8")
    await serve(make_settings(api_host="0.0.0.0", api_port=0, api_tokens_file=tokens), stop, endpoints)
    tokens.write_text("admin:" + "t" * 20 + "\n", "utf-8")
    with pytest.raises(ConfigurationError, match="scopes read and/or write"):
        await serve(make_settings(api_tokens_file=tokens), stop, endpoints)
