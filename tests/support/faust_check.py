"""How tests/contract/test_faust_records.py holds a faust Record of streams/downstream/records.py
to its published JSON Schema (field names, JSON types, which fields may be missing, recursively
into list items) and to its golden example (decoded and encoded again, nothing lost)."""

from __future__ import annotations

import types
import typing
from typing import Any

import faust

JSON_TYPE = {str: "string", int: "integer", float: "number", bool: "boolean"}


def json_types(annotation: Any) -> tuple[set[str], Any]:
    """The JSON types an annotation admits, and the item annotation when it is a list."""
    args = typing.get_args(annotation)
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        found: set[str] = set()
        item = None
        for arg in args:
            kinds, inner = ({"null"}, None) if arg is type(None) else json_types(arg)
            found |= kinds
            item = item or inner
        return found, item
    if typing.get_origin(annotation) is list:
        return {"array"}, args[0]
    if isinstance(annotation, type) and issubclass(annotation, faust.Record):
        return {"object"}, None
    return {JSON_TYPE[annotation]}, None


def compare(where: str, record: type[faust.Record], schema: dict[str, Any]) -> list[str]:
    out = []
    fields = record._options.descriptors
    properties = schema["properties"]
    required = set(schema.get("required", []))
    for name in sorted(set(properties) - set(fields)):
        out.append(f"{where}.{name}: in the schema, not in the Record")
    for name in sorted(set(fields) - set(properties)):
        out.append(f"{where}.{name}: in the Record, not in the schema")
    for name in sorted(set(fields) & set(properties)):
        spec = properties[name]
        wanted = set(spec["type"]) if isinstance(spec["type"], list) else {spec["type"]}
        have, item = json_types(fields[name].type)
        if have != wanted:
            out.append(f"{where}.{name}: Record admits {sorted(have)}, schema {sorted(wanted)}")
        if name not in required and fields[name].required:
            out.append(f"{where}.{name}: optional in the schema, required (no default) in the Record")
        if name in required and "null" not in wanted and not fields[name].required:
            out.append(f"{where}.{name}: required in the schema, has a default in the Record")
        items = spec.get("items", {})
        if isinstance(item, type) and issubclass(item, faust.Record):
            out += compare(f"{where}.{name}[]", item, items)
        elif item is not None and items.get("type") != JSON_TYPE.get(item):
            out.append(f"{where}.{name}[]: Record items {item}, schema {items.get('type')}")
    return out


def round_trip(where: str, sent: Any, back: Any) -> list[str]:
    """Everything in the golden document comes back unchanged."""
    if isinstance(sent, dict):
        out = []
        for key, value in sent.items():
            if key not in back:
                out.append(f"{where}.{key}: lost")
            else:
                out += round_trip(f"{where}.{key}", value, back[key])
        return out
    if isinstance(sent, list):
        if len(sent) != len(back):
            return [f"{where}: {len(sent)} items sent, {len(back)} back"]
        return [
            p
            for i, (a, b) in enumerate(zip(sent, back, strict=True))
            for p in round_trip(f"{where}[{i}]", a, b)
        ]
    return [] if sent == back else [f"{where}: {sent!r} came back as {back!r}"]
