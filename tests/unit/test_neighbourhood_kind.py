"""A task without a kind takes its neighbourhood as its kind (estimates.neighbourhood_totals)."""

from __future__ import annotations

import math
from collections.abc import Sequence

import pytest
from hypothesis import given
from hypothesis import strategies as st

from processors.scheduling import (
    Arm,
    ArmTotals,
    NeighbourOutcome,
    SchedulerConfig,
    SchedulingInput,
    TierOption,
    estimate_arms,
    learned,
)
from processors.scheduling.estimates import neighbour_evidence, neighbourhood_totals, weighed_neighbours

CHEAP = Arm("generalist", "small")
STRONG = Arm("generalist", "large")
ARMS = (CHEAP, STRONG)
TIERS = (
    TierOption("*", 1, CHEAP, 0.001, 4000.0, 0.6),
    TierOption("*", 2, STRONG, 0.05, 20000.0, 0.9),
)
CONFIG = SchedulerConfig()
LAYER = learned.learned_input(learned.initial_state(learned.LearnedConfig()), None, ARMS)
# Across all tasks the cheap arm succeeds 4 times in 5 and the strong one 9 in 10.
GLOBAL = {CHEAP: ArmTotals(attempts=100, successes=80), STRONG: ArmTotals(attempts=100, successes=90)}


def row(task_id: str, similarity: float, arm: Arm, successes: int, attempts: int = 1) -> NeighbourOutcome:
    return NeighbourOutcome(task_id, similarity, arm, ArmTotals(attempts=attempts, successes=successes))


def task(
    neighbours: Sequence[NeighbourOutcome],
    *,
    kind: str | None = None,
    kind_stats: dict[Arm, ArmTotals] | None = None,
    layer: learned.LearnedInput | None = LAYER,
) -> SchedulingInput:
    return SchedulingInput(
        task_id="t-new",
        kind=kind,
        priority=0,
        requested_agent=None,
        global_stats=GLOBAL,
        kind_stats=kind_stats or {},
        neighbours=neighbours,
        tiers=TIERS,
        learned=layer,
    )


def neighbourhood(inp: SchedulingInput) -> dict[Arm, ArmTotals]:
    weighed = weighed_neighbours(inp, CONFIG)
    return neighbourhood_totals(weighed, neighbour_evidence(inp, CONFIG, weighed), CONFIG)


def estimates(inp: SchedulingInput, config: SchedulerConfig = CONFIG) -> dict[Arm, tuple[float, float]]:
    return {e.arm: (e.success_probability, e.evidence) for e in estimate_arms(inp, config, ARMS)}


# The cheap arm failed on every one of the task's family (cosine 0.6 to 0.7, where sentence vectors
# put similar tasks); the strong arm succeeded on them.
FAMILY = [
    *(row(f"f{i}", 0.7 - 0.01 * i, CHEAP, 0) for i in range(10)),
    *(row(f"f{i}", 0.7 - 0.01 * i, STRONG, 1) for i in range(10)),
]


def test_each_past_task_weighs_its_similarity_relative_to_the_closest() -> None:
    rows = [row("a", 0.7, CHEAP, 1), row("b", 0.6, CHEAP, 0), row("b", 0.6, STRONG, 1, attempts=2)]
    totals = neighbourhood(task(rows))
    far = math.exp(CONFIG.similarity_sharpness * (0.6 - 0.7))  # a tenth of cosine further: 0.497 at 7
    assert totals[CHEAP].attempts == pytest.approx(1.0 + far)
    assert totals[CHEAP].successes == pytest.approx(1.0)
    assert totals[STRONG].attempts == pytest.approx(2 * far)
    assert totals[STRONG].successes == pytest.approx(far)
    assert neighbourhood(task([])) == {}


def test_a_kindless_task_is_estimated_as_if_its_neighbourhood_were_its_kind() -> None:
    inp = task(FAMILY)
    hood = neighbourhood(inp)
    as_kind = estimates(task(FAMILY, kind="family", kind_stats=hood))
    got = estimates(inp)
    for arm in ARMS:
        assert got[arm][0] == pytest.approx(as_kind[arm][0], abs=1e-12)
        # evidence still counts the global outcomes, as for any task without a kind: a
        # neighbourhood is no reason to explore every arm afresh
        assert got[arm][1] == pytest.approx(100 + as_kind[arm][1] - hood[arm].attempts, abs=1e-9)


def test_the_family_the_neighbours_show_moves_the_estimate() -> None:
    with_hood = estimates(task(FAMILY))
    without = estimates(task(FAMILY), SchedulerConfig(neighbourhood_kind=False))
    assert with_hood[CHEAP][0] < without[CHEAP][0] - 0.05  # the cheap arm fails on this family
    assert with_hood[STRONG][0] > without[STRONG][0]
    # without it, the cheap arm's global rate shrunk toward its tier prior: the family's failures
    # reach it only through the absolute neighbour weights, about one outcome, which the learned
    # layer has not yet learned to weigh
    assert without[CHEAP][0] == pytest.approx((80 + 2 * 0.6) / (100 + 2))
    assert with_hood[CHEAP][0] < 0.5  # ten failures on the family outweigh the global 4 in 5


def test_a_labelled_task_and_a_task_without_the_learned_layer_keep_their_kind_statistics() -> None:
    off = SchedulerConfig(neighbourhood_kind=False)
    labelled = task(FAMILY, kind="k", kind_stats={CHEAP: ArmTotals(attempts=5, successes=5)})
    assert estimates(labelled) == estimates(labelled, off)
    chain_only = task(FAMILY, layer=None)
    assert estimates(chain_only) == estimates(chain_only, off)


def test_a_task_unlike_any_seen_takes_little_as_its_kind() -> None:
    # the closest past task at cosine 0.1 weighs exp(7 * -0.9) = 0.0018 absolutely, under the
    # candidate weight 0.05: the neighbourhood is rescaled as if the closest had 0.05
    rows = [row("a", 0.1, CHEAP, 0), row("b", 0.05, CHEAP, 0)]
    totals = neighbourhood(task(rows))
    absolute = [math.exp(CONFIG.similarity_sharpness * (sim - 1.0)) for sim in (0.1, 0.05)]
    assert totals[CHEAP].attempts == pytest.approx(sum(absolute) / CONFIG.candidate_weight)
    assert totals[CHEAP].attempts < 0.1
    far = estimates(task(rows))
    without = estimates(task(rows), SchedulerConfig(neighbourhood_kind=False))
    assert abs(far[CHEAP][0] - without[CHEAP][0]) < 0.02  # two unrelated failures barely count


def test_an_empty_kind_is_no_kind() -> None:
    assert estimates(task(FAMILY, kind="")) == estimates(task(FAMILY))


similarities = st.floats(
    min_value=0.0, max_value=1.2, allow_nan=False
)  # at or above the floor; >1 is clamped


@given(st.lists(st.tuples(st.sampled_from("abcdef"), similarities, st.sampled_from(ARMS)), max_size=12))
def test_each_task_weighs_its_similarity_relative_to_the_closest(rows: list[tuple[str, float, Arm]]) -> None:
    # one similarity per past task, as the search returns them
    sims = {task_id: sim for task_id, sim, _ in rows}
    unique = {(task_id, arm) for task_id, _, arm in rows}
    neighbours = [row(task_id, sims[task_id], arm, 1, attempts=2) for task_id, arm in sorted(unique)]
    totals = neighbourhood(task(neighbours))
    if not neighbours:
        assert totals == {}
        return
    sharpness = CONFIG.similarity_sharpness
    closest = min(max(sims.values()), 1.0)
    scale = 1.0 / max(math.exp(sharpness * (closest - 1.0)), CONFIG.candidate_weight)
    for arm in {arm for _, arm in unique}:
        weights = [math.exp(sharpness * (min(sims[t], 1.0) - 1.0)) * scale for t, a in unique if a == arm]
        assert totals[arm].attempts == pytest.approx(2 * sum(weights), rel=1e-9)
        assert totals[arm].successes == pytest.approx(sum(weights), rel=1e-9)
        assert all(w <= 1.0 + 1e-12 for w in weights)  # no task counts more than the closest
