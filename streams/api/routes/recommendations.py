"""POST /v1/recommendations: the schedule tasksage would emit for a task, publishing nothing."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

from processors.contracts import encode
from streams.api.auth import require
from streams.api.body import event_body
from streams.api.errors import ERROR_RESPONSES
from streams.api.schemas import json_answer, json_body
from streams.api.state import ApiRuntime

router = APIRouter(prefix="/v1", tags=["recommendations"], responses=ERROR_RESPONSES)


@router.post(
    "/recommendations",
    summary="The schedule for a task, with alternatives and similar tasks, without publishing",
    responses={200: json_answer("TaskSchedule", "The task-schedule record the worker would publish")},
    openapi_extra=json_body("TaskCreatedInput", "The task, as a task-created event"),
)
async def recommend(request: Request, _: Annotated[str, Depends(require("read"))]) -> Response:
    """Decided by the worker's own planning code on the same database (embedding, history,
    neighbours, the scheduler): a task later published with the same event answers the same,
    as long as no outcome arrived in between. Nothing is stored or published (the embedding
    call is counted in the usage ledger like any other)."""
    runtime: ApiRuntime = request.app.state.runtime
    _payload, task = await event_body(request, "task-created", runtime.settings.max_event_bytes)
    schedule = await runtime.recommend(task)
    return Response(encode(schedule), media_type="application/json")
