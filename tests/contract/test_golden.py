"""Golden files: one complete, realistic event per published schema. Input events must decode and
re-encode to exactly their golden bytes; output records built from fixed values must encode to
exactly theirs, so any change in what producers send or consumers receive shows up as a diff."""

from __future__ import annotations

import msgspec
import orjson
import pytest

from processors.contracts import encode
from processors.contracts.codec import SCHEMA_NAMES, load_schema, validate_output
from processors.contracts.events import (
    EVENTS,
    ScheduleSnapshot,
    SnapshotEntry,
)
from processors.contracts.inputs import DECODERS
from tests.contract.examples import (
    GOLDEN_DIR,
    INPUT_SCHEMAS,
    OUTPUT_RECORDS,
    REFRESH_COMMAND,
    canonical,
    encoded_output,
    golden_path,
)

RECORD_TYPES = EVENTS


def test_there_is_one_golden_file_per_schema() -> None:
    assert sorted(p.stem for p in GOLDEN_DIR.glob("*.json")) == sorted(SCHEMA_NAMES)


@pytest.mark.parametrize("name", SCHEMA_NAMES)
def test_golden_event_is_valid_complete_and_canonical(name: str) -> None:
    payload = golden_path(name).read_bytes()
    validate_output(name, payload)
    doc = orjson.loads(payload)
    schema = load_schema(name)
    assert set(doc) == set(schema["properties"]), "a golden event shows every field of its schema"
    assert payload == canonical(payload), f"keep golden files canonical (sorted keys, 2-space indent): {name}"


@pytest.mark.parametrize("name", SCHEMA_NAMES)
def test_record_fields_match_the_schema(name: str) -> None:
    """The typed records and the schemas describe the same fields, required ones included."""
    schema = load_schema(name)
    fields = {f.encode_name: f for f in msgspec.structs.fields(RECORD_TYPES[name])}
    assert set(fields) == set(schema["properties"])
    without_default = {n for n, f in fields.items() if f.required}
    assert without_default <= set(schema["required"]), "a field the record requires is required by the schema"


@pytest.mark.parametrize("name", INPUT_SCHEMAS)
def test_input_golden_decodes_and_encodes_back_to_the_same_bytes(name: str) -> None:
    payload = golden_path(name).read_bytes()
    event = DECODERS[name](payload, 1_000_000)
    assert isinstance(event, RECORD_TYPES[name])
    assert canonical(encode(event)) == payload, f"{name}: a field was lost or changed by decode/encode"


@pytest.mark.parametrize("name", sorted(OUTPUT_RECORDS))
def test_output_record_encodes_to_its_golden_bytes(name: str) -> None:
    produced = encoded_output(name)
    validate_output(name, produced)
    expected = golden_path(name).read_bytes()
    assert produced == expected, (
        f"the encoding of {name} changed; downstream consumers will see this diff. If deliberate, "
        f"run `{REFRESH_COMMAND}` and commit the updated golden with the code change."
    )


def test_output_goldens_decode_to_the_records_they_came_from() -> None:
    from processors.contracts.codec import (
        decode_insights_snapshot,
        decode_message_duplicate,
        decode_schedule_snapshot,
        decode_task_schedule,
    )

    decoders = {
        "task-schedule": decode_task_schedule,
        "schedule-snapshot": decode_schedule_snapshot,
        "message-duplicate": decode_message_duplicate,
        "insights-snapshot": decode_insights_snapshot,
    }
    for name, build in OUTPUT_RECORDS.items():
        assert decoders[name](golden_path(name).read_bytes()) == build(), name
    snapshot = decode_schedule_snapshot(golden_path("schedule-snapshot").read_bytes())
    assert all(isinstance(e, SnapshotEntry) for e in snapshot.entries)


def test_records_without_optional_information_keep_the_plain_shape() -> None:
    """A schedule every arm can serve and a snapshot without dependencies encode without the
    optional fields, exactly as before they existed, and decode with them unset."""
    from processors.contracts.codec import decode_schedule_snapshot, decode_task_schedule

    full = OUTPUT_RECORDS["task-schedule"]()
    plain = msgspec.structs.replace(full, unsatisfiable_requirements=msgspec.UNSET)
    payload = encode(plain)
    validate_output("task-schedule", payload)
    assert "unsatisfiable_requirements" not in orjson.loads(payload)
    assert decode_task_schedule(payload).unsatisfiable_requirements is msgspec.UNSET

    snapshot = OUTPUT_RECORDS["schedule-snapshot"]()
    flat = ScheduleSnapshot(
        event_id=snapshot.event_id,
        occurred_at=snapshot.occurred_at,
        pending_count=2,
        entries=snapshot.entries[:2],
    )
    payload = encode(flat)
    validate_output("schedule-snapshot", payload)
    doc = orjson.loads(payload)
    assert set(doc) == {"event_id", "schema_version", "occurred_at", "pending_count", "entries"}
    assert all("blocked_by" not in e for e in doc["entries"])
    decoded = decode_schedule_snapshot(payload)
    assert decoded.blocked_count is msgspec.UNSET
    assert decoded.dependency_problems is msgspec.UNSET
    assert [e.blocked_by for e in decoded.entries] == [msgspec.UNSET, msgspec.UNSET]
    full_snapshot = decode_schedule_snapshot(encode(snapshot))
    assert full_snapshot.entries[2].blocked_by == ("T-1042", "T-0999")
