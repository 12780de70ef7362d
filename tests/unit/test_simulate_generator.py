"""The synthetic generator: seeded, with ground truth that the outcomes follow."""

from __future__ import annotations

from processors.evaluation.dataset import dataset_lines, parse_dataset
from processors.evaluation.simulate import FAMILIES, arms, generate, success_probability
from processors.scheduling.types import Arm


def test_same_seed_same_dataset_other_seed_other_dataset() -> None:
    first = list(dataset_lines(generate(200, seed=5)))
    assert first == list(dataset_lines(generate(200, seed=5)))
    assert first != list(dataset_lines(generate(200, seed=6)))


def test_outcomes_follow_the_true_probabilities() -> None:
    data = generate(3000, seed=1)
    expected = sum(p for item in data.tasks for p in item.truth.values())
    observed = sum(o.success for item in data.tasks for o in item.outcomes)
    pairs = sum(len(item.outcomes) for item in data.tasks)
    assert abs(observed - expected) / pairs < 0.01
    assert all(0.0 <= p <= 1.0 for item in data.tasks for p in item.truth.values())


def test_specialists_beat_outsiders_and_bigger_models_beat_smaller_ones() -> None:
    family = next(f for f in FAMILIES if f.specialist == "coder")
    assert success_probability(Arm("coder", "medium"), family, 1.0) > success_probability(
        Arm("researcher", "medium"), family, 1.0
    )
    for agent in ("generalist", "coder", "researcher"):
        p = [success_probability(Arm(agent, m), family, 1.0) for m in ("small", "medium", "large")]
        assert p == sorted(p)


def test_every_task_has_every_arm_with_cost_and_duration_and_the_file_round_trips() -> None:
    data = generate(50, seed=2)
    assert all({o.arm for o in item.outcomes} == set(arms()) for item in data.tasks)
    assert all(o.cost_usd and o.duration_ms for item in data.tasks for o in item.outcomes)
    again = parse_dataset(list(dataset_lines(data)))
    assert again.header == data.header
    assert [t.outcomes for t in again.tasks] == [t.outcomes for t in data.tasks]
    assert [t.truth for t in again.tasks] == [
        {a: round(p, 6) for a, p in t.truth.items()} for t in data.tasks
    ]
    # The tier table lists every arm, cheapest first, as the cold-start answer.
    assert data.header.tiers[0].arm.model == "small"
    assert len(data.header.tiers) == len(arms())
