"""Restrict a decision to arms that have every capability a task requires. Pure.

Capabilities are declared per arm in the tier table (`capabilities = [...]` on any of its rows;
the arm's set is the union). Requirements are checked only once the table declares some
capability at all: a table without any would otherwise turn every task that names requirements
into an unsatisfiable one on upgrade. Arms known only from statistics declare nothing.

The decision is made as usual over the capable arms' tier rows, then its alternatives are cut to
the capable arms and the chosen arm, if incapable, replaced by the best capable alternative. When
no arm has them all, the decision stands and names the requirements nobody provides, so the
schedule says so instead of pretending.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from processors.scheduling.choice import decide
from processors.scheduling.types import Arm, Decision, SchedulerConfig, SchedulingInput, TierOption


@dataclass(frozen=True, slots=True)
class RequirementDecision:
    decision: Decision
    unsatisfiable: tuple[str, ...]  # requirements no arm declares; () when some arm has them all


def arm_capabilities(tiers: Iterable[TierOption]) -> dict[Arm, frozenset[str]]:
    out: dict[Arm, frozenset[str]] = {}
    for row in tiers:
        out[row.arm] = out.get(row.arm, frozenset()) | row.capabilities
    return out


def capable(arm: Arm, requirements: Sequence[str], capabilities: Mapping[Arm, frozenset[str]]) -> bool:
    return set(requirements) <= capabilities.get(arm, frozenset())


def decide_with_requirements(
    inp: SchedulingInput,
    config: SchedulerConfig,
    requirements: Sequence[str],
    all_tiers: Sequence[TierOption],
) -> RequirementDecision:
    """`all_tiers`: the whole table (capabilities come from it); `inp.tiers`: the kind's rows."""
    capabilities = arm_capabilities(all_tiers)
    declared = frozenset().union(*capabilities.values()) if capabilities else frozenset()
    needed = sorted(set(requirements))
    if not needed or not declared:
        return RequirementDecision(decide(inp, config), ())
    fits = {arm for arm in capabilities if capable(arm, needed, capabilities)}
    if not fits:
        missing = tuple(r for r in needed if r not in declared) or tuple(needed)
        decision = decide(inp, config)
        note = f"no arm declares all of {needed}: best arm ignoring requirements"
        return RequirementDecision(dataclasses.replace(decision, notes=(*decision.notes, note)), missing)
    # The kind's capable rows; failing those, the capable arms' rows of other kinds, so an arm
    # declared capable anywhere in the table is a candidate.
    rows = [t for t in inp.tiers if t.arm in fits] or _first_row_per_arm(all_tiers, fits)
    restricted = dataclasses.replace(inp, tiers=rows)
    decision = decide(restricted, config)
    alternatives = tuple(e for e in decision.alternatives if e.arm in fits)
    if decision.chosen.arm in fits:
        return RequirementDecision(dataclasses.replace(decision, alternatives=alternatives), ())
    if not alternatives:
        missing = tuple(needed)
        return RequirementDecision(
            dataclasses.replace(decision, notes=(*decision.notes, f"no capable arm is known for {needed}")),
            missing,
        )
    note = f"requirements {needed}: best capable arm instead of ({decision.chosen.arm.agent}, {decision.chosen.arm.model})"
    chosen = alternatives[0]
    return RequirementDecision(
        dataclasses.replace(
            decision,
            chosen=chosen,
            alternatives=alternatives,
            exploration=False,
            notes=(*decision.notes, note),
        ),
        (),
    )


def _first_row_per_arm(rows: Sequence[TierOption], fits: set[Arm]) -> list[TierOption]:
    """One row per capable arm, '*' rows first, renumbered as tiers of their own."""
    seen: dict[Arm, TierOption] = {}
    for row in sorted(rows, key=lambda r: (r.kind != "*", r.kind, r.tier, r.arm)):
        if row.arm in fits and row.arm not in seen:
            seen[row.arm] = row
    return [dataclasses.replace(r, tier=i + 1) for i, r in enumerate(seen.values())]
