"""Requirement filtering: capable arms only, cold start on the cheapest capable tier, and a task
no arm can do named as such."""

from __future__ import annotations

import pytest

from processors.errors import ConfigurationError
from processors.scheduling import Arm, ArmTotals, SchedulerConfig, SchedulingInput, parse_tiers
from processors.scheduling.requirements import arm_capabilities, decide_with_requirements

TABLE = parse_tiers(
    """
[[kinds."*"]]
agent = "generalist"
model = "small"
capabilities = ["python"]

[[kinds."*"]]
agent = "browser"
model = "medium"
capabilities = ["python", "browser"]

[[kinds."*"]]
agent = "generalist"
model = "large"

[[kinds.code]]
agent = "coder"
model = "small"
capabilities = ["python", "git"]
"""
)
STAR = [t for t in TABLE if t.kind == "*"]
CONFIG = SchedulerConfig(exploration_rate=0.0)


def inp(
    tiers: list | None = None, stats: dict[Arm, ArmTotals] | None = None, kind: str | None = None
) -> SchedulingInput:  # type: ignore[type-arg]
    return SchedulingInput(
        task_id="T-1",
        kind=kind,
        priority=0,
        requested_agent=None,
        global_stats=stats or {},
        kind_stats={},
        neighbours=(),
        tiers=STAR if tiers is None else tiers,
    )


def test_capabilities_are_the_union_over_an_arms_rows() -> None:
    caps = arm_capabilities(TABLE)
    assert caps[Arm("browser", "medium")] == {"python", "browser"}
    assert caps[Arm("generalist", "large")] == frozenset()
    assert caps[Arm("coder", "small")] == {"python", "git"}


def test_no_requirements_is_the_plain_decision() -> None:
    got = decide_with_requirements(inp(), CONFIG, (), TABLE)
    assert got.decision.chosen.arm == Arm("generalist", "small")
    assert got.unsatisfiable == ()
    assert len(got.decision.alternatives) == 3


def test_cold_start_picks_the_cheapest_capable_tier() -> None:
    got = decide_with_requirements(inp(), CONFIG, ("browser",), TABLE)
    assert got.decision.chosen.arm == Arm("browser", "medium")
    assert [e.arm for e in got.decision.alternatives] == [Arm("browser", "medium")]
    assert got.decision.cold_start
    assert got.unsatisfiable == ()


def test_a_better_incapable_arm_from_statistics_is_left_out() -> None:
    # generalist/large has a perfect record but declares no capability: never chosen for python.
    stats = {
        Arm("generalist", "large"): ArmTotals(attempts=50, successes=50),
        Arm("generalist", "small"): ArmTotals(attempts=50, successes=45),
    }
    got = decide_with_requirements(inp(stats=stats), CONFIG, ("python",), TABLE)
    arms = {e.arm for e in got.decision.alternatives}
    assert Arm("generalist", "large") not in arms
    assert got.decision.chosen.arm in {Arm("generalist", "small"), Arm("browser", "medium")}


def test_capable_arm_of_another_kind_becomes_a_candidate() -> None:
    # Only coder/small (declared under kind 'code') has git; a '*' task asking for git gets it.
    got = decide_with_requirements(inp(), CONFIG, ("git",), TABLE)
    assert got.decision.chosen.arm == Arm("coder", "small")
    assert got.unsatisfiable == ()


def test_requirement_nobody_declares_is_reported() -> None:
    got = decide_with_requirements(inp(), CONFIG, ("gpu", "python"), TABLE)
    assert got.unsatisfiable == ("gpu",)
    assert got.decision.chosen.arm == Arm("generalist", "small")  # the plain choice, flagged
    assert any("no arm declares" in n for n in got.decision.notes)


def test_requirements_that_exist_only_on_different_arms_are_all_reported() -> None:
    # browser and git exist, but on different arms: no single arm can do the task.
    got = decide_with_requirements(inp(), CONFIG, ("git", "browser"), TABLE)
    assert got.unsatisfiable == ("browser", "git")


def test_a_table_without_capabilities_does_not_check_requirements() -> None:
    plain = parse_tiers('[[kinds."*"]]\nagent = "a"\nmodel = "m"\n')
    got = decide_with_requirements(inp(tiers=plain), CONFIG, ("python",), plain)
    assert got.decision.chosen.arm == Arm("a", "m")
    assert got.unsatisfiable == ()


def test_bad_capabilities_fail_with_the_row_named() -> None:
    with pytest.raises(ConfigurationError, match=r"kinds\.\*\[1\]: 'capabilities' must be a list"):
        parse_tiers('[[kinds."*"]]\nagent = "a"\nmodel = "m"\ncapabilities = "python"\n')
