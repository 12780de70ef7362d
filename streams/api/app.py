"""The API's app factory: routes, auth, errors, limits and the OpenAPI document."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from fastapi.openapi.utils import get_openapi

from streams.api import errors
from streams.api.auth import Gate, load_tokens
from streams.api.guard import Guard
from streams.api.routes import arms, events, health, insights, recommendations, search, tasks
from streams.api.schemas import contract_components
from streams.api.state import ApiRuntime
from streams.runtime import Endpoints, resolve_endpoints
from streams.settings import Settings

TITLE = "tasksage"
VERSION = "1"
DESCRIPTION = (
    "Schedules for tasks (which agent and model), search over messages and tasks, and the "
    "input topics behind one HTTP API. Request bodies and schedules are the event contracts "
    "(the JSON Schemas of the Kafka topics). Errors: {error: {code, message, hint, retriable}}."
)


def create_app(
    settings: Settings,
    endpoints: Endpoints | None = None,
    *,
    connect: bool = True,
    runtime: ApiRuntime | None = None,
) -> FastAPI:
    """The ASGI app. It opens its connections at start-up, or uses `runtime` (opened and closed
    by the caller); `connect=False` builds it without services (to write the OpenAPI document)."""

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if runtime is not None:
            app.state.runtime = runtime
            yield
            return
        if not connect:
            yield
            return
        runtime_ = await ApiRuntime.open(settings, endpoints or resolve_endpoints(settings))
        app.state.runtime = runtime_
        try:
            yield
        finally:
            await runtime_.close()

    app = FastAPI(
        title=TITLE,
        version=VERSION,
        description=DESCRIPTION,
        lifespan=lifespan,
        docs_url="/docs",
        redoc_url=None,
    )
    app.state.gate = Gate(load_tokens(settings), settings.api_rate_limit)
    errors.install(app)
    for module in (recommendations, events, tasks, search, arms, insights, health):
        app.include_router(module.router)
    if settings.api_cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.api_cors_origins,
            allow_methods=["GET", "POST"],
            allow_headers=["Authorization", "Content-Type"],
        )
    app.add_middleware(
        Guard, max_body_bytes=settings.api_max_body_bytes, timeout_s=settings.api_request_timeout_s
    )
    app.openapi = lambda: openapi_document(app)  # type: ignore[method-assign]
    return app


def openapi_document(app: FastAPI) -> dict[str, Any]:
    """FastAPI's document plus the event contracts its routes refer to."""
    if app.openapi_schema is None:
        doc = get_openapi(
            title=app.title, version=app.version, description=app.description, routes=app.routes
        )
        doc.setdefault("components", {}).setdefault("schemas", {}).update(contract_components())
        app.openapi_schema = doc
    return app.openapi_schema
