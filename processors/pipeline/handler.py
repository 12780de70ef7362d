"""Decode a batch, run its processor under the failure policy, never lose or stop on a record.

Retriable failures (database or embedding provider down) retry the whole batch with backoff
for as long as it takes; the stream waits instead of dropping. Anything else is narrowed down
by bisection to the records that cause it, which go to the dead-letter topic with the reason.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Protocol, runtime_checkable

import orjson

from processors.errors import InvalidEvent
from processors.failures import Backoff, Verdict, classify
from processors.records import BatchResult, Incoming, RawRecord, Rejected, SourceRef

log = logging.getLogger(__name__)

Decoder = Callable[[bytes, int], Any]
# A batch decoded: the events that parsed, and the records rejected with their reason.
Decoded = tuple[list[Incoming[Any]], list[Rejected]]


class BatchProcessor(Protocol):
    # Whether a batch applies outcomes (which plans made ahead for task batches would miss):
    # the worker plans the next task batch ahead only while no such batch runs.
    changes_history: bool

    async def process(
        self, items: Sequence[Incoming[Any]], rejected: Sequence[Rejected], sources: Sequence[SourceRef]
    ) -> BatchResult: ...


@runtime_checkable
class PlansAhead(Protocol):
    """A processor that can start on the next batch while the current one commits."""

    def prepare_ahead(self, items: Sequence[Incoming[Any]]) -> None: ...

    def discard_ahead(self) -> None: ...


class RetryAbandoned(Exception):
    """Raised by an `on_retry` callback to hand the batch back unprocessed (the worker is
    stopping). Nothing of the batch was committed, so its next owner reads it again."""


def event_id_of(value: bytes | None) -> str | None:
    """Best effort, for dead-letter headers and de-duplication of rejected records."""
    if not value:
        return None
    try:
        doc = orjson.loads(value)
    except orjson.JSONDecodeError:
        return None
    event_id = doc.get("event_id") if isinstance(doc, dict) else None
    return event_id if isinstance(event_id, str) and 0 < len(event_id) <= 200 else None


def reject(record: RawRecord, error_class: str, message: str) -> Rejected:
    return Rejected(record.source, record.key, record.value, error_class, message, event_id_of(record.value))


def _undecodable(stream: str, record: RawRecord, exc: Exception) -> Rejected:
    """Decoding reads only the record's bytes, so any error it raises (a parser's RecursionError
    or MemoryError as much as an InvalidEvent) is the record's: it is dead-lettered, never raised
    into the consume loop, where it would stop the worker."""
    if isinstance(exc, InvalidEvent):
        return reject(record, type(exc).__name__, str(exc))
    reason = f"{stream} record cannot be decoded: {type(exc).__name__}: {exc}"
    return reject(record, "InvalidEvent", reason)


class StreamHandler:
    def __init__(
        self,
        stream: str,
        decoder: Decoder,
        processor: BatchProcessor,
        *,
        max_event_bytes: int,
        backoff: Backoff,
        on_retry: Callable[[Verdict, int, float], Awaitable[None]] | None = None,
        on_recovered: Callable[[], None] | None = None,
    ) -> None:
        self.stream = stream
        self.decoder = decoder
        self.processor = processor
        self.max_event_bytes = max_event_bytes
        self.backoff = backoff
        self.on_retry = on_retry
        self.on_recovered = on_recovered
        # Dead letters in a row caused by errors that are not data errors (InvalidEvent) before
        # the handler concludes that a bug or a broken dependency, not the data, is failing every
        # record, and waits instead of emptying the topic into the dead-letter topic. 0: never.
        self.systemic_after = 10
        self._unexplained_in_a_row = 0
        self._rng = random.Random()

    @property
    def changes_history(self) -> bool:
        """Whether this stream's batches apply outcomes, which plans made ahead would miss."""
        return self.processor.changes_history

    def prepare_ahead(self, items: Sequence[Incoming[Any]]) -> None:
        """Let the processor start on these decoded records, which run next (a hint: the
        batch is processed under the failure policy as always, and may not use it)."""
        if isinstance(self.processor, PlansAhead) and items:
            self.processor.prepare_ahead(items)

    def discard_ahead(self) -> None:
        if isinstance(self.processor, PlansAhead):
            self.processor.discard_ahead()

    def decode(self, records: Sequence[RawRecord]) -> Decoded:
        items: list[Incoming[Any]] = []
        rejected: list[Rejected] = []
        for record in records:
            if record.value is None:
                rejected.append(
                    reject(record, "InvalidEvent", f"{self.stream} record has no value (tombstone)")
                )
                continue
            try:
                items.append(
                    Incoming(self.decoder(record.value, self.max_event_bytes), record.source, record.value)
                )
            except Exception as exc:  # decoding is pure: whatever it raises is about the record
                rejected.append(_undecodable(self.stream, record, exc))
                log.warning(
                    "rejected topic=%s partition=%d offset=%d event_id=%s reason=%s",
                    record.topic,
                    record.partition,
                    record.offset,
                    event_id_of(record.value),
                    exc,
                )
        return items, rejected

    async def handle(
        self,
        records: Sequence[RawRecord],
        *,
        first_attempt: int = 0,
        decoded: Decoded | None = None,
    ) -> BatchResult:
        """Process records exactly once in effect; returns what happened and what to publish.
        `decoded`: `decode(records)`, when the caller decoded them ahead (first attempt only)."""
        if not records:
            return BatchResult()
        attempt = first_attempt
        while True:
            try:
                items, rejected = decoded if decoded is not None else self.decode(records)
                decoded = None
                result = await self.processor.process(items, rejected, [r.source for r in records])
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                verdict = classify(exc)
                if verdict.retriable:
                    delay = self.backoff.delay(attempt, self._rng)
                    first = records[0]
                    log.warning(
                        "retrying topic=%s partition=%d offset=%d records=%d attempt=%d in %.2fs: %s: %s",
                        first.topic,
                        first.partition,
                        first.offset,
                        len(records),
                        attempt + 1,
                        delay,
                        verdict.error_class,
                        verdict.message,
                    )
                    if self.on_retry is not None:
                        await self.on_retry(verdict, attempt, delay)
                    else:
                        await asyncio.sleep(delay)
                    attempt += 1
                    continue
                if attempt and self.on_recovered is not None:
                    self.on_recovered()  # the dependency answered; this error is about the data
                return await self._isolate(records, verdict, isinstance(exc, InvalidEvent))
            if attempt and self.on_recovered is not None:
                self.on_recovered()
            self._unexplained_in_a_row = 0
            return result

    async def _isolate(self, records: Sequence[RawRecord], verdict: Verdict, data_error: bool) -> BatchResult:
        if len(records) == 1:
            record = records[0]
            if not data_error:
                self._unexplained_in_a_row += 1
                if self.systemic_after and self._unexplained_in_a_row >= self.systemic_after:
                    return await self._wait_out_systemic(record, verdict)
            return await self.dead_letter(record, verdict.error_class, verdict.message)
        mid = len(records) // 2
        left = await self.handle(records[:mid])
        right = await self.handle(records[mid:])
        return BatchResult(
            processed=left.processed + right.processed,
            duplicates=left.duplicates + right.duplicates,
            dead_lettered=left.dead_lettered + right.dead_lettered,
            held=left.held + right.held,
            outputs=left.outputs + right.outputs,
        )

    async def _wait_out_systemic(self, record: RawRecord, first: Verdict) -> BatchResult:
        """Every record fails with the same kind of unexplained error: retry this one with backoff
        (the stream pauses, /healthz says why) until it passes or fails as bad data."""
        attempt = 0
        verdict = first
        while True:
            delay = self.backoff.delay(attempt, self._rng)
            waiting = Verdict(
                True,
                verdict.error_class,
                f"{self._unexplained_in_a_row} records in a row failed with {verdict.error_class}, which is "
                f"not a data error: a bug or a broken dependency is likely, so records are not "
                f"dead-lettered until it passes ({verdict.message})",
            )
            log.error(
                "systemic failure at topic=%s partition=%d offset=%d, retrying in %.2fs: %s",
                record.topic,
                record.partition,
                record.offset,
                delay,
                waiting.message,
            )
            if self.on_retry is not None:
                await self.on_retry(waiting, attempt, delay)
            else:
                await asyncio.sleep(delay)
            attempt += 1
            try:
                items, rejected = self.decode([record])
                result = await self.processor.process(items, rejected, [record.source])
            except asyncio.CancelledError:
                raise
            except InvalidEvent as exc:  # bad data after all: dead-letter it like any other
                self._unexplained_in_a_row = 0
                return await self._dead_letter(record, reject(record, type(exc).__name__, str(exc)))
            except Exception as exc:
                verdict = classify(exc)
                continue
            self._unexplained_in_a_row = 0
            if self.on_recovered is not None:
                self.on_recovered()
            return result

    async def dead_letter(self, record: RawRecord, error_class: str, message: str) -> BatchResult:
        """Dead-letter `record` with the reason, logged: a record bisection isolated, or one found
        to kill the process (which no exception handler can see), without processing it again."""
        log.error(
            "dead-lettering topic=%s partition=%d offset=%d event_id=%s: %s: %s",
            record.topic,
            record.partition,
            record.offset,
            event_id_of(record.value),
            error_class,
            message,
        )
        return await self._dead_letter(record, reject(record, error_class, message))

    async def _dead_letter(self, record: RawRecord, bad: Rejected) -> BatchResult:
        try:
            return await self.processor.process([], [bad], [bad.source])
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            verdict = classify(exc)
            delay = self.backoff.delay(0, self._rng)
            log.warning(
                "dead-letter write for topic=%s partition=%d offset=%d failed (%s: %s); "
                "processing the record again in %.2fs",
                record.topic,
                record.partition,
                record.offset,
                verdict.error_class,
                verdict.message,
                delay,
            )
            if self.on_retry is not None:
                await self.on_retry(verdict, 0, delay)
            else:
                await asyncio.sleep(delay)
            # The dependency failed under the dead-letter write too, so the record's own error
            # may have come from the same outage: process it again rather than dead-letter it
            # on a guess. A record that really is bad comes back here once the outage is over.
            return await self.handle([record], first_attempt=1)
