"""Cost accounting and the daily budget, around any embedder.

Every provider call is counted (texts, tokens, requests, estimated cost) in `embedding_usage`
per UTC day, provider and model, whoever made it: the worker, a backfill, a search. Before a
call, the day's spend plus the call's estimated cost is checked against the budget; over it,
the call is refused with EmbeddingBudgetExceeded. That error is retriable, so the worker's
failure policy waits (consumption pauses, no event is dropped or dead-lettered) until the day
turns or the budget is raised, and a backfill stops and can be rerun later.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any, Protocol

from processors.embedders.base import Embedder, Vector
from processors.embedders.providers import LOCAL_PROVIDER_NAMES
from processors.errors import EmbeddingBudgetExceeded

log = logging.getLogger(__name__)

# USD per million input tokens (OpenAI's list prices when written; configurable in Settings).
DEFAULT_PRICES_USD_PER_MILLION: dict[str, float] = {
    "text-embedding-3-small": 0.02,
    "text-embedding-3-large": 0.13,
    "text-embedding-ada-002": 0.10,
}
# Providers that compute on this machine: no per-token bill.
LOCAL_PROVIDERS = frozenset(LOCAL_PROVIDER_NAMES)


def price_per_million(provider: str, model: str, prices: Mapping[str, float]) -> float | None:
    """USD per million tokens for the model; 0 for local providers unless priced; None: unknown."""
    if model in prices:
        return float(prices[model])
    if provider in LOCAL_PROVIDERS:
        return 0.0
    return None


@dataclass(frozen=True, slots=True)
class Usage:
    day: date
    provider: str
    model: str
    texts: int
    tokens: int
    requests: int
    cost_usd: float


class UsageLedger(Protocol):
    async def spent_on(self, day: date) -> float:
        """Estimated USD spent on embeddings that day, all providers and models."""
        ...

    async def record(self, usage: Usage) -> None: ...


def utc_today() -> date:
    return datetime.now(UTC).date()


class MeteredEmbedder:
    """An Embedder that counts what the wrapped one costs and refuses calls over the budget.

    `enforce_budget=False` still counts (used for interactive search queries: a person's
    query costs next to nothing, and search must keep answering when ingestion is paused).
    """

    def __init__(
        self,
        inner: Embedder,
        ledger: UsageLedger,
        *,
        provider: str,
        price_usd_per_million: float | None,
        daily_budget_usd: float | None = None,
        enforce_budget: bool = True,
        on_usage: Callable[[Usage], None] | None = None,
        on_refused: Callable[[str, str, float, float], None] | None = None,
        today: Callable[[], date] = utc_today,
        record_interval_s: float = 0.0,
    ) -> None:
        self.inner = inner
        self.ledger = ledger
        self.provider = provider
        self.price = price_usd_per_million
        self.daily_budget_usd = daily_budget_usd
        self.enforce_budget = enforce_budget
        self.on_usage = on_usage
        self.on_refused = on_refused
        self.today = today
        self._unrecorded: list[Usage] = []  # the database was down when these calls were made
        self._recording = asyncio.Lock()
        # > 0: counts are written at most this often, merged, by a task of their own (see _record).
        self.record_interval_s = record_interval_s
        self._later: asyncio.Task[None] | None = None
        self._seen = {name: _int_attr(inner, name) for name in ("tokens_used", "requests_sent")}

    # -- the Embedder interface -----------------------------------------------------------

    @property
    def model_name(self) -> str:
        return self.inner.model_name

    @property
    def dimension(self) -> int:
        return self.inner.dimension

    def count_tokens(self, text: str) -> int:
        return self.inner.count_tokens(text)

    async def aclose(self) -> None:
        if self._later is not None:
            self._later.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._later
            self._later = None
        await self.flush()
        await self.inner.aclose()

    def __getattr__(self, name: str) -> Any:
        # Provider details (circuit state, counters) stay reachable for metrics and tests.
        if name == "inner":  # not set yet (copy, pickle): no recursion
            raise AttributeError(name)
        return getattr(self.inner, name)

    def cost_of(self, tokens: int) -> float:
        return 0.0 if self.price is None else tokens * self.price / 1_000_000

    async def embed(self, texts: Sequence[str]) -> list[Vector]:
        if not texts:
            return await self.inner.embed(texts)
        estimated_tokens = sum(self.inner.count_tokens(t) for t in texts)
        day = self.today()
        if self.enforce_budget and self.daily_budget_usd is not None:
            await self._check_budget(day, self.cost_of(estimated_tokens))
        vectors = await self.inner.embed(texts)
        # Totals from the provider's own counters when it keeps them (OpenAI reports tokens);
        # the difference to the last reading, so concurrent calls are never counted twice.
        tokens = self._advance("tokens_used", estimated_tokens)
        requests = self._advance("requests_sent", 1)
        usage = Usage(day, self.provider, self.model_name, len(texts), tokens, requests, self.cost_of(tokens))
        await self._record(usage)
        if self.on_usage is not None:
            self.on_usage(usage)
        return vectors

    # -- internals ------------------------------------------------------------------------

    async def _check_budget(self, day: date, cost: float) -> None:
        assert self.daily_budget_usd is not None
        if cost <= 0.0:
            return  # a free call (local model) never spends the budget
        spent = await self.ledger.spent_on(day) + sum(u.cost_usd for u in self._unrecorded if u.day == day)
        if spent + cost <= self.daily_budget_usd:
            return
        if self.on_refused is not None:
            self.on_refused(self.provider, self.model_name, spent, self.daily_budget_usd)
        raise EmbeddingBudgetExceeded(
            f"daily embedding budget of ${self.daily_budget_usd:.4f} reached: ${spent:.4f} spent on {day} (UTC), "
            f"this call of {self.model_name} would cost about ${cost:.6f}; embedding waits until 00:00 UTC",
            hint="raise TASKSAGE_EMBEDDING_DAILY_BUDGET_USD and restart to continue now; "
            "events wait in Kafka, rows missed by a stopped backfill are found by the next one",
        )

    async def _record(self, usage: Usage) -> None:
        """Count a call. Calls made while another call's counts are being written do not wait:
        that writer's loop takes theirs too, merged into one row per (day, provider, model), so
        concurrent callers cost one statement between them, not one each. With a record interval
        (the API, where every request embeds one query) no caller waits for the write: a task
        writes what came in during the interval, one upsert of the day's row per interval instead
        of one per request. The budget check counts what is not written yet in either case."""
        self._unrecorded.append(usage)
        if self.record_interval_s > 0:
            if self._later is None or self._later.done():
                self._later = asyncio.get_running_loop().create_task(self._flush_later())
            return
        if self._recording.locked():
            return
        await self.flush()

    async def _flush_later(self) -> None:
        await asyncio.sleep(self.record_interval_s)
        await self.flush()

    async def flush(self) -> None:
        """Write the counts not recorded yet (a database that is down keeps them for later)."""
        async with self._recording:
            while self._unrecorded:
                taken = len(self._unrecorded)
                merged = _merged(self._unrecorded[:taken])
                written = 0
                try:
                    for usage in merged:
                        await self.ledger.record(usage)
                        written += 1
                except Exception as exc:
                    # The vectors are paid for and must not be thrown away: count them next time.
                    self._unrecorded[:taken] = merged[written:]
                    log.warning(
                        "embedding usage not recorded yet (%s); %d calls pending", exc, len(self._unrecorded)
                    )
                    return
                del self._unrecorded[:taken]

    def _advance(self, counter: str, fallback: int) -> int:
        value = getattr(self.inner, counter, None)
        if not isinstance(value, int):
            return fallback
        delta = value - self._seen.get(counter, 0)
        self._seen[counter] = value
        return delta


def _int_attr(embedder: Embedder, name: str) -> int:
    value = getattr(embedder, name, 0)
    return value if isinstance(value, int) else 0


def _merged(calls: Sequence[Usage]) -> list[Usage]:
    """One usage per (day, provider, model), summed, in first-seen order."""
    out: dict[tuple[date, str, str], Usage] = {}
    for u in calls:
        key = (u.day, u.provider, u.model)
        have = out.get(key)
        out[key] = (
            u
            if have is None
            else Usage(
                u.day,
                u.provider,
                u.model,
                have.texts + u.texts,
                have.tokens + u.tokens,
                have.requests + u.requests,
                have.cost_usd + u.cost_usd,
            )
        )
    return list(out.values())
