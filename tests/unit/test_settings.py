"""Settings read once from the environment: scheduler and ranking knobs reach the pure configs."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from processors.scheduling.types import RankingConfig, SchedulerConfig
from streams.runtime import pipeline_config
from streams.settings import Settings


def test_defaults_are_the_libraries_own() -> None:
    settings = Settings.model_validate({})
    assert settings.scheduler_config() == SchedulerConfig()
    assert settings.ranking_config() == RankingConfig()


def test_environment_reaches_the_scheduler_and_the_ranking(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in {
        "TASKSAGE_DIFFICULTY_SD": "0",
        "TASKSAGE_SIMILARITY_SHARPNESS": "12.5",
        "TASKSAGE_EXPLORATION_RULE": "thompson",
        "TASKSAGE_PRIOR_STRENGTH": "4",
        "TASKSAGE_RANK_DEADLINE_WEIGHT": "0",
        "TASKSAGE_RANK_AGE_WEIGHT": "1.5",
    }.items():
        monkeypatch.setenv(name, value)
    settings = Settings.model_validate({})
    scheduler, ranking = settings.scheduler_config(), settings.ranking_config()
    assert (scheduler.difficulty_sd, scheduler.similarity_sharpness) == (0.0, 12.5)
    assert (scheduler.exploration_rule, scheduler.prior_strength) == ("thompson", 4.0)
    assert (ranking.deadline_weight, ranking.age_weight) == (0.0, 1.5)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("success_target", 1.5),
        ("difficulty_sd", -0.1),
        ("candidate_weight", 2.0),
        ("exploration_rule", "greedy"),
        ("rank_deadline_horizon_s", 0.0),
        ("embedded_postgres_shared_buffers_mb", -1),
    ],
)
def test_out_of_range_values_are_refused_at_start(field: str, value: object) -> None:
    with pytest.raises(ValidationError, match=field):
        Settings.model_validate({field: value})


def test_a_namespace_moves_every_topic_and_the_group_and_nothing_else() -> None:
    settings = Settings(topic_task_created="orders-created", consumer_group="scheduler")
    moved = Settings(**{**settings.model_dump(), **settings.namespaced("run7-")})
    assert moved.topic_task_created == "run7-orders-created"
    assert moved.consumer_group == "run7-scheduler"
    assert set(moved.all_topics()) == {"run7-" + t for t in settings.all_topics()}
    assert moved.topic_partitions == settings.topic_partitions


def test_neighbour_ef_search_reaches_the_pipeline(monkeypatch: pytest.MonkeyPatch) -> None:
    assert pipeline_config(Settings.model_validate({})).neighbour_ef_search is None
    monkeypatch.setenv("TASKSAGE_NEIGHBOUR_EF_SEARCH", "64")
    assert pipeline_config(Settings.model_validate({})).neighbour_ef_search == 64
    with pytest.raises(ValidationError, match="neighbour_ef_search"):
        Settings.model_validate({"neighbour_ef_search": 0})
