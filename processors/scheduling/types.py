"""Plain values the scheduler decides on. No I/O here: repositories fill these, tests build them by hand.

The values made per neighbour row, per arm or per pending task (Arm, ArmTotals, NeighbourOutcome,
ProfileAffinity, ArmEstimate, PendingTask) are frozen msgspec Structs: a batch of 500 tasks makes
tens of thousands of them, and a frozen dataclass's __init__ and generated __hash__ run in Python
(about 12x the construction cost). They are just as immutable, slotted and comparable. The rest
stay frozen dataclasses.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Literal

import msgspec

from processors.statistics import ArmTotals

if TYPE_CHECKING:
    from processors.scheduling.learned import LearnedInput


class Arm(msgspec.Struct, frozen=True, order=True, gc=False):
    """One (agent, model) choice."""

    agent: str
    model: str


class NeighbourOutcome(msgspec.Struct, frozen=True, gc=False):
    """Outcomes of one arm on one similar past task."""

    task_id: str
    similarity: float  # cosine similarity in [-1, 1]
    arm: Arm
    totals: ArmTotals


@dataclass(frozen=True, slots=True)
class TierOption:
    """A row of the static tier table: the cold-start answer for a kind (or '*' for any kind)."""

    kind: str
    tier: int  # 1 = cheapest / fastest
    arm: Arm
    cost_per_call_usd: float | None = None
    expected_duration_ms: float | None = None
    prior_success: float | None = None
    # What the arm can do (tools, sandboxes, languages); a task's requirements must all be here.
    capabilities: frozenset[str] = frozenset()


class ProfileAffinity(msgspec.Struct, frozen=True, gc=False):
    """Cosine similarity of the task to an arm's adapted success and failure profile vectors."""

    success_similarity: float | None
    failure_similarity: float | None
    success_weight: float  # how many outcomes shaped the success profile
    failure_weight: float


@dataclass(frozen=True, slots=True)
class SchedulerConfig:
    success_target: float = 0.8
    # What one success is worth in dollars; set, it switches the choice to the value rule
    # (rules.py: the highest p * value - cost) instead of the cheapest arm meeting the target.
    success_value_usd: float | None = None
    prior_strength: float = 2.0  # pseudo-observations behind the per-arm prior
    neighbour_k: int = 20
    similarity_floor: float = 0.0  # neighbours below this similarity carry no weight
    similarity_sharpness: float = 7.0  # weight = exp(sharpness * (sim - 1)); see README "Evaluating"
    neighbour_strength: float = 2.0  # pseudo-observations of the kind-level rate against neighbour evidence
    difficulty_sd: float = 0.5  # prior sd (logit) of a task difficulty shared by all arms; 0 turns it off
    candidate_weight: float = 0.05  # a neighbour's arms become candidates at this similarity weight
    # A task without a kind takes its neighbourhood as its kind (estimates.neighbourhood_totals);
    # only with the learned layer on, whose fitted shrinkage and stacking weigh it.
    neighbourhood_kind: bool = True
    exploration_rate: float = 0.01  # bandit epsilon draw (after optimism); 0 disables all exploration
    use_profiles: bool = True  # let adapted profile vectors nudge the estimate
    profile_weight: float = 2.0
    exploration_rule: Literal["optimism", "thompson"] = "optimism"  # see scheduling/choice.py
    optimism_z: float = 0.8  # optimism rule: upper bound = mean + z * posterior sd (choice.py: why 0.8)
    default_agent: str = "generalist"  # only when there is no arm at all (no stats, no tier rows)
    default_model: str = "medium"


@dataclass(frozen=True, slots=True)
class SchedulingInput:
    task_id: str
    kind: str | None
    priority: int
    requested_agent: str | None
    global_stats: Mapping[Arm, ArmTotals]
    kind_stats: Mapping[Arm, ArmTotals]
    neighbours: Sequence[NeighbourOutcome]
    tiers: Sequence[TierOption]  # rows for this kind, else the '*' rows
    profiles: Mapping[Arm, ProfileAffinity] = field(default_factory=dict)
    learned: LearnedInput | None = None  # the learned layer (learned.py); None: the chain alone


class ArmEstimate(msgspec.Struct, frozen=True, gc=False):
    arm: Arm
    success_probability: float
    confidence: float  # 0..1, grows with evidence
    predicted_duration_ms: float | None
    expected_cost_usd: float | None
    evidence: float  # similarity-weighted outcomes behind the estimate
    meets_target: bool
    score: float
    # The learned layer's inputs for this arm at schedule time (learned.FEATURES order), stored
    # with the prediction so the outcome trains on what was known before it; () when off.
    features: tuple[float, ...] = ()


@dataclass(frozen=True, slots=True)
class Decision:
    chosen: ArmEstimate
    alternatives: tuple[ArmEstimate, ...]  # every arm considered, best first, chosen included
    cold_start: bool
    exploration: bool
    notes: tuple[str, ...] = ()  # why the decision departs from the plain rule (fallbacks, exploration)


class PendingTask(msgspec.Struct, frozen=True, gc=False):
    task_id: str
    priority: int
    deadline: datetime | None
    created_at: datetime
    success_probability: float
    predicted_duration_ms: float | None
    agent: str
    model: str


@dataclass(frozen=True, slots=True)
class RankingConfig:
    priority_weight: float = 1.0
    success_weight: float = 2.0
    duration_weight: float = 0.5  # per log10(ms)
    deadline_weight: float = 3.0
    deadline_horizon_s: float = 3600.0
    age_weight: float = 0.1  # per hour waiting, so nothing starves
    default_duration_ms: float = 60_000.0  # stands in for an unknown predicted duration
