"""A seeded, diverse benchmark workload: history with outcomes, and the events to publish.

The demo workload's templates alone give a few hundred distinct descriptions; a vector index
over 100k near-identical rows behaves nothing like one over real text. Each description here
adds a few words from a synthetic vocabulary and an identifier, so nearly every text and
vector is distinct while task families (and their success rates by model) stay learnable.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

from processors.contracts import ExecutionResult, MessageIngested, TaskCreated
from processors.demo_workload import _WORDS, FAMILIES, MODEL_COST_USD, MODEL_SPEED, Family
from processors.postgres.bulk_load import HistoryTask
from processors.scheduling.types import Arm

_ONSETS = ("b", "c", "d", "f", "g", "k", "l", "m", "n", "p", "r", "s", "t", "v", "z", "st", "tr", "pl")
_VOWELS = ("a", "e", "i", "o", "u", "ai", "ou")
_CODAS = ("", "n", "r", "s", "t", "x", "l")
MODELS = ("small", "medium", "large")


def vocabulary(size: int = 3000, seed: int = 11) -> tuple[str, ...]:
    """Pronounceable pseudo-words: stable across runs, disjoint from the template words."""
    rng = random.Random(seed)
    words: set[str] = set()
    while len(words) < size:
        syllables = rng.randint(2, 3)
        words.add(
            "".join(rng.choice(_ONSETS) + rng.choice(_VOWELS) + rng.choice(_CODAS) for _ in range(syllables))
        )
    return tuple(sorted(words))


class BenchWorkload:
    """Deterministic for a given seed; ids carry a run label so runs never collide."""

    def __init__(self, label: str, seed: int = 42, start: datetime | None = None) -> None:
        self.label = label
        self.rng = random.Random(seed)
        self.words = vocabulary()
        self.clock = start or datetime(2025, 6, 1, tzinfo=UTC)
        self.count = 0
        # The arm each preloaded task's schedule chose (its first outcome's): upstream runs the
        # arm tasksage scheduled, so the outcomes published for preloaded tasks come from it.
        self.scheduled: dict[str, Arm] = {}

    def _description(self, family: Family) -> str:
        template = self.rng.choice(family.templates)
        text = template.format(**{k: self.rng.choice(v) for k, v in _WORDS.items()})
        extra = " ".join(self.rng.sample(self.words, self.rng.randint(2, 5)))
        return f"{text} ({extra}, ticket {self.rng.randint(1000, 999_999)})"

    def _tick(self) -> datetime:
        self.clock += timedelta(seconds=self.rng.uniform(1, 20))
        return self.clock

    def _outcome(self, task_id: str, family: Family, arm: Arm, at: datetime, n: int) -> ExecutionResult:
        tier = MODELS.index(arm.model)
        success = self.rng.random() < family.success[tier] - (0.0 if arm.agent == family.agent else 0.08)
        duration = family.base_duration_ms * MODEL_SPEED[arm.model] * self.rng.lognormvariate(0, 0.25)
        finished = at + timedelta(milliseconds=duration)
        return ExecutionResult(
            event_id=f"{self.label}-r{n}",
            occurred_at=finished,
            task_id=task_id,
            agent=arm.agent,
            model=arm.model,
            success=success,
            finished_at=finished,
            duration_ms=round(duration, 1),
            cost_usd=MODEL_COST_USD[arm.model],
            error_message=None if success else "task did not pass its checks",
        )

    def history(self, n: int) -> Iterator[HistoryTask]:
        """Past tasks, each with one or two outcomes (the evidence neighbours lend)."""
        for _ in range(n):
            self.count += 1
            family = self.rng.choice(FAMILIES)
            at = self._tick()
            task_id = f"{self.label}-h{self.count}"
            arms = self.rng.sample(MODELS, self.rng.choice((1, 1, 2)))
            self.scheduled[task_id] = Arm(family.agent, arms[0])
            outcomes = tuple(
                self._outcome(task_id, family, Arm(family.agent, model), at, self.count * 4 + i)
                for i, model in enumerate(arms)
            )
            yield HistoryTask(
                task_id, self._description(family), family.kind, self.rng.choice((0, 0, 1, 2)), at, outcomes
            )

    @staticmethod
    def arms() -> list[Arm]:
        """Every arm an outcome of this workload can come from."""
        return sorted({Arm(family.agent, model) for family in FAMILIES for model in MODELS})

    def task_created(self, phase: str, i: int) -> TaskCreated:
        family = self.rng.choice(FAMILIES)
        at = self._tick()
        return TaskCreated(
            event_id=f"{self.label}-{phase}-t{i}",
            occurred_at=at,
            task_id=f"{self.label}-{phase}-T{i}",
            description=self._description(family),
            kind=family.kind,
            priority=self.rng.choice((0, 0, 1, 2, 5)),
            deadline=at + timedelta(hours=self.rng.choice((1, 4, 24))),
        )

    def execution_result(
        self, phase: str, i: int, history_size: int, first_outcome_of: str | None = None
    ) -> ExecutionResult:
        """An outcome for a task of the preloaded history, or the first outcome of a new task."""
        task_id = first_outcome_of or f"{self.label}-h{self.rng.randint(1, max(1, history_size))}"
        family = self.rng.choice(FAMILIES)
        arm = self.scheduled.get(task_id) or Arm(family.agent, self.rng.choice(MODELS))
        result = self._outcome(task_id, family, arm, self._tick(), i)
        return ExecutionResult(
            event_id=f"{self.label}-{phase}-r{i}",
            occurred_at=result.occurred_at,
            task_id=result.task_id,
            agent=result.agent,
            model=result.model,
            success=result.success,
            finished_at=result.finished_at,
            duration_ms=result.duration_ms,
            cost_usd=result.cost_usd,
            error_message=result.error_message,
        )

    def message(self, phase: str, i: int) -> MessageIngested:
        family = self.rng.choice(FAMILIES)
        return MessageIngested(
            event_id=f"{self.label}-{phase}-m{i}",
            occurred_at=self._tick(),
            message_id=f"{self.label}-{phase}-M{i}",
            source="chat",
            author=self.rng.choice(("ana", "bo", "chen", "dee", "eli")),
            content=f"Can someone {self._description(family)}?",
            thread_id=f"thread-{self.rng.randint(1, 500)}",
        )
