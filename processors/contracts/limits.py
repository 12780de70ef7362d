"""Bounds checked on the raw bytes of an input event before any parser sees them.

JSON Schema cannot bound nesting, and free-form objects (a task's `context`) accept any value, so
depth and size are bounded here, once, for every decoder. The parsers each fail differently past
some depth: msgspec raises RecursionError near 1,000 levels, orjson refuses to read past 1,024 and
to write past 254 (a task's context is written back as JSON), the schema validator recurses in
Python. A record past these bounds is an `InvalidEvent` with a reason, never a crash.
"""

from __future__ import annotations

import re

from processors.errors import InvalidEvent, PayloadTooLarge

# Deepest nesting of objects and arrays an input event may have, counting the event itself as 1.
# Well inside what every parser and orjson's writer accept; real events nest a few levels.
MAX_DEPTH = 64

# A JSON string (escapes included) or one bracket: brackets inside strings do not nest.
_TOKENS = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"|[\[\]{}]', re.DOTALL)
_OPENERS = frozenset(b"[{")


def nesting_depth(payload: bytes, stop_at: int | None = None) -> int:
    """How deep objects and arrays nest in `payload`, brackets inside strings not counted.
    Iterative, so any depth is measured without recursion; stops early past `stop_at`.
    Not a validator: on malformed JSON it measures what it can, and the parser says what is wrong."""
    depth = deepest = 0
    for match in _TOKENS.finditer(payload):
        token = match.group()
        if len(token) != 1:
            continue  # a string
        if token[0] in _OPENERS:
            depth += 1
            if depth > deepest:
                deepest = depth
                if stop_at is not None and deepest > stop_at:
                    break
        else:
            depth -= 1
    return deepest


def check(payload: bytes, name: str, max_bytes: int, max_depth: int = MAX_DEPTH) -> None:
    """Raise PayloadTooLarge or InvalidEvent when `payload` is over the size or nesting limits.
    Cheap for ordinary events: bracket counts are taken in C, and only a payload with more
    opening brackets than `max_depth` is scanned."""
    if len(payload) > max_bytes:
        raise PayloadTooLarge(
            f"{name} payload is {len(payload)} bytes, over the {max_bytes}-byte limit",
            hint="raise TASKSAGE_MAX_EVENT_BYTES or send smaller events",
        )
    if payload.count(b"{") + payload.count(b"[") <= max_depth:
        return
    depth = nesting_depth(payload, stop_at=max_depth)
    if depth > max_depth:
        raise InvalidEvent(
            f"{name} nesting too deep: objects and arrays nest more than {max_depth} levels "
            f"(counting the event itself)"
        )
