"""The curl examples of README "HTTP API", run against a running API and worker: each command
is read from the README's code block and sent as the same request with httpx."""

from __future__ import annotations

import re
import shlex
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import httpx

from streams.runtime import Endpoints
from streams.settings import REPO_ROOT, Settings
from tests.support.api import BOTH, TOKENS, running_api
from tests.support.waiting import eventually

README = (REPO_ROOT / "README.md").read_text("utf-8")


@dataclass(frozen=True, slots=True)
class Curl:
    method: str
    target: str  # path and query
    headers: dict[str, str]
    body: bytes | None


def examples() -> list[Curl]:
    section = re.search(r"^## HTTP API\n(.*?)(?=^## )", README, re.S | re.M)
    assert section, "README has no '## HTTP API' section"
    block = re.search(r"```bash\n(.*?)```", section.group(1), re.S)
    assert block, "README 'HTTP API' has no bash example block"
    joined = block.group(1).replace("\\\n", " ")
    commands = [line.strip() for line in joined.splitlines() if line.strip().startswith("curl ")]
    return [parse(c) for c in commands]


def parse(command: str) -> Curl:
    words = shlex.split(command.replace("$TOKEN", "TOKEN"))
    method, headers, body, url = "GET", {}, None, None
    i = 1
    while i < len(words):
        word = words[i]
        if word == "-X":
            method, i = words[i + 1], i + 2
        elif word == "-H":
            name, _, value = words[i + 1].partition(":")
            headers[name.strip()] = value.strip()
            i += 2
        elif word == "-d":
            body, i = words[i + 1].encode(), i + 2
            method = "POST" if method == "GET" else method
        elif word == "-s":
            i += 1
        else:
            url, i = word, i + 1
    assert url, f"no URL in {command!r}"
    parts = urlsplit(url)
    assert parts.netloc == "localhost:8080", url
    return Curl(method, parts.path + (f"?{parts.query}" if parts.query else ""), headers, body)


async def test_readme_curl_examples_work(
    make_settings: Callable[..., Settings], endpoints: Endpoints, worker_factory: Callable[[Settings], Any]
) -> None:
    commands = examples()
    assert [c.target.split("?")[0] for c in commands] == [
        "/v1/tasks",
        "/v1/results",
        "/v1/recommendations",
        "/v1/tasks/t-1",
        "/v1/messages",
        "/v1/search",
        "/v1/search",
        "/v1/arms",
        "/readyz",
    ]
    token = BOTH.split(":", 1)[1]
    settings = make_settings(api_tokens=TOKENS)
    async with (
        worker_factory(settings),
        running_api(settings, endpoints) as base,
        httpx.AsyncClient(base_url=base, timeout=30) as client,
    ):

        async def send(c: Curl) -> httpx.Response:
            headers = {k: v.replace("TOKEN", token) for k, v in c.headers.items()}
            return await client.request(c.method, c.target, headers=headers, content=c.body)

        answers = {}
        for c in commands:
            r = await send(c)
            answers[c.target] = r
            expected = 202 if c.target in ("/v1/results", "/v1/messages") else 200
            assert r.status_code == expected, (c, r.text)
        assert answers["/v1/tasks?wait=10"].json()["schedule"]["task_id"] == "t-1"
        assert answers["/v1/recommendations"].json()["task_id"] == "t-2"

        # The message is searchable once the worker stored it.
        async def hits() -> list[str]:
            r = await send(commands[5])
            return [h["id"] for h in r.json()["hits"]]

        assert await eventually(hits, lambda ids: ids == ["m-1"], timeout_s=60) == ["m-1"]
        r = await send(commands[3])
        assert [o["model"] for o in r.json()["outcomes"]] == ["small"]
