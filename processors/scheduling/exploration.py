"""Exploration under bandit feedback, deterministic per task: every random draw is a hash of the
task id, so replays and evaluations reproduce every decision (no global RNG).

Rules (see choice.py for why optimism is the default), for the target rule:
- optimism: the cheapest arm whose upper bound p + z*sd meets the target, if it is cheaper than the
  greedy arm or the greedy arm misses the target; when no arm's bound meets the target, UCB1 on
  success (z grows with log of the total evidence, so an unlucky start cannot lock an arm out);
- thompson: draw a success probability per arm from its posterior, N(p, sd) with sd =
  estimates.posterior_sd and the normal quantile of a per-(task, arm) hash, then apply the greedy
  rule to the draws (cheapest draw >= target, else the highest draw);
- under the value rule (rules.py) both score an arm's expected value at an optimistic or drawn
  probability instead: the arm with the highest (p + z*sd) * value - cost, or draw * value - cost;
- epsilon, after either: with probability exploration_rate, the least-evidenced arm cheaper than
  the greedy one, even if it looks hopeless (a guard against statistics that went stale).
"""

from __future__ import annotations

import hashlib
import math
from statistics import NormalDist

from processors.scheduling.estimates import posterior_sd, upper_bound
from processors.scheduling.rules import cost_key, expected_value
from processors.scheduling.types import Arm, ArmEstimate, SchedulerConfig

_KEY = b"tasksage/explore/v1"
_NORMAL = NormalDist()


def unit_hash(task_id: str, *parts: str) -> float:
    """A uniform number in [0, 1) that depends only on its arguments (stable across processes)."""
    message = "\x1f".join((task_id, *parts)).encode("utf-8")
    digest = hashlib.blake2b(message, digest_size=8, key=_KEY).digest()
    return int.from_bytes(digest, "big") / 2.0**64


def explore(
    task_id: str, ordered: list[ArmEstimate], greedy: ArmEstimate, config: SchedulerConfig
) -> tuple[ArmEstimate, str] | None:
    """The arm to try instead of the greedy one, with the reason; None to stay greedy."""
    if config.exploration_rate <= 0:
        return None
    if config.exploration_rule == "thompson":
        picked = _thompson(task_id, ordered, config)
    else:
        picked = _optimism(ordered, greedy, config)
    if picked is not None and picked[0].arm != greedy.arm:
        return picked
    return _epsilon(task_id, ordered, greedy, config)


def _thompson(
    task_id: str, ordered: list[ArmEstimate], config: SchedulerConfig
) -> tuple[ArmEstimate, str] | None:
    draw: dict[Arm, float] = {}
    for e in ordered:
        u = min(max(unit_hash(task_id, "thompson", e.arm.agent, e.arm.model), 1e-12), 1.0 - 1e-12)
        draw[e.arm] = min(1.0, max(0.0, e.success_probability + posterior_sd(e, config) * _NORMAL.inv_cdf(u)))
    value = config.success_value_usd
    meeting = [e for e in ordered if draw[e.arm] >= config.success_target]
    if value is not None:
        pick = max(ordered, key=lambda e: (expected_value(draw[e.arm], e.expected_cost_usd, value), e.arm))
    elif meeting:
        pick = min(meeting, key=lambda e: (cost_key(e), e.arm))
    else:
        pick = min(ordered, key=lambda e: (-draw[e.arm], cost_key(e), e.arm))
    return pick, f"exploration: posterior draw {draw[pick.arm]:.3f} (thompson)"


def _optimism(
    ordered: list[ArmEstimate], greedy: ArmEstimate, config: SchedulerConfig
) -> tuple[ArmEstimate, str] | None:
    if config.optimism_z <= 0:
        return None
    bound = {e.arm: upper_bound(e, config) for e in ordered}
    value = config.success_value_usd
    if value is not None:
        worth = {e.arm: expected_value(bound[e.arm], e.expected_cost_usd, value) for e in ordered}
        pick = max(ordered, key=lambda e: (worth[e.arm], e.arm))
        if worth[pick.arm] > greedy.score:
            return (
                pick,
                f"exploration: optimistic value ${worth[pick.arm]:.4f} beats the greedy arm's (optimism)",
            )
        return None
    plausible = [e for e in ordered if bound[e.arm] >= config.success_target]
    if plausible:
        # The cheapest arm that may still meet the target; a dearer one is worth trying only
        # when the greedy arm misses the target itself.
        pick = min(plausible, key=lambda e: (cost_key(e), -bound[e.arm], e.arm))
        if cost_key(pick) < cost_key(greedy) or not greedy.meets_target:
            return pick, f"exploration: upper bound {bound[pick.arm]:.3f} meets the target (optimism)"
        return None
    total = sum(e.evidence for e in ordered)
    z = max(config.optimism_z, math.sqrt(2.0 * math.log(total + 1.0)))
    ucb = {e.arm: min(1.0, e.success_probability + z * posterior_sd(e, config)) for e in ordered}
    pick = min(ordered, key=lambda e: (-ucb[e.arm], cost_key(e), e.arm))
    if ucb[pick.arm] > ucb[greedy.arm]:
        return pick, f"exploration: UCB1 bound {ucb[pick.arm]:.3f} beats the greedy arm's (optimism)"
    return None


def _epsilon(
    task_id: str, ordered: list[ArmEstimate], greedy: ArmEstimate, config: SchedulerConfig
) -> tuple[ArmEstimate, str] | None:
    if unit_hash(task_id, "epsilon") >= config.exploration_rate:
        return None
    # Only cheaper arms: a dearer arm's estimate matters only once the greedy arm fails, and then
    # the greedy arm's own outcomes reveal it.
    cheaper = [e for e in ordered if e.arm != greedy.arm and cost_key(e) < cost_key(greedy)]
    if not cheaper:
        return None
    pick = min(cheaper, key=lambda e: (e.evidence, cost_key(e), e.arm))
    return (
        pick,
        f"exploration: random draw under rate {config.exploration_rate:g}, least-evidenced cheaper arm",
    )
