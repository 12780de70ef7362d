"""/healthz (the process answers), /readyz (the database and the active model answer) and
/metrics (Prometheus text). Open to everyone: probes and scrapers carry no token."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from streams.api.errors import JSON
from streams.api.schemas import Health
from streams.api.state import ApiRuntime

router = APIRouter(tags=["operations"])


@router.get("/healthz", summary="Liveness: the process answers", response_model=Health)
async def healthz() -> JSON:
    return JSON({"status": "ok", "problems": {}})


@router.get(
    "/readyz",
    summary="Readiness: the database and the active embedding model answer",
    response_model=Health,
    responses={503: {"model": Health, "description": "not ready, with the reasons"}},
)
async def readyz(request: Request) -> JSON:
    runtime: ApiRuntime = request.app.state.runtime
    problems = await runtime.ready()
    return JSON(
        {"status": "unavailable" if problems else "ok", "problems": problems},
        status_code=503 if problems else 200,
    )


@router.get(
    "/metrics",
    summary="Prometheus metrics",
    response_class=Response,
    responses={
        200: {"content": {CONTENT_TYPE_LATEST: {"schema": {"type": "string"}}}, "description": "metrics"}
    },
)
async def metrics() -> Response:
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)
