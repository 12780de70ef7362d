"""Embed every row that has no current vector for a model: resumable, kill-safe, one per model.

Progress lives in the data, not in a checkpoint: a row is done once its vector for the model
and its current text is stored, and every page asks only for rows that are not done. A rerun
after any interruption therefore starts where the last one stopped, and nothing is missed.

No row is embedded twice, because:
- a page's provider call and the commit of its vectors run as one shielded step: cancelling the
  backfill (Ctrl-C, SIGTERM, task cancellation) lets the step in flight finish and commit first;
- vectors already paid for but not yet stored (the database failed) are kept for the retry;
- identical texts are embedded once (by content hash, also against vectors stored earlier);
- one backfill per model runs at a time (an advisory lock).
Only a hard kill (SIGKILL, power loss) inside the step can lose one page's vectors; that page is
embedded again by the next run, never skipped.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from processors.embedders.base import Embedder, Vector
from processors.errors import EmbeddingBudgetExceeded, TasksageError, WrongDimension
from processors.failures import Backoff, classify
from processors.postgres import coverage, stored_vectors
from processors.postgres.pool import Pool
from processors.search.types import SearchKind

log = logging.getLogger(__name__)
_STORE_KIND = {"messages": "message", "tasks": "task"}


class BackfillBusy(TasksageError):
    """Another backfill of the same model holds its lock."""


@dataclass(frozen=True, slots=True)
class Progress:
    kind: SearchKind
    done: int  # rows handled in this pass
    total: int  # rows that were missing when the pass started
    embedded: int  # texts sent to the provider so far (whole run)
    waiting: str | None = None  # why the backfill is waiting (provider down), if it is


@dataclass(slots=True)
class KindReport:
    rows: int = 0  # rows that got a current vector
    embedded: int = 0  # texts sent to the provider
    reused: int = 0  # rows given the vector of an identical text (stored earlier or in the page)
    skipped: int = 0  # rows whose text changed while their page was embedded (next pass)
    passes: int = 0


@dataclass(slots=True)
class BackfillReport:
    model: str
    kinds: dict[str, KindReport] = field(default_factory=dict)
    seconds: float = 0.0
    stopped: str | None = None  # why it stopped before finishing (budget), None when complete
    remaining: dict[str, int] = field(default_factory=dict)  # rows still missing at the end


class Backfill:
    def __init__(
        self,
        pool: Pool,
        embedder: Embedder,
        *,
        batch_size: int = 256,
        backoff: Backoff | None = None,
        max_passes: int = 3,
        on_progress: Callable[[Progress], None] | None = None,
    ) -> None:
        if batch_size < 1:
            raise ValueError("batch_size must be at least 1")
        self.pool = pool
        self.embedder = embedder
        self.model = embedder.model_name
        self.batch_size = batch_size
        self.backoff = backoff or Backoff(0.5, 30.0)
        self.max_passes = max_passes
        self.on_progress = on_progress
        self._unstored: dict[bytes, Vector] = {}  # paid for, not yet committed
        self._embedded = 0
        self._rng = random.Random()

    async def run(
        self,
        kinds: Sequence[SearchKind],
        *,
        follow: bool = False,
        follow_interval_s: float = 5.0,
        stop: asyncio.Event | None = None,
    ) -> BackfillReport:
        """Embed what is missing, pass after pass until a pass finds nothing (or `max_passes`).
        With `follow`, keep watching for new rows every `follow_interval_s` until `stop`."""
        stop = stop or asyncio.Event()
        report = BackfillReport(self.model, {k: KindReport() for k in kinds})
        started = time.perf_counter()
        async with self.pool.acquire() as lock_conn:
            if not await coverage.try_lock(lock_conn, self.model):
                raise BackfillBusy(
                    f"another backfill of model {self.model} is running",
                    hint="wait for it, or stop it; two would embed the same rows",
                )
            try:
                while True:
                    try:
                        await self._passes(kinds, report, stop)
                    except EmbeddingBudgetExceeded as exc:
                        report.stopped = str(exc)
                        break
                    if not follow or stop.is_set():
                        break
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(stop.wait(), follow_interval_s)
                    if stop.is_set():
                        break
            finally:
                await coverage.unlock(lock_conn, self.model)
            for kind in kinds:
                report.remaining[kind] = await coverage.missing_count(lock_conn, kind, self.model)
        report.seconds = time.perf_counter() - started
        return report

    async def _passes(self, kinds: Sequence[SearchKind], report: BackfillReport, stop: asyncio.Event) -> None:
        for kind in kinds:
            for _ in range(self.max_passes):
                if stop.is_set():
                    return
                async with self.pool.acquire() as conn:
                    total = await coverage.missing_count(conn, kind, self.model)
                if total == 0:
                    break
                report.kinds[kind].passes += 1
                await self._pass(kind, total, report.kinds[kind], stop)

    async def _pass(self, kind: SearchKind, total: int, report: KindReport, stop: asyncio.Event) -> None:
        after: str | None = None
        done = 0
        self._progress(Progress(kind, 0, total, self._embedded))
        while not stop.is_set():
            async with self.pool.acquire() as conn:
                page = await coverage.next_missing(conn, kind, self.model, after, self.batch_size)
            if not page:
                return
            after = page[-1].id
            # Shielded: a cancellation waits for this page's embed-and-commit, then propagates.
            step = asyncio.ensure_future(self._page_with_retries(kind, page, report, total, done))
            try:
                await asyncio.shield(step)
            except asyncio.CancelledError:
                if not step.done():
                    log.info("backfill interrupted: finishing the page in flight (%d rows) first", len(page))
                    await step
                raise
            done += len(page)
            self._progress(Progress(kind, min(done, total), total, self._embedded))

    async def _page_with_retries(
        self, kind: SearchKind, page: list[coverage.PendingRow], report: KindReport, total: int, done: int
    ) -> None:
        attempt = 0
        while True:
            try:
                await self._page(kind, page, report)
                return
            except EmbeddingBudgetExceeded:
                raise
            except Exception as exc:
                verdict = classify(exc)
                if not verdict.retriable:
                    raise
                delay = self.backoff.delay(attempt, self._rng)
                attempt += 1
                log.warning(
                    "backfill of %s (%s) waiting %.1fs after %s: %s",
                    kind,
                    self.model,
                    delay,
                    verdict.error_class,
                    verdict.message,
                )
                self._progress(
                    Progress(kind, done, total, self._embedded, f"{verdict.error_class}, retrying")
                )
                await asyncio.sleep(delay)

    async def _page(self, kind: SearchKind, page: list[coverage.PendingRow], report: KindReport) -> None:
        hashes = {row.content_hash for row in page}
        async with self.pool.acquire() as conn:
            known = await stored_vectors.vectors_by_hash(conn, _STORE_KIND[kind], self.model, list(hashes))
        known.update({h: v for h, v in self._unstored.items() if h in hashes})
        texts: dict[bytes, str] = {}
        for row in page:
            if row.content_hash not in known:
                texts.setdefault(row.content_hash, row.text)
        if texts:
            vectors = await self.embedder.embed(list(texts.values()))
            for vector in vectors:
                if vector.shape != (self.embedder.dimension,):
                    raise WrongDimension(
                        f"{self.model} returned a vector of shape {vector.shape}, "
                        f"expected ({self.embedder.dimension},)"
                    )
            fresh = dict(zip(texts.keys(), vectors, strict=True))
            self._unstored.update(fresh)
            known.update(fresh)
            self._embedded += len(fresh)
            report.embedded += len(fresh)
        rows = [(row.id, row.content_hash, known[row.content_hash]) for row in page]
        async with self.pool.acquire() as conn:
            stored = await coverage.store_if_current(conn, kind, self.model, rows)
        for h in texts:
            self._unstored.pop(h, None)
        report.rows += stored
        report.reused += max(0, stored - len(texts))  # rows served by a vector of the same text
        report.skipped += len(page) - stored

    def _progress(self, progress: Progress) -> None:
        if self.on_progress is not None:
            self.on_progress(progress)
