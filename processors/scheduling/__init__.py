"""The scheduler's pure decision code: estimates, choice, ranking, tier table. No I/O."""

from processors.scheduling.choice import decide
from processors.scheduling.estimates import (
    Candidates,
    candidate_arms,
    estimate_arms,
    has_evidence,
    neighbour_evidence,
    neighbour_weight,
    posterior_sd,
    upper_bound,
)
from processors.scheduling.exploration import explore, unit_hash
from processors.scheduling.ranking import deadline_urgency, rank_pending, task_score
from processors.scheduling.rules import arm_score, cost_key, expected_value, rank_key
from processors.scheduling.tiers import ANY_KIND, load_tiers, parse_tiers, tiers_for_kind
from processors.scheduling.types import (
    Arm,
    ArmEstimate,
    Decision,
    NeighbourOutcome,
    PendingTask,
    ProfileAffinity,
    RankingConfig,
    SchedulerConfig,
    SchedulingInput,
    TierOption,
)
from processors.statistics import ArmTotals

__all__ = [
    "ANY_KIND",
    "Arm",
    "ArmEstimate",
    "ArmTotals",
    "Candidates",
    "Decision",
    "NeighbourOutcome",
    "PendingTask",
    "ProfileAffinity",
    "RankingConfig",
    "SchedulerConfig",
    "SchedulingInput",
    "TierOption",
    "arm_score",
    "candidate_arms",
    "cost_key",
    "deadline_urgency",
    "decide",
    "estimate_arms",
    "expected_value",
    "explore",
    "has_evidence",
    "load_tiers",
    "neighbour_evidence",
    "neighbour_weight",
    "parse_tiers",
    "posterior_sd",
    "rank_key",
    "rank_pending",
    "task_score",
    "tiers_for_kind",
    "unit_hash",
    "upper_bound",
]
