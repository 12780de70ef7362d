"""GET /v1/arms: per (agent, model) statistics, overall ('*') and per task kind."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request

from processors.postgres import task_views
from streams.api.auth import require
from streams.api.errors import ERROR_RESPONSES, JSON
from streams.api.schemas import Arms
from streams.api.state import ApiRuntime

router = APIRouter(prefix="/v1", tags=["arms"], responses=ERROR_RESPONSES)


@router.get("/arms", summary="Success, duration and cost per (agent, model)", response_model=Arms)
async def get_arms(
    request: Request,
    _: Annotated[str, Depends(require("read"))],
    kind: Annotated[
        str | None,
        Query(max_length=200, description="'*' for all tasks, a kind for its tasks; unset: every scope"),
    ] = None,
) -> JSON:
    runtime: ApiRuntime = request.app.state.runtime
    async with runtime.pool.acquire() as conn:
        rows = await task_views.arm_rows(conn, kind)
    return JSON(
        {
            "arms": [
                {
                    "scope": r.scope,
                    "agent": r.agent,
                    "model": r.model,
                    "attempts": r.attempts,
                    "successes": r.successes,
                    "success_rate": r.successes / r.attempts if r.attempts else None,
                    "mean_duration_ms": r.mean_duration_ms,
                    "mean_cost_usd": r.mean_cost_usd,
                    "updated_at": r.updated_at,
                }
                for r in rows
            ]
        }
    )
