"""Choose the (agent, model) for one task. Pure and deterministic given the input.

Rule
----
1. Cold start (no outcome for any candidate arm in global, kind or neighbour evidence): the lowest
   tier row of the task's kind (else '*'); without any tier row, the arm with the best prior.
2. Otherwise greedy by the configured rule (rules.py): the cheapest arm whose success probability
   meets success_target, else the most likely (the target rule, default); or the highest expected
   value p * success_value_usd - cost (the value rule). `alternatives` is every candidate in that
   order.
3. Exploration for bandit feedback (only the chosen arm's outcome is seen); exploration_rate <= 0
   turns all of it off, which is right under full feedback. See exploration.py for the rules:
   optimism (default) or Thompson sampling, then a hashed epsilon draw toward cheaper arms.

Why optimism
------------
With cheap 68% vs strong 81% and a 0.8 target the answer is the strong arm, whose estimate keeps
itself current because it is observed whenever chosen. One question is open: can the cheap arm
reach 0.8? Optimism (cheapest arm whose upper bound p + z*sd meets the target) spends pulls on
exactly that and stops once the bound drops under the target, after about
z^2 p(1-p) / (target - p)^2 = 10 pulls at z = 0.8. Greedy and epsilon-only rules can lock in for
good: after an unlucky start on the strong arm the cheap arm has the higher mean, greedy keeps
choosing it, and epsilon only looks at cheaper arms. Simulated (40 runs of 1000 tasks, 2% epsilon, z = 1),
the wrong arm was picked 68 times on average with optimism, 94 with Thompson sampling, and in the
worst run 999 times with greedy or epsilon-only. Thompson sampling has lighter tails when the cheap
arm sits near the target (78% or 85%) but pays more on the 68/81 case; on the RouteLLM MMLU
outcomes (lm-sys/RouteLLM, Apache-2.0; kind = subject, no neighbours, bandit feedback) both gave
about the same gain over random routing at equal cost, so optimism is the default and Thompson an
ablation. When no arm can reach the target, optimism turns into UCB1 on success, whose z grows
with the log of the evidence, so an unlucky start cannot lock in the worse arm. The epsilon draw
stays small, as a guard for statistics that went stale.

Why z = 0.8: every optimistic pull of a cheaper arm is a task more likely to fail, and with many
arms there is always one whose bound looks worth a try. In live value-rule replays with bandit
feedback of the synthetic worlds (default and no-signal profiles, seeds 11 and 12, 2,000 tasks,
success valued at $1 to $2), the cheapest run to reach 95% of the best arm's success recovered 0.80
to 0.88 of the oracle's saving at z = 0.8; at z = 1 two of the four never reached the level and the
others recovered 0.51 and 0.60; with no optimism (z = 0) the choice locks onto the dearest arms
(0.04 to 0.21); z = 0.5 to 0.7 recovered as little as 0.63. Target-rule runs moved within their noise.
"""

from __future__ import annotations

from processors.scheduling.estimates import (
    candidate_arms,
    estimate_arms,
    has_evidence,
    neighbour_evidence,
    relevant_tiers,
    weighed_neighbours,
)
from processors.scheduling.exploration import explore
from processors.scheduling.rules import arm_score, cost_key
from processors.scheduling.types import Arm, ArmEstimate, Decision, SchedulerConfig, SchedulingInput


def decide(inp: SchedulingInput, config: SchedulerConfig) -> Decision:
    candidates = candidate_arms(inp, config)
    notes = list(candidates.notes)
    weighed = weighed_neighbours(inp, config)
    local = neighbour_evidence(inp, config, weighed)
    ordered = estimate_arms(inp, config, candidates.arms, weighed=weighed, local=local)
    if not ordered:
        return _default_decision(inp, config, notes)
    alternatives = tuple(ordered)

    if not has_evidence(inp, candidates.arms, config, local):
        by_arm = {e.arm: e for e in ordered}
        row = next((t for t in relevant_tiers(inp) if t.arm in by_arm), None)
        if row is not None:
            notes.append(f"cold start: tier {row.tier} of kind {row.kind!r}")
            chosen = by_arm[row.arm]
        else:
            notes.append("cold start without a tier row: the arm with the best prior")
            chosen = min(ordered, key=lambda e: (-e.success_probability, cost_key(e), e.arm))
        return Decision(chosen, alternatives, cold_start=True, exploration=False, notes=tuple(notes))

    greedy = ordered[0]
    explored = explore(inp.task_id, ordered, greedy, config)
    if explored is None:
        return Decision(greedy, alternatives, cold_start=False, exploration=False, notes=tuple(notes))
    pick, why = explored
    notes.append(why)
    return Decision(pick, alternatives, cold_start=False, exploration=True, notes=tuple(notes))


def _default_decision(inp: SchedulingInput, config: SchedulerConfig, notes: list[str]) -> Decision:
    """No statistics and no tier rows at all: a configured arm at a neutral 0.5, flagged as such."""
    arm = Arm(inp.requested_agent or config.default_agent, config.default_model)
    p = 0.5
    est = ArmEstimate(
        arm=arm,
        success_probability=p,
        confidence=0.0,
        predicted_duration_ms=None,
        expected_cost_usd=None,
        evidence=0.0,
        meets_target=p >= config.success_target,
        score=arm_score(p, None, config),
    )
    notes.append("no known arms and no tier rows: configured default arm")
    return Decision(est, (est,), cold_start=True, exploration=False, notes=tuple(notes))
