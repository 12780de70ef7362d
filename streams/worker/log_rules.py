"""The rules that judge a partition's log against the stored position: pure, so they are tested
with plain tables (tests/faults/test_log_integrity_rules.py). The reasons behind them are in
streams/worker/log_integrity.py, which applies them on every partition assignment."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from enum import StrEnum


class LogState(StrEnum):
    INTACT = "intact"
    LOST = "lost"
    REPLACED = "replaced"
    OVERRUN = "overrun by retention"


@dataclass(frozen=True, slots=True)
class Anchor:
    offset: int
    fingerprint: bytes


@dataclass(frozen=True, slots=True)
class Probe:
    """What the broker holds at one offset; fingerprint None when there is no record there."""

    offset: int
    fingerprint: bytes | None


@dataclass(frozen=True, slots=True)
class PartitionCheck:
    topic: str
    partition: int
    stored: int
    log_start: int
    log_end: int
    state: LogState
    detail: str

    @property
    def lost_to_retention(self) -> int:
        """Records deleted before they were processed (only for an OVERRUN log)."""
        return self.log_start - self.stored if self.state is LogState.OVERRUN else 0

    @property
    def describe(self) -> str:
        return (
            f"{self.topic}[{self.partition}] stored position {self.stored}, "
            f"log offsets {self.log_start}..{self.log_end}: {self.detail}"
        )


def fingerprint(key: bytes | None, value: bytes | None) -> bytes:
    digest = hashlib.sha256()
    for part in (key, value):
        digest.update(b"\x00" if part is None else b"\x01" + len(part).to_bytes(8, "big") + part)
    return digest.digest()[:16]


def offset_to_probe(stored: int, anchor: Anchor | None, log_start: int, log_end: int) -> int | None:
    """The offset to read back to judge the log, or None when the offsets settle it."""
    if anchor is not None and log_start <= anchor.offset < stored:
        return anchor.offset
    if stored <= log_end:
        return None
    # Ahead of the reported end: maybe a loss, maybe only the broker's short end offset.
    return stored - 1


def judge(stored: int, anchor: Anchor | None, probe: Probe | None) -> tuple[LogState, str]:
    if probe is None:
        return LogState.INTACT, "position inside the log"
    if probe.fingerprint is None:
        return (
            LogState.LOST,
            f"no record at offset {probe.offset}, which was processed before: the log is shorter "
            f"than the position (broker restarted without its data?)",
        )
    if anchor is not None and probe.offset == anchor.offset and probe.fingerprint != anchor.fingerprint:
        return (
            LogState.REPLACED,
            f"the record at offset {probe.offset} is not the one processed there: the log was replaced",
        )
    return LogState.INTACT, f"record at offset {probe.offset} as processed"


def overrun(stored: int, log_start: int) -> tuple[LogState, str]:
    """The log starts after the stored position: the records between were deleted unread."""
    return (
        LogState.OVERRUN,
        f"the log starts at {log_start}, after the stored position: {log_start - stored} records "
        f"were deleted by retention before they were processed",
    )
