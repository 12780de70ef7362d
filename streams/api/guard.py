"""One ASGI middleware in front of every route: the request body limit, the request timeout,
and the request metrics. Plain ASGI rather than BaseHTTPMiddleware, which costs a task and a
stream per request on the hot path."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from prometheus_client import Counter, Histogram
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from streams.api.errors import error_response

REQUESTS = Counter("tasksage_api_requests_total", "HTTP API requests answered", ["route", "method", "status"])
REQUEST_SECONDS = Histogram(
    "tasksage_api_request_seconds",
    "HTTP API request time, from the first byte read to the last written",
    ["route", "method"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
UNMATCHED = "unmatched"  # the route label of requests no route took (404s): bounded cardinality


class _BodyTooLarge(Exception):
    pass


class Guard:
    def __init__(self, app: ASGIApp, max_body_bytes: int, timeout_s: float) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.timeout_s = timeout_s

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500
        sent = False

        async def counting_send(message: Message) -> None:
            nonlocal status, sent
            if message["type"] == "http.response.start":
                status = message["status"]
                sent = True
            await send(message)

        received = 0

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_body_bytes:
                    raise _BodyTooLarge
            return message

        if _has_nul(scope):
            # PostgreSQL text cannot hold NUL: refused here, for every route, with the reason.
            await error_response(422, "the path or query contains a NUL character (%00)")(
                scope, receive, counting_send
            )
            _count(scope, status, started)
            return
        try:
            declared = _content_length(scope)
            if declared is not None and declared > self.max_body_bytes:
                raise _BodyTooLarge
            # A timeout scope, not wait_for: wait_for runs the request in a task of its own.
            async with asyncio.timeout(self.timeout_s):
                await self.app(scope, limited_receive, counting_send)
        except _BodyTooLarge:
            if not sent:
                await error_response(
                    413,
                    f"request body over the {self.max_body_bytes}-byte limit",
                    hint="send less or raise TASKSAGE_API_MAX_BODY_BYTES",
                )(scope, receive, counting_send)
        except TimeoutError:
            if not sent:
                await error_response(504, f"request took longer than {self.timeout_s:g} s", retriable=True)(
                    scope, receive, counting_send
                )
        finally:
            _count(scope, status, started)


def _count(scope: Scope, status: int, started: float) -> None:
    route = _route_label(scope)
    method = scope.get("method", "")
    REQUESTS.labels(route, method, str(status)).inc()
    REQUEST_SECONDS.labels(route, method).observe(time.perf_counter() - started)


def _has_nul(scope: Scope) -> bool:
    query: bytes = scope.get("query_string", b"")
    return "\x00" in scope.get("path", "") or b"%00" in query or b"\x00" in query


def _content_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


def _route_label(scope: Scope) -> str:
    """The matched route's template (/v1/tasks/{task_id}), never the raw path."""
    route: Any = scope.get("route")
    path = getattr(route, "path", None)
    return path if isinstance(path, str) else UNMATCHED
