"""A seeded sample workload with ground truth: task families whose difficulty differs by
(agent, model), so a scheduler that learns should send easy work to cheap models.
Used by `tasksage demo` and tests; pure and deterministic for a given seed."""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from processors.contracts import ExecutionResult, MessageIngested, TaskCreated
from processors.scheduling.types import Arm

MODEL_COST_USD = {"small": 0.0005, "medium": 0.005, "large": 0.05}
MODEL_SPEED = {"small": 1.0, "medium": 1.8, "large": 3.0}


@dataclass(frozen=True, slots=True)
class Family:
    name: str
    kind: str
    agent: str
    templates: tuple[str, ...]
    success: tuple[float, float, float]  # small, medium, large
    base_duration_ms: float


_WORDS = {
    "module": ("billing", "auth", "search", "checkout", "inventory", "notifications", "reporting", "profile"),
    "service": ("payments-api", "user-db", "edge-proxy", "queue-broker", "cache-cluster", "mail-relay"),
    "topic": ("vector indexes", "rate limits", "retries", "caching", "pagination", "webhooks", "timeouts"),
    "a": ("PostgreSQL", "Kafka", "Redis", "gRPC", "GraphQL", "S3"),
    "b": ("MySQL", "Pulsar", "Memcached", "REST", "OpenAPI", "GCS"),
}

FAMILIES: tuple[Family, ...] = (
    Family(
        "code-simple",
        "code",
        "coder",
        (
            "fix typo in {module} error message",
            "rename helper function in {module} module",
            "add missing null check in {module} handler",
            "update {module} log message wording",
        ),
        (0.93, 0.96, 0.98),
        3_000,
    ),
    Family(
        "code-complex",
        "code",
        "coder",
        (
            "refactor {module} concurrency and locking across services with a schema migration",
            "redesign {module} transaction isolation and distributed locking under concurrency",
            "migrate {module} storage schema with zero downtime and concurrent writers",
        ),
        (0.30, 0.62, 0.92),
        12_000,
    ),
    Family(
        "research",
        "research",
        "researcher",
        (
            "compare {a} and {b} for {topic} and summarize the tradeoffs",
            "survey how {a} and {b} handle {topic} and recommend one",
        ),
        (0.45, 0.85, 0.94),
        8_000,
    ),
    Family(
        "qa",
        "qa",
        "generalist",
        (
            "answer customer question about {topic} in {module}",
            "summarize the {module} incident report about {topic}",
        ),
        (0.90, 0.95, 0.97),
        2_000,
    ),
    Family(
        "ops",
        "ops",
        "generalist",
        (
            "rotate credentials for {service}",
            "restart {service} after config change",
            "scale {service} replicas",
        ),
        (0.88, 0.94, 0.97),
        2_500,
    ),
)


# The planted weaknesses (SampleWorkload(planted=True), used by `tasksage demo`): what the
# insights must find. One arm fails on one family it otherwise would do well (a broken tool),
# one family no arm can do, and one arm is configured for work that never comes.
WEAK_ARM = Arm("generalist", "small")
WEAK_FAMILY = "qa"
WEAK_ERROR = "browser tool unavailable: the sandbox has no network access"
IMPOSSIBLE = Family(
    "ml-training",
    "ml",
    "coder",
    (
        "train a {topic} forecasting model for {module} on the GPU cluster",
        "fine-tune the {module} ranking model on last quarter's {topic} data with GPUs",
    ),
    (0.02, 0.04, 0.06),
    20_000,
)
IMPOSSIBLE_ERROR = "CUDA out of memory: no GPU is available to the agent"
UNUSED_ARM = Arm("translator", "small")
# Appended to the tier table by whoever runs the planted workload: an arm listed for a kind
# that no task has, so nothing ever picks it.
UNUSED_TIER_TOML = f"""
# Planted by the sample workload: an agent configured for work that never comes.
[[kinds.translate]]
agent = "{UNUSED_ARM.agent}"
model = "{UNUSED_ARM.model}"
cost_per_call_usd = 0.001
expected_duration_ms = 3000
prior_success = 0.9
"""
_ERRORS = {
    "code": "tests failed after the change",
    "research": "the answer missed the requested comparison",
    "qa": "the answer contradicts the knowledge base",
    "ops": "command exited with status 1",
}


@dataclass(frozen=True, slots=True)
class SampleTask:
    task: TaskCreated
    family: Family
    planted: bool = False

    def success_probability(self, arm: Arm) -> float:
        if self.planted and arm == WEAK_ARM and self.family.name == WEAK_FAMILY:
            return 0.02
        if arm.agent not in (self.family.agent, "generalist"):
            return 0.05
        penalty = 0.0 if arm.agent == self.family.agent else 0.08
        tier = ("small", "medium", "large").index(arm.model) if arm.model in MODEL_COST_USD else 1
        return max(0.0, self.family.success[tier] - penalty)

    def error_message(self, arm: Arm) -> str:
        if self.family is IMPOSSIBLE:
            return IMPOSSIBLE_ERROR
        if self.planted and arm == WEAK_ARM and self.family.name == WEAK_FAMILY:
            return WEAK_ERROR
        return _ERRORS.get(self.family.kind, "task did not pass its checks")


class SampleWorkload:
    def __init__(self, seed: int = 7, start: datetime | None = None, planted: bool = False) -> None:
        self.rng = random.Random(seed)
        self.clock = start or datetime(2026, 1, 1, tzinfo=UTC)
        self.count = 0
        self.planted = planted
        self.families = (*FAMILIES, IMPOSSIBLE) if planted else FAMILIES

    def _fill(self, template: str) -> str:
        return template.format(**{k: self.rng.choice(v) for k, v in _WORDS.items()})

    def tasks(self, n: int) -> list[SampleTask]:
        out = []
        for _ in range(n):
            self.count += 1
            family = self.rng.choice(self.families)
            self.clock += timedelta(seconds=self.rng.uniform(5, 60))
            task = TaskCreated(
                event_id=f"demo-task-{self.count}",
                occurred_at=self.clock,
                task_id=f"T{self.count:05d}",
                description=self._fill(self.rng.choice(family.templates)),
                kind=family.kind,
                priority=self.rng.choice((0, 0, 1, 2, 5)),
                deadline=self.clock + timedelta(hours=self.rng.choice((1, 4, 24))),
            )
            out.append(SampleTask(task, family, self.planted))
        return out

    def outcome(self, sample: SampleTask, arm: Arm, attempt: int = 1) -> ExecutionResult:
        success = self.rng.random() < sample.success_probability(arm)
        duration = (
            sample.family.base_duration_ms
            * MODEL_SPEED.get(arm.model, 1.5)
            * self.rng.lognormvariate(0, 0.25)
        )
        finished = sample.task.occurred_at + timedelta(milliseconds=duration)
        return ExecutionResult(
            event_id=f"demo-result-{sample.task.task_id}-{arm.agent}-{arm.model}-{attempt}",
            occurred_at=finished,
            task_id=sample.task.task_id,
            agent=arm.agent,
            model=arm.model,
            success=success,
            finished_at=finished,
            duration_ms=round(duration, 1),
            cost_usd=MODEL_COST_USD.get(arm.model, 0.01),
            error_message=None if success else sample.error_message(arm),
        )

    def message(self, sample: SampleTask) -> MessageIngested:
        return MessageIngested(
            event_id=f"demo-message-{sample.task.task_id}",
            occurred_at=sample.task.occurred_at,
            message_id=f"M-{sample.task.task_id}",
            source="chat",
            author=self.rng.choice(("ana", "bo", "chen", "dee")),
            content=f"Can someone {sample.task.description}?",
            task_id=sample.task.task_id,
        )


def strongest_arm(sample: SampleTask) -> Arm:
    return Arm(sample.family.agent, "large")
