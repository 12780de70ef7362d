"""The published JSON Schemas are generated from the event structs (processors/contracts/events.py)
and checked in: a struct changed without regenerating, or a schema edited by hand, fails here."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

import msgspec
import pytest
from msgspec import UNSET, Meta, Struct, UnsetType

from processors.contracts import generate
from processors.contracts.events import EVENTS, NOT_STAR


@pytest.mark.parametrize("name", sorted(EVENTS))
def test_the_checked_in_schema_is_the_generated_one(name: str) -> None:
    on_disk = (generate.SCHEMA_DIR / f"{name}.json").read_text(encoding="utf-8")
    assert on_disk == generate.render(name), f"run python -m processors.contracts.generate ({name})"


def test_check_mode_reports_nothing_stale(capsys: pytest.CaptureFixture[str]) -> None:
    assert generate.main(["--check"]) == 0
    assert capsys.readouterr().out == ""


class _Inner(Struct, frozen=True, forbid_unknown_fields=True):
    """Nested records carry no description of their own."""

    label: Annotated[str, Meta(min_length=1, description="A label.")]
    weights: tuple[float, ...]


class _Sample(Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """A  sample
    event."""

    event_id: Annotated[str, Meta(max_length=5)]
    schema_version: Literal[1] = 1
    at: Annotated[datetime, Meta(tz=True)]
    mode: Literal["b", "a"]
    kind: Annotated[str, Meta(pattern=NOT_STAR)] | None = None
    level: Annotated[int, Meta(ge=0, le=9)] = 3
    inner: tuple[_Inner, ...] = ()
    extra: Annotated[tuple[str, ...], Meta(min_length=1)] | UnsetType = UNSET


def test_a_struct_becomes_the_schema_a_reader_expects(monkeypatch: pytest.MonkeyPatch) -> None:
    """Known answer: every mapping rule at once (required fields, nullable values, defaults,
    literals, nested records, sequence bounds, the readable "*" refusal, unset optionals)."""
    monkeypatch.setitem(EVENTS, "sample", _Sample)
    assert generate.schema_for("sample") == {
        "$schema": "https://json-schema.org/draft-07/schema#",
        "$id": "https://tasksage.dev/schemas/sample.json",
        "title": "sample",
        "description": "A sample event.",
        "type": "object",
        "properties": {
            "event_id": {"type": "string", "maxLength": 5},
            "schema_version": {"type": "integer", "const": 1},
            "at": {"type": "string", "format": "date-time"},
            "mode": {"type": "string", "enum": ["a", "b"]},
            "kind": {"type": ["string", "null"], "not": {"const": "*"}},
            "level": {"type": "integer", "minimum": 0, "maximum": 9, "default": 3},
            "inner": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {
                        "label": {"type": "string", "minLength": 1, "description": "A label."},
                        "weights": {"type": "array", "items": {"type": "number"}},
                    },
                    "required": ["label", "weights"],
                    "additionalProperties": False,
                },
            },
            "extra": {"type": "array", "items": {"type": "string"}, "minItems": 1},
        },
        "required": ["event_id", "schema_version", "at", "mode"],
        "additionalProperties": False,
    }


def test_a_type_without_a_schema_form_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    odd = msgspec.defstruct("Odd", [("event_id", str), ("either", int | str)], forbid_unknown_fields=True)
    monkeypatch.setitem(EVENTS, "odd", odd)
    with pytest.raises(TypeError, match="several value types"):
        generate.schema_for("odd")
