"""Output event ids stay within the schemas' 200 characters, deterministic and readable when
they fit (processors/records.py)."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from processors.records import MAX_EVENT_ID, output_event_id

ids = st.text(min_size=1, max_size=200)


@given(ids, ids)
def test_an_output_id_fits_the_schema_and_is_the_same_every_time(task_id: str, event_id: str) -> None:
    natural = f"{task_id}:{event_id}"
    made = output_event_id("schedule", natural)
    assert len(made) <= MAX_EVENT_ID
    assert made == output_event_id("schedule", natural)
    if len(natural) + len("schedule:") <= MAX_EVENT_ID:
        assert made == f"schedule:{natural}"
    else:
        assert made.startswith("schedule:sha256:") and len(made) == len("schedule:sha256:") + 64


@given(ids, ids)
def test_different_sources_make_different_ids(first: str, second: str) -> None:
    if first != second:
        assert output_event_id("duplicate", first) != output_event_id("duplicate", second)
