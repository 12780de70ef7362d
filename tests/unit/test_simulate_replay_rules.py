"""The prequential rules of a replay: the reveal ledger and the in-memory replay's visibility."""

from __future__ import annotations

import pytest

from processors.evaluation.offline import OfflineOptions, replay_offline, visible_prefix
from processors.evaluation.replay import RevealLedger, default_tiers, tiers_toml
from processors.evaluation.simulate import generate
from processors.scheduling.tiers import parse_tiers
from processors.scheduling.types import SchedulerConfig


def test_delay_zero_publishes_one_task_at_a_time() -> None:
    ledger = RevealLedger(tasks=3, delay=0)
    assert ledger.publishable(applied_events=0) == 1
    ledger.mark_published()
    ledger.mark_revealed(events=2)
    assert ledger.publishable(applied_events=1) == 1  # one of task 0's two outcomes applied: wait
    assert ledger.publishable(applied_events=2) == 2


def test_a_delay_keeps_that_many_extra_tasks_in_flight() -> None:
    ledger = RevealLedger(tasks=10, delay=3)
    assert ledger.publishable(0) == 4
    ledger.mark_published(4)
    for _ in range(4):
        ledger.mark_revealed(events=1)
    assert ledger.applied_prefix(2) == 2
    assert ledger.publishable(2) == 6  # tasks 0 and 1 applied: up to task 5
    assert ledger.publishable(4) == 8


def test_a_task_without_outcomes_to_reveal_counts_as_applied() -> None:
    ledger = RevealLedger(tasks=3, delay=0)
    ledger.mark_published(2)
    ledger.mark_revealed(events=0)  # bandit feedback, chosen arm not in the data
    assert ledger.applied_prefix(0) == 1


def test_outcomes_cannot_be_revealed_before_their_task_is_published() -> None:
    ledger = RevealLedger(tasks=2, delay=0)
    with pytest.raises(ValueError):
        ledger.mark_revealed(events=1)


def test_the_generated_tier_table_reads_back_as_the_same_rows() -> None:
    data = generate(5)
    rows = parse_tiers(tiers_toml(default_tiers(data)))
    assert [(r.kind, r.tier, r.arm, r.prior_success) for r in rows] == [
        (r.kind, r.tier, r.arm, r.prior_success) for r in data.header.tiers
    ]


def test_nothing_visible_means_every_decision_is_a_cold_start() -> None:
    data = generate(40, seed=9)
    preds = replay_offline(
        data, SchedulerConfig(use_profiles=False), OfflineOptions(neighbours=False), [0] * 40
    )
    assert all(p.cold_start for p in preds)


def test_bandit_replay_learns_only_about_the_arms_it_chose() -> None:
    data = generate(300, seed=9)
    config = SchedulerConfig(use_profiles=False, exploration_rate=0.0)
    preds = replay_offline(
        data, config, OfflineOptions(neighbours=False, feedback="bandit"), visible_prefix(300, 0)
    )
    chosen = {p.chosen for p in preds}
    last = preds[-1]
    untried = [a for a in data.arms if a not in chosen]
    assert untried, "greedy bandit replay should leave some arms untried"
    priors = {t.arm: t.prior_success for t in data.header.tiers}
    for arm in untried:  # never observed: still exactly the tier prior
        assert last.probabilities[arm] == pytest.approx(priors[arm])


def test_visibility_must_never_include_the_task_itself() -> None:
    data = generate(3)
    with pytest.raises(ValueError):
        replay_offline(data, SchedulerConfig(use_profiles=False), OfflineOptions(neighbours=False), [0, 2, 2])
