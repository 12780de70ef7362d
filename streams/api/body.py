"""Request bodies: the JSON event a caller sends, completed and checked by the same decoder
the worker runs on the topic (the JSON Schema, then the typed record)."""

from __future__ import annotations

from typing import Any

import orjson
from fastapi import Request

from processors.contracts.inputs import DECODERS
from streams.api.errors import ApiError
from streams.client import complete_event


async def event_body(request: Request, event_type: str, max_bytes: int) -> tuple[bytes, Any]:
    """(completed payload, typed event). Raises ApiError 400/415/422 with the reason."""
    content_type = request.headers.get("content-type", "application/json").split(";")[0].strip().lower()
    if content_type != "application/json":
        raise ApiError(415 if content_type else 400, f"send application/json, not {content_type!r}")
    raw = await request.body()
    try:
        doc = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise ApiError(400, f"the body is not valid JSON: {exc}") from None
    if not isinstance(doc, dict):
        raise ApiError(422, f"the body must be a JSON object, got {type(doc).__name__}")
    payload = orjson.dumps(complete_event(doc))
    return payload, DECODERS[event_type](payload, max_bytes)
