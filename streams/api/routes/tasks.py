"""GET /v1/tasks/{task_id}: the task, its latest schedule and its outcomes."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Request

from processors.postgres import task_views
from streams.api.auth import require
from streams.api.errors import ERROR_RESPONSES, JSON, ApiError
from streams.api.schemas import TaskDetail
from streams.api.state import ApiRuntime

router = APIRouter(prefix="/v1", tags=["tasks"], responses=ERROR_RESPONSES)


@router.get("/tasks/{task_id}", summary="A task with its schedule and outcomes", response_model=TaskDetail)
async def get_task(
    request: Request,
    _: Annotated[str, Depends(require("read"))],
    task_id: Annotated[str, Path(min_length=1, max_length=200)],
) -> JSON:
    runtime: ApiRuntime = request.app.state.runtime
    async with runtime.pool.acquire() as conn:
        view = await task_views.task_view(conn, task_id)
    if view is None:
        raise ApiError(
            404, f"no task {task_id!r}", hint="the worker stores a task once it processed its event"
        )
    return JSON(
        {
            "task": view.task,
            "status": view.status,
            "attempts": view.attempts,
            "successes": view.successes,
            "schedule": view.schedule,
            "outcomes": view.outcomes,
        }
    )
