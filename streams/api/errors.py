"""Structured JSON errors for every failure the API answers, and the mapping from tasksage's
typed errors. One body shape everywhere: {"error": {"code", "message", "hint", "retriable"}}."""

from __future__ import annotations

import logging
from typing import Any

import orjson
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException

from processors.errors import ConfigurationError, InvalidEvent, PayloadTooLarge, RetriableError, TasksageError
from processors.postgres.search import NotEmbedded, RowNotFound

log = logging.getLogger(__name__)

_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "payload_too_large",
    422: "invalid_request",
    429: "rate_limited",
    500: "internal_error",
    503: "unavailable",
    504: "timeout",
}


class JSON(Response):
    """A JSON answer rendered by orjson (datetimes as RFC 3339); the routes build their bodies
    themselves, so FastAPI's response models document them without re-validating each one."""

    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content)


class ErrorDetail(BaseModel):
    code: str
    message: str
    hint: str | None = None
    retriable: bool = False


class ErrorBody(BaseModel):
    error: ErrorDetail


class ApiError(Exception):
    """An answer other than success, raised anywhere in a request."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        hint: str | None = None,
        retriable: bool = False,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.hint = hint
        self.retriable = retriable
        self.headers = headers


def error_response(
    status: int,
    message: str,
    *,
    hint: str | None = None,
    retriable: bool = False,
    headers: dict[str, str] | None = None,
) -> JSON:
    body = {
        "error": {
            "code": _CODES.get(status, "error"),
            "message": message,
            "hint": hint,
            "retriable": retriable,
        }
    }
    return JSON(body, status_code=status, headers=headers)


def from_tasksage(exc: TasksageError) -> ApiError:
    """The HTTP answer for a typed tasksage error (the same retriable flag the worker reads)."""
    message = str(exc.args[0]) if exc.args else type(exc).__name__
    if isinstance(exc, PayloadTooLarge):
        return ApiError(413, message, hint=exc.hint)
    if isinstance(exc, InvalidEvent):
        return ApiError(422, message, hint=exc.hint)
    if isinstance(exc, RowNotFound):
        return ApiError(404, message, hint=exc.hint)
    if isinstance(exc, NotEmbedded):
        return ApiError(409, message, hint=exc.hint, retriable=True)
    if isinstance(exc, RetriableError | ConfigurationError):
        return ApiError(503, message, hint=exc.hint, retriable=True, headers={"Retry-After": "1"})
    return ApiError(500, message, hint=exc.hint)


# Documented on every route, so a client (and the schema fuzzer) knows each answer's shape.
ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorBody, "description": _CODES[status].replace("_", " ")}
    for status in (400, 401, 403, 404, 405, 409, 413, 422, 429, 500, 503, 504)
}


def install(app: FastAPI) -> None:
    """Every error the app can raise becomes the JSON body above."""

    @app.exception_handler(ApiError)
    async def _api(_: Request, exc: ApiError) -> JSON:
        return error_response(
            exc.status, exc.message, hint=exc.hint, retriable=exc.retriable, headers=exc.headers
        )

    @app.exception_handler(TasksageError)
    async def _typed(_: Request, exc: TasksageError) -> JSON:
        mapped = from_tasksage(exc)
        if mapped.status >= 500:
            log.warning("request failed: %s", exc)
        return error_response(
            mapped.status,
            mapped.message,
            hint=mapped.hint,
            retriable=mapped.retriable,
            headers=mapped.headers,
        )

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException) -> JSON:
        headers = dict(exc.headers) if exc.headers else None
        return error_response(exc.status_code, str(exc.detail), headers=headers)

    @app.exception_handler(RequestValidationError)
    async def _invalid(_: Request, exc: RequestValidationError) -> JSON:
        reasons = "; ".join(
            f"{'.'.join(str(p) for p in e.get('loc', ()))}: {e.get('msg', 'invalid')}" for e in exc.errors()
        )
        return error_response(422, reasons or "invalid request")

    @app.exception_handler(Exception)
    async def _unexpected(_: Request, exc: Exception) -> JSON:
        log.exception("unexpected error in a request")
        return error_response(500, f"internal error: {type(exc).__name__}", retriable=True)
