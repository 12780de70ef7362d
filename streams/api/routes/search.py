"""GET /v1/search (semantic or hybrid, with filters) and GET /v1/messages/{id}/similar, both
paginated by an opaque cursor. The searches are the CLI's (processors/postgres/search.py)."""

from __future__ import annotations

import base64
import hashlib
from datetime import datetime
from typing import Annotated, Any, Literal

import orjson
from fastapi import APIRouter, Depends, Path, Query, Request

from processors.search.types import Filters, SearchKind, SearchResult
from streams.api.auth import require
from streams.api.errors import ERROR_RESPONSES, JSON, ApiError
from streams.api.schemas import SearchPage
from streams.api.state import ApiRuntime

router = APIRouter(prefix="/v1", tags=["search"], responses=ERROR_RESPONSES)

Limit = Annotated[int, Query(ge=1, le=100, description="Hits per page")]
Threshold = Annotated[float | None, Query(ge=-1, le=1, description="Minimum cosine similarity")]
Cursor = Annotated[str | None, Query(max_length=500, description="next_cursor of the page before")]
Text = Annotated[str | None, Query(min_length=1, max_length=200)]
_FILTERS = {"messages": ("source", "author", "thread_id", "task_id"), "tasks": ("kind", "status")}


def _fingerprint(query: dict[str, Any]) -> str:
    return hashlib.sha256(orjson.dumps(query, option=orjson.OPT_SORT_KEYS, default=str)).hexdigest()[:16]


def _cursor(offset: int, query: dict[str, Any]) -> str:
    raw = orjson.dumps({"o": offset, "q": _fingerprint(query)})
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _offset(cursor: str | None, query: dict[str, Any]) -> int:
    """Where the page starts: a cursor holds the offset and the query it was made for."""
    if cursor is None:
        return 0
    try:
        doc = orjson.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        offset, made_for = doc["o"], doc["q"]
    except (ValueError, TypeError, KeyError):
        raise ApiError(400, "the cursor cannot be read", hint="pass next_cursor unchanged") from None
    if not isinstance(offset, int) or offset < 0 or made_for != _fingerprint(query):
        raise ApiError(400, "the cursor belongs to another query", hint="start again without a cursor")
    return offset


def _page(result: SearchResult, offset: int, limit: int, more: str | None) -> JSON:
    hits = result.hits[offset : offset + limit]
    return JSON(
        {
            "kind": result.kind,
            "mode": result.mode,
            "model": result.model,
            "hits": [
                {
                    "id": h.id,
                    "text": h.text,
                    "score": h.score,
                    "similarity": h.similarity,
                    "vector_rank": h.vector_rank,
                    "text_rank": h.text_rank,
                    "details": h.details,
                }
                for h in hits
            ],
            "next_cursor": more if len(result.hits) > offset + limit else None,
        }
    )


def _depth(runtime: ApiRuntime, offset: int, limit: int) -> int:
    """Rows to rank for this page, plus one to know whether another page follows."""
    wanted = offset + limit
    cap = runtime.settings.api_search_max_results
    if wanted > cap:
        raise ApiError(400, f"pages end after {cap} results", hint="narrow the query with filters")
    return min(wanted + 1, cap + 1)


@router.get("/search", summary="Semantic or hybrid search over messages or tasks", response_model=SearchPage)
async def search(
    request: Request,
    _: Annotated[str, Depends(require("read"))],
    q: Annotated[str, Query(min_length=1, max_length=2000, description="What to look for")],
    kind: Annotated[Literal["messages", "tasks"], Query()] = "messages",
    mode: Annotated[
        Literal["semantic", "hybrid"], Query(description="hybrid adds full-text ranking")
    ] = "semantic",
    limit: Limit = 10,
    threshold: Threshold = None,
    cursor: Cursor = None,
    source: Text = None,
    author: Text = None,
    thread_id: Text = None,
    task_id: Text = None,
    task_kind: Text = None,
    status: Annotated[Literal["pending", "succeeded", "failed"] | None, Query()] = None,
    since: Annotated[datetime | None, Query(description="Rows that occurred at or after this time")] = None,
) -> JSON:
    runtime: ApiRuntime = request.app.state.runtime
    given = {"source": source, "author": author, "thread_id": thread_id, "task_id": task_id}
    given |= {"kind": task_kind, "status": status}
    wrong = [n for n, v in given.items() if v is not None and n not in _FILTERS[kind]]
    if wrong:
        names = ", ".join("task_kind" if n == "kind" else n for n in wrong)
        raise ApiError(400, f"filters {names} do not apply to {kind}")
    filters = Filters(**{n: v for n, v in given.items() if v is not None}, since=since)
    query = {"q": q, "kind": kind, "mode": mode, "threshold": threshold, "since": since, **given}
    offset = _offset(cursor, query)
    depth = _depth(runtime, offset, limit)
    session = await runtime.search()
    vector = (await session.embedder.embed([q]))[0]
    search_kind: SearchKind = kind
    if mode == "hybrid":
        result = await session.repository.hybrid(
            search_kind, q, vector, limit=depth, threshold=threshold, filters=filters
        )
    else:
        result = await session.repository.search(
            search_kind, vector, limit=depth, threshold=threshold, filters=filters
        )
    return _page(result, offset, limit, _cursor(offset + limit, query))


@router.get(
    "/messages/{message_id}/similar",
    summary="Messages most similar to a stored one",
    response_model=SearchPage,
)
async def similar(
    request: Request,
    _: Annotated[str, Depends(require("read"))],
    message_id: Annotated[str, Path(min_length=1, max_length=200)],
    limit: Limit = 10,
    threshold: Threshold = None,
    cursor: Cursor = None,
) -> JSON:
    runtime: ApiRuntime = request.app.state.runtime
    query = {"similar": message_id, "threshold": threshold}
    offset = _offset(cursor, query)
    depth = _depth(runtime, offset, limit)
    session = await runtime.search()
    vector = await session.repository.stored_vector("messages", message_id)
    result = await session.repository.search(
        "messages", vector, limit=depth, threshold=threshold, exclude_id=message_id
    )
    return _page(result, offset, limit, _cursor(offset + limit, query))
