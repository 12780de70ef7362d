"""POST /v1/tasks, /v1/results, /v1/messages: validate and publish to the input topics with
the client's publisher (the one `tasksage publish` uses); 202 with the event id."""

from __future__ import annotations

import asyncio
import time
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request

from processors.postgres import task_views
from streams.api.auth import require
from streams.api.body import event_body
from streams.api.errors import ERROR_RESPONSES, JSON, ApiError
from streams.api.schemas import Accepted, ScheduleWait, json_body
from streams.api.state import ApiRuntime

router = APIRouter(prefix="/v1", tags=["events"], responses=ERROR_RESPONSES)
WAIT_POLL_S = 0.05  # how often ?wait= looks for the worker's schedule


async def _publish(request: Request, event_type: str) -> tuple[Any, Accepted]:
    runtime: ApiRuntime = request.app.state.runtime
    payload, event = await event_body(request, event_type, runtime.settings.max_event_bytes)
    if runtime.publisher is None:
        raise ApiError(503, "the publisher is not running", retriable=True)
    meta = await runtime.publisher.publish_raw(event_type, payload)
    return event, Accepted(
        event_id=event.event_id, topic=meta.topic, partition=meta.partition, offset=meta.offset
    )


@router.post(
    "/tasks",
    status_code=202,
    summary="Publish a task-created event",
    response_model=Accepted | ScheduleWait,
    responses={200: {"model": ScheduleWait, "description": "the schedule, made within ?wait= seconds"}},
    response_description="Accepted; with ?wait=, also the schedule (null: not made in time)",
    openapi_extra=json_body("TaskCreatedInput", "A task-created event"),
)
async def post_task(
    request: Request,
    _: Annotated[str, Depends(require("write"))],
    wait: Annotated[
        float | None,
        Query(ge=0, le=300, description="Wait up to this many seconds for the worker's schedule"),
    ] = None,
) -> JSON:
    event, accepted = await _publish(request, "task-created")
    if not wait:
        return JSON(accepted.model_dump(), status_code=202)
    runtime: ApiRuntime = request.app.state.runtime
    deadline = time.monotonic() + min(wait, runtime.settings.api_wait_max_s)
    while True:
        async with runtime.pool.acquire() as conn:
            schedule = await task_views.schedule_for_event(conn, event.event_id)
        if schedule is not None or time.monotonic() >= deadline:
            break
        await asyncio.sleep(WAIT_POLL_S)
    body = {"accepted": accepted.model_dump(), "schedule": schedule}
    return JSON(body, status_code=200 if schedule is not None else 202)


@router.post(
    "/results",
    status_code=202,
    summary="Publish an execution-result event",
    response_model=Accepted,
    openapi_extra=json_body("ExecutionResultInput", "An execution-result event"),
)
async def post_result(request: Request, _: Annotated[str, Depends(require("write"))]) -> JSON:
    _event, accepted = await _publish(request, "execution-result")
    return JSON(accepted.model_dump(), status_code=202)


@router.post(
    "/messages",
    status_code=202,
    summary="Publish a message-ingested event",
    response_model=Accepted,
    openapi_extra=json_body("MessageIngestedInput", "A message-ingested event"),
)
async def post_message(request: Request, _: Annotated[str, Depends(require("write"))]) -> JSON:
    _event, accepted = await _publish(request, "message-ingested")
    return JSON(accepted.model_dump(), status_code=202)
