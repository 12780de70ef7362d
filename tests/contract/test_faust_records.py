"""The faust Records for downstream apps (streams/downstream/records.py) match the published
JSON Schemas field for field and decode the golden examples without losing anything."""

from __future__ import annotations

import json
from pathlib import Path

import faust
import pytest

from streams.downstream.records import RECORDS
from tests.support.faust_check import compare, round_trip

ROOT = Path(__file__).resolve().parents[2]
SCHEMAS = ROOT / "processors" / "contracts" / "schemas"
GOLDEN = ROOT / "tests" / "contract" / "golden"
# Every output event a downstream app may consume (the rest of schemas/ are inputs or files).
OUTPUTS = ["insights-snapshot", "message-duplicate", "schedule-snapshot", "task-schedule"]


def test_every_output_event_has_a_record() -> None:
    assert sorted(RECORDS) == OUTPUTS


@pytest.mark.parametrize("name", OUTPUTS)
def test_the_record_is_the_published_schema(name: str) -> None:
    schema = json.loads((SCHEMAS / f"{name}.json").read_text())
    assert compare(name, RECORDS[name], schema) == []


@pytest.mark.parametrize("name", OUTPUTS)
def test_the_golden_example_survives_a_decode_and_encode(name: str) -> None:
    golden = json.loads((GOLDEN / f"{name}.json").read_text())
    decoded = RECORDS[name].from_data(golden)
    assert isinstance(decoded, faust.Record)
    assert round_trip(name, golden, json.loads(decoded.dumps())) == []


def test_a_renamed_or_retyped_field_is_reported() -> None:
    """The comparison itself: a schema that drifted from the Record yields one problem each."""
    schema = json.loads((SCHEMAS / "insights-snapshot.json").read_text())
    arms = schema["properties"]["arms"]["items"]["properties"]
    arms["pending"]["type"] = "number"
    arms["queued"] = arms.pop("flags")
    problems = compare("insights-snapshot", RECORDS["insights-snapshot"], schema)
    assert problems == [
        "insights-snapshot.arms[].queued: in the schema, not in the Record",
        "insights-snapshot.arms[].flags: in the Record, not in the schema",
        "insights-snapshot.arms[].pending: Record admits ['integer'], schema ['number']",
    ]
