"""The rules that tell an intact partition log from a lost or replaced one (no I/O)."""

from __future__ import annotations

from streams.worker.log_rules import (
    Anchor,
    LogState,
    PartitionCheck,
    Probe,
    fingerprint,
    judge,
    offset_to_probe,
    overrun,
)

RECORD = fingerprint(b"T1", b'{"event_id": "e1"}')


def test_the_anchor_is_read_back_whenever_the_log_still_holds_its_offset() -> None:
    assert offset_to_probe(stored=100, anchor=Anchor(99, RECORD), log_start=0, log_end=60) == 99
    assert offset_to_probe(stored=100, anchor=Anchor(99, RECORD), log_start=0, log_end=100) == 99


def test_without_an_anchor_only_a_position_past_the_reported_end_is_checked() -> None:
    # Tansu's end offsets can be one batch short: look at the record before the position.
    assert offset_to_probe(stored=100, anchor=None, log_start=0, log_end=91) == 99
    assert offset_to_probe(stored=100, anchor=None, log_start=0, log_end=100) is None
    # Retention removed the anchor's offset: nothing left to compare with.
    assert offset_to_probe(stored=100, anchor=Anchor(10, RECORD), log_start=50, log_end=120) is None


def test_verdicts() -> None:
    anchor = Anchor(99, RECORD)
    assert judge(100, anchor, Probe(99, RECORD))[0] is LogState.INTACT
    assert judge(100, anchor, Probe(99, None))[0] is LogState.LOST
    assert judge(100, anchor, Probe(99, fingerprint(b"T1", b'{"event_id": "other"}')))[0] is LogState.REPLACED
    assert judge(100, None, Probe(99, RECORD))[0] is LogState.INTACT
    assert judge(100, None, None)[0] is LogState.INTACT


def test_fingerprints_tell_a_missing_key_from_an_empty_one() -> None:
    assert fingerprint(None, b"v") != fingerprint(b"", b"v")
    assert fingerprint(b"k", b"v") == fingerprint(b"k", b"v")


def test_a_log_starting_after_the_stored_position_was_overrun_by_retention_and_says_by_how_much() -> None:
    state, detail = overrun(stored=40, log_start=125)
    assert state is LogState.OVERRUN
    assert "85 records were deleted by retention" in detail
    check = PartitionCheck("t", 0, stored=40, log_start=125, log_end=130, state=state, detail=detail)
    assert check.lost_to_retention == 85
    # Other verdicts never count records lost to retention.
    intact = PartitionCheck("t", 0, 40, 0, 130, LogState.INTACT, "position inside the log")
    assert intact.lost_to_retention == 0
