"""The JSON Schemas in schemas/, generated from the event structs in events.py.

    python -m processors.contracts.generate          # rewrite schemas/*.json
    python -m processors.contracts.generate --check  # exit 1 when a file differs

The schemas are the published contract (pinned by checksum in tests/contract), written in the
draft-07 shape consumers already read: nested records inline, `"type": [..., "null"]` for
optional values, every record closed (`additionalProperties: false`). Required are the fields
without a default, and always `schema_version`: a record built in code may leave it out, an
event on the wire may not.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from msgspec import inspect

from processors.contracts.events import EVENTS, NOT_STAR

SCHEMA_DIR = Path(__file__).resolve().parent / "schemas"
DIALECT = "https://json-schema.org/draft-07/schema#"
BASE_ID = "https://tasksage.dev/schemas/"
ALWAYS_REQUIRED = ("schema_version",)
# Patterns with a readable schema form: a reader sees what is refused, not a regex.
READABLE_PATTERNS: dict[str, dict[str, Any]] = {NOT_STAR: {"not": {"const": "*"}}}
_KEYWORDS = {
    "min_length": "minLength",
    "max_length": "maxLength",
    "ge": "minimum",
    "le": "maximum",
    "gt": "exclusiveMinimum",
    "lt": "exclusiveMaximum",
    "multiple_of": "multipleOf",
    "pattern": "pattern",
}
_ARRAY_KEYWORDS = {"minLength": "minItems", "maxLength": "maxItems"}


def schema_for(name: str) -> dict[str, Any]:
    """The published schema of one event, as a dict."""
    info = inspect.type_info(EVENTS[name])
    if not isinstance(info, inspect.StructType):
        raise TypeError(f"{name} is not a struct")
    doc = " ".join((EVENTS[name].__doc__ or "").split())
    return {
        "$schema": DIALECT,
        "$id": f"{BASE_ID}{name}.json",
        "title": name,
        "description": doc,
        **_record(info),
    }


def render(name: str) -> str:
    """The file text of one schema: two-space indent, declared order, trailing newline."""
    return json.dumps(schema_for(name), indent=2, ensure_ascii=False) + "\n"


def _record(info: inspect.StructType) -> dict[str, Any]:
    return {
        "type": "object",
        "properties": {f.encode_name: _field(f) for f in info.fields},
        "required": [f.encode_name for f in info.fields if f.required or f.name in ALWAYS_REQUIRED],
        "additionalProperties": False,
    }


def _field(field: inspect.Field) -> dict[str, Any]:
    out = _value(field.type)
    scalar = isinstance(field.default, int | float | str) and not isinstance(field.default, bool)
    if scalar and field.name not in ALWAYS_REQUIRED:
        out["default"] = field.default
    return out


def _value(t: inspect.Type) -> dict[str, Any]:
    """One value's schema; an optional value is its type with "null" added."""
    if isinstance(t, inspect.UnionType):
        kinds = [k for k in t.types if not isinstance(k, inspect.NoneType)]
        if len(kinds) != 1:
            raise TypeError(f"a union of several value types has no schema form here: {t}")
        out = _value(kinds[0])
        if any(isinstance(k, inspect.NoneType) for k in t.types):
            out["type"] = [out["type"], "null"]
        return out
    if isinstance(t, inspect.Metadata):
        return _annotated(t)
    return _plain(t)


def _annotated(t: inspect.Metadata) -> dict[str, Any]:
    """A value with a description (msgspec folds the other constraints into the type)."""
    out = _value(t.type)
    extra = dict(t.extra_json_schema or {})
    description = extra.pop("description", None)
    if extra:
        raise TypeError(f"schema keywords without a counterpart here: {sorted(extra)}")
    if description:
        out["description"] = description
    return out


def _plain(t: inspect.Type) -> dict[str, Any]:
    if isinstance(t, inspect.StrType | inspect.IntType | inspect.FloatType):
        out = {inspect.StrType: "string", inspect.IntType: "integer", inspect.FloatType: "number"}[type(t)]
        return {"type": out, **_builtin_constraints(t)}
    if isinstance(t, inspect.BoolType):
        return {"type": "boolean"}
    if isinstance(t, inspect.DateTimeType):
        return {"type": "string", "format": "date-time"}
    if isinstance(t, inspect.DictType):
        return {"type": "object"}
    if isinstance(t, inspect.VarTupleType | inspect.ListType):
        return {"type": "array", "items": _value(t.item_type), **_builtin_constraints(t)}
    if isinstance(t, inspect.LiteralType):
        values = list(t.values)
        kind = "integer" if all(isinstance(v, int) for v in values) else "string"
        return {"type": kind, "const": values[0]} if len(values) == 1 else {"type": kind, "enum": values}
    if isinstance(t, inspect.StructType):
        return _record(t)
    raise TypeError(f"no schema form for {t}")


def _builtin_constraints(t: Any) -> dict[str, Any]:
    """Constraints msgspec folds into the type itself (Meta on a str, number or sequence), each
    with its schema keyword, so none can be dropped on the way."""
    array = isinstance(t, inspect.VarTupleType | inspect.ListType)
    out: dict[str, Any] = {}
    for key, schema_key in _KEYWORDS.items():
        value = getattr(t, key, None)
        if value is None:
            continue
        if key == "pattern":
            out.update(READABLE_PATTERNS.get(value, {"pattern": value}))
        else:
            out[_ARRAY_KEYWORDS.get(schema_key, schema_key) if array else schema_key] = value
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m processors.contracts.generate",
        description="Write the event JSON Schemas in processors/contracts/schemas/ from the structs in "
        "processors/contracts/events.py.",
    )
    parser.add_argument("--check", action="store_true", help="only compare; exit 1 when a file differs")
    args = parser.parse_args(argv)
    stale = [name for name in EVENTS if _read(name) != render(name)]
    if args.check:
        for name in stale:
            print(f"schemas/{name}.json differs from events.py; run python -m processors.contracts.generate")
        return 1 if stale else 0
    for name in stale:
        (SCHEMA_DIR / f"{name}.json").write_text(render(name), encoding="utf-8")
        print(f"wrote schemas/{name}.json")
    return 0


def _read(name: str) -> str:
    path = SCHEMA_DIR / f"{name}.json"
    return path.read_text(encoding="utf-8") if path.exists() else ""


if __name__ == "__main__":
    sys.exit(main())
