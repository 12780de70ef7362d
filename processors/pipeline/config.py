"""What the processors need to know, built once from the settings."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from processors.scheduling.learned import LearnedConfig
from processors.scheduling.types import RankingConfig, SchedulerConfig


@dataclass(frozen=True, slots=True)
class PipelineConfig:
    group_id: str
    schedules_topic: str
    duplicates_topic: str
    dead_letter_topics: Mapping[str, str]  # input topic -> its dead-letter topic
    scheduler: SchedulerConfig = field(default_factory=SchedulerConfig)
    ranking: RankingConfig = field(default_factory=RankingConfig)
    learned: LearnedConfig = field(default_factory=LearnedConfig)  # the learned layer (learned_updates.py)
    learning_rate: float = 0.1
    duplicate_threshold: float = 0.95
    max_event_bytes: int = 1_000_000
    # Vectors queued for an index (tasks: sql/0006, messages: sql/0008) before batches index
    # their own inline.
    index_queue_limit: int = 2000
    # hnsw.ef_search of the neighbour search; None: knowledge.NeighbourQuery's default.
    neighbour_ef_search: int | None = None
