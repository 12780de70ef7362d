"""The synthetic profiles have the shape they promise, and --withhold-kind drops every label."""

from __future__ import annotations

from collections import Counter

from processors.evaluation import routing as rt
from processors.evaluation.dataset import without_kinds
from processors.evaluation.simulate import generate
from processors.evaluation.simulate_agents import generate_agent_work
from processors.scheduling.tiers import ANY_KIND


def test_agent_work_has_two_dozen_arms_100x_prices_and_uneven_kinds() -> None:
    data = generate_agent_work(600, seed=3)
    table = rt.truth_table(data)
    assert table is not None
    assert len(table.arms) == 24
    prices = [s.cost_usd or 0.0 for s in data.header.arms]
    assert max(prices) / min(prices) == 100.0
    kinds = Counter(t.task.kind for t in data.tasks)
    assert len(kinds) == 12
    assert kinds.most_common(1)[0][1] / len(data.tasks) > 0.35
    rates = rt.arm_rates(table)
    assert 0.1 < min(rates) < 0.35 and 0.6 < max(rates) < 0.85


def test_no_signal_keeps_the_world_and_changes_only_the_text() -> None:
    plain, blind = generate(50, seed=4), generate(50, seed=4, text_signal=False)
    assert [t.outcomes for t in plain.tasks] == [t.outcomes for t in blind.tasks]
    assert [t.task.kind for t in plain.tasks] == [t.task.kind for t in blind.tasks]
    assert all(
        a.task.description != b.task.description for a, b in zip(plain.tasks, blind.tasks, strict=True)
    )


def test_withholding_kinds_drops_every_label_and_keeps_star_rows_only() -> None:
    data = without_kinds(generate_agent_work(40, seed=1))
    assert {t.task.kind for t in data.tasks} == {None}
    assert {r.kind for r in data.header.tiers} == {ANY_KIND}
    assert len(data.header.tiers) == 24
