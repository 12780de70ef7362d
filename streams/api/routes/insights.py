"""GET /v1/insights: what the worker's outcomes add up to, as the insights topic publishes it
(live accuracy per window, failure patterns, capability gaps, arm usage); the record is the
insights-snapshot event, so the API and the topic share one contract."""

from __future__ import annotations

from typing import Annotated, Any, Literal

import orjson
from fastapi import APIRouter, Depends, Request

from processors.contracts import encode
from processors.pipeline.insights import InsightsBuilder
from streams.api.auth import require
from streams.api.errors import ERROR_RESPONSES, JSON
from streams.api.state import ApiRuntime

router = APIRouter(prefix="/v1", tags=["insights"], responses=ERROR_RESPONSES)

SECTIONS = {
    "accuracy": "accuracy",
    "failures": "failure_patterns",
    "gaps": "capability_gaps",
    "arms": "arms",
}


async def _snapshot(request: Request) -> dict[str, Any]:
    runtime: ApiRuntime = request.app.state.runtime
    session = await runtime.search()  # the active model's embedder, as the worker's
    builder = InsightsBuilder(runtime.pool, session.embedder, runtime.settings.insights_config())
    doc: dict[str, Any] = orjson.loads(encode(await builder.snapshot()))
    return doc


@router.get("/insights", summary="The current insights snapshot (the insights topic's record)")
async def get_insights(request: Request, _: Annotated[str, Depends(require("read"))]) -> JSON:
    return JSON(await _snapshot(request))


@router.get("/insights/{section}", summary="One part of the insights snapshot")
async def get_insights_section(
    request: Request,
    section: Literal["accuracy", "failures", "gaps", "arms"],
    _: Annotated[str, Depends(require("read"))],
) -> JSON:
    doc = await _snapshot(request)
    return JSON({"success_target": doc["success_target"], section: doc[SECTIONS[section]]})
