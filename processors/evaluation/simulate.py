"""`tasksage simulate`: a synthetic evaluation dataset with known ground truth. Pure and seeded.

Model of the world
------------------
- Task families (the task kind) with a latent difficulty per task, d ~ Normal(mean_f, sd_f).
- Arms = agents x models. Success probability = sigmoid(capability_m + skill_{agent,family} - d):
  models differ in capability and price (about 10x per step), agents in skill per family
  (a specialist is good at its own families, weak elsewhere; the generalist is middling everywhere).
- The description says what the task is (family vocabulary) and, noisily, how hard it is:
  each task carries three marker words drawn from an easy / medium / hard vocabulary with
  probabilities that follow d, so similar descriptions have similar difficulty and the kind alone
  does not tell all. Success = sigmoid(SHARPNESS x margin): with SHARPNESS 2 most outcomes are
  decided by the margin, so an oracle that knows each outcome is not far above a router that
  knows only the true probabilities (reports show both as reference rows).
- Duration = family base x model speed x lognormal noise (failures take longer); cost = model price
  x task size, with a little noise. Every draw comes from random.Random(seed).

The true probability of each arm is stored per task (`truth`), never replayed, so reports can show
how close the learned probabilities come to the truth.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass

from processors.contracts import TaskCreated
from processors.evaluation.dataset import (
    EPOCH,
    ArmSpec,
    Dataset,
    DatasetHeader,
    DatasetTask,
    Outcome,
    arm_name,
)
from processors.scheduling.types import Arm, TierOption

DEFAULT_SEED = 11


@dataclass(frozen=True, slots=True)
class ModelSpec:
    name: str
    capability: float
    price_usd: float
    speed: float  # duration multiplier
    vendor_prior: float  # what a tier table would claim; the truth differs per family


@dataclass(frozen=True, slots=True)
class FamilySpec:
    name: str
    specialist: str  # agent with skill SPECIALIST on this family
    difficulty_mean: float
    difficulty_sd: float
    base_duration_ms: float
    size: float  # cost multiplier (longer contexts cost more)
    templates: tuple[str, ...]


MODELS: tuple[ModelSpec, ...] = (
    ModelSpec("small", 0.0, 0.0005, 1.0, 0.60),
    ModelSpec("medium", 1.6, 0.005, 1.8, 0.75),
    ModelSpec("large", 3.0, 0.05, 3.2, 0.88),
)
AGENTS = ("generalist", "coder", "researcher")
SPECIALIST, GENERALIST, OUTSIDER = 1.2, 0.2, -1.5
BIAS = 1.5  # shifts every arm up so that easy work is easy
SHARPNESS = 2.0  # how strongly capability minus difficulty decides the outcome (0: coin flips)

_SLOTS = {
    "module": ("billing", "auth", "search", "checkout", "inventory", "notifications", "reporting", "profile"),
    "service": ("payments-api", "user-db", "edge-proxy", "queue-broker", "cache-cluster", "mail-relay"),
    "topic": ("vector indexes", "rate limits", "retries", "caching", "pagination", "webhooks", "timeouts"),
    "tech": ("PostgreSQL", "Kafka", "Redis", "gRPC", "GraphQL", "S3", "MySQL", "Pulsar"),
    "audience": ("customers", "the support team", "executives", "new hires", "partners"),
}
_MARKERS = {
    "easy": ("quick", "small", "simple", "minor", "single-file", "routine", "trivial", "obvious"),
    "medium": ("several", "moderate", "careful", "tested", "cross-team", "documented", "staged"),
    "hard": ("distributed", "concurrent", "zero-downtime", "ambiguous", "legacy", "multi-region", "novel"),
}

FAMILIES: tuple[FamilySpec, ...] = (
    FamilySpec(
        "code-fix",
        "coder",
        -1.0,
        1.0,
        4_000,
        1.0,
        ("fix {m1} bug in {module} error handling", "patch {m1} {m2} issue in the {module} handler"),
    ),
    FamilySpec(
        "code-feature",
        "coder",
        1.0,
        1.2,
        15_000,
        2.0,
        ("implement {m1} {module} feature using {tech}", "add {m1} {m2} endpoint to {module} with {tech}"),
    ),
    FamilySpec(
        "code-architecture",
        "coder",
        3.0,
        1.0,
        40_000,
        4.0,
        ("redesign {module} storage on {tech}: {m1} and {m2}", "migrate {module} to {tech} {m1} {m2}"),
    ),
    FamilySpec(
        "research-lookup",
        "researcher",
        -0.5,
        1.0,
        6_000,
        1.5,
        ("look up how {tech} handles {topic}, {m1} answer", "find {m1} references on {topic} in {tech}"),
    ),
    FamilySpec(
        "research-analysis",
        "researcher",
        2.2,
        1.2,
        30_000,
        3.0,
        ("compare {tech} options for {topic}: {m1} {m2} analysis", "evaluate {topic} in {tech}, {m1} study"),
    ),
    FamilySpec(
        "qa",
        "generalist",
        -1.5,
        1.0,
        2_000,
        0.5,
        ("answer question from {audience} about {topic}, {m1}", "reply to {audience} on {module} {m1}"),
    ),
    FamilySpec(
        "ops",
        "generalist",
        0.3,
        1.0,
        5_000,
        1.0,
        ("rotate credentials for {service}, {m1} change", "scale {service} replicas, {m1} {m2} rollout"),
    ),
    FamilySpec(
        "writing",
        "generalist",
        1.0,
        1.0,
        10_000,
        2.0,
        ("write {m1} guide on {topic} for {audience}", "draft {m1} {m2} announcement about {module}"),
    ),
)


def arms() -> tuple[Arm, ...]:
    return tuple(Arm(a, m.name) for a in AGENTS for m in MODELS)


def skill(agent: str, family: FamilySpec) -> float:
    if agent == family.specialist:
        return SPECIALIST
    return GENERALIST if agent == "generalist" else OUTSIDER


def success_probability(arm: Arm, family: FamilySpec, difficulty: float) -> float:
    model = next(m for m in MODELS if m.name == arm.model)
    margin = BIAS + model.capability + skill(arm.agent, family) - difficulty
    return 1.0 / (1.0 + math.exp(-SHARPNESS * margin))


def _marker(rng: random.Random, difficulty: float) -> str:
    # A noisy difficulty signal in the text: P(hard) rises and P(easy) falls with d.
    hard = 1.0 / (1.0 + math.exp(-(difficulty - 1.5)))
    easy = 1.0 / (1.0 + math.exp(difficulty + 0.5))
    roll = rng.random()
    level = "hard" if roll < hard else "easy" if roll < hard + easy else "medium"
    return rng.choice(_MARKERS[level])


def _description(rng: random.Random, family: FamilySpec, difficulty: float) -> str:
    template = rng.choice(family.templates)
    slots = {k: rng.choice(v) for k, v in _SLOTS.items()}
    text = template.format(m1=_marker(rng, difficulty), m2=_marker(rng, difficulty), **slots)
    return f"{text} ({_marker(rng, difficulty)} work)"


def _noise_description(rng: random.Random) -> str:
    """Words drawn from every family's and marker's vocabulary alike: no signal about the task."""
    pool = [w for values in (*_SLOTS.values(), *_MARKERS.values()) for w in values]
    return " ".join(rng.choice(pool) for _ in range(8))


def generate(tasks: int = 5000, seed: int = DEFAULT_SEED, *, text_signal: bool = True) -> Dataset:
    """The default world; `text_signal=False` is the no-signal profile: the same tasks, arms and
    outcomes (the same draws), but descriptions drawn independently of family and difficulty."""
    rng = random.Random(seed)
    text_rng = random.Random(seed + 7919)
    all_arms = arms()
    items = []
    for index in range(tasks):
        family = rng.choice(FAMILIES)
        difficulty = rng.gauss(family.difficulty_mean, family.difficulty_sd)
        description = _description(rng, family, difficulty)
        if not text_signal:
            description = _noise_description(text_rng)
        size = family.size * math.exp(rng.gauss(0.0, 0.3))
        truth = {arm: success_probability(arm, family, difficulty) for arm in all_arms}
        outcomes = []
        for arm in all_arms:
            model = next(m for m in MODELS if m.name == arm.model)
            success = rng.random() < truth[arm]
            duration = family.base_duration_ms * model.speed * math.exp(rng.gauss(0.0, 0.35))
            if not success:
                duration *= 1.5  # failed runs flail and retry before giving up
            cost = model.price_usd * size * (1.0 + rng.uniform(-0.1, 0.1))
            outcomes.append(Outcome(arm, success, round(duration, 1), round(cost, 8)))
        task_id = f"sim-{index:06d}"
        items.append(
            DatasetTask(
                TaskCreated(
                    event_id=f"eval-task:{task_id}",
                    occurred_at=EPOCH,
                    task_id=task_id,
                    description=description,
                    kind=family.name,
                ),
                tuple(outcomes),
                truth,
            )
        )
    by_cost = sorted(all_arms, key=lambda a: (_model(a).price_usd, a))
    header = DatasetHeader(
        name=f"synthetic-{tasks}-seed{seed}" + ("" if text_signal else "-no-signal"),
        description=(
            f"{len(FAMILIES)} task families with latent difficulty; {len(AGENTS)} agents x {len(MODELS)} models"
        ),
        source="tasksage simulate (processors/evaluation/simulate.py)",
        attribution="synthetic data generated by tasksage",
        arms=tuple(ArmSpec(a, _model(a).price_usd, None, arm_name(a)) for a in by_cost),
        # What an operator would write without data: every arm, cheapest first, vendor priors.
        tiers=tuple(
            TierOption("*", i, a, _model(a).price_usd, None, _model(a).vendor_prior)
            for i, a in enumerate(by_cost, start=1)
        ),
        notes=(
            f"seed {seed}: random.Random(seed) drives families, difficulty, text, outcomes, durations, costs",
            f"success probability = sigmoid({SHARPNESS:g} x (bias + model capability + agent skill on the family"
            " - difficulty))",
        ),
    )
    return Dataset(header, tuple(items))


def _model(arm: Arm) -> ModelSpec:
    return next(m for m in MODELS if m.name == arm.model)
