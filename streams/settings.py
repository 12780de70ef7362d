"""One typed settings object, read once at start from the environment (and flags)."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Literal

from pydantic import AliasChoices, Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from processors.contracts.inputs import INPUT_STREAMS
from processors.embedders.base import EmbedderConfig, ProviderName
from processors.embedders.metered import DEFAULT_PRICES_USD_PER_MILLION
from processors.insights.arms import ArmUsageConfig
from processors.insights.config import InsightsConfig
from processors.scheduling.learned import LearnedConfig
from processors.scheduling.types import RankingConfig, SchedulerConfig

REPO_ROOT = Path(__file__).resolve().parent.parent
# The scheduler's and ranking's own defaults, so settings and library never disagree.
_SCHEDULER = SchedulerConfig()
_LEARNED = LearnedConfig()
_RANKING = RankingConfig()


class DecisionSettings(BaseSettings):
    """The knobs of scheduling, the learned layer, ranking and insights, and the configs built
    from them. A part of Settings (which reads them from TASKSAGE_<FIELD> like the rest), kept
    apart so each part stays short enough to read."""

    # Scheduling and learning (defaults: processors/scheduling/types.py; README "How scheduling works").
    success_target: float = Field(_SCHEDULER.success_target, ge=0.0, le=1.0)
    success_value_usd: float | None = Field(_SCHEDULER.success_value_usd, gt=0.0)
    neighbour_k: int = Field(_SCHEDULER.neighbour_k, ge=0)
    exploration_rate: float = Field(_SCHEDULER.exploration_rate, ge=0.0, le=1.0)
    learning_rate: float = 0.1
    use_profiles: bool = _SCHEDULER.use_profiles
    prior_strength: float = Field(_SCHEDULER.prior_strength, ge=0.0)
    neighbour_strength: float = Field(_SCHEDULER.neighbour_strength, ge=0.0)
    similarity_sharpness: float = Field(_SCHEDULER.similarity_sharpness, ge=0.0)
    similarity_floor: float = Field(_SCHEDULER.similarity_floor, ge=-1.0, le=1.0)
    difficulty_sd: float = Field(_SCHEDULER.difficulty_sd, ge=0.0)
    candidate_weight: float = Field(_SCHEDULER.candidate_weight, ge=0.0, le=1.0)
    neighbourhood_kind: bool = _SCHEDULER.neighbourhood_kind
    profile_weight: float = Field(_SCHEDULER.profile_weight, ge=0.0)
    exploration_rule: Literal["optimism", "thompson"] = _SCHEDULER.exploration_rule
    optimism_z: float = Field(_SCHEDULER.optimism_z, ge=0.0)
    default_agent: str = Field(_SCHEDULER.default_agent, min_length=1)
    default_model: str = Field(_SCHEDULER.default_model, min_length=1)
    # The learned layer of the estimate (processors/scheduling/learned.py).
    learned_enabled: bool = _LEARNED.enabled
    learned_stack_prior_variance: float = Field(_LEARNED.stack_prior_variance, gt=0.0)
    learned_calibration_prior_variance: float = Field(_LEARNED.calibration_prior_variance, gt=0.0)
    learned_text_dimension: int = Field(_LEARNED.text_dimension, ge=0, le=1024)
    learned_text_prior_variance: float = Field(_LEARNED.text_prior_variance, gt=0.0)
    learned_text_length_scale: float = Field(_LEARNED.text_length_scale, ge=0.0)
    # Ranking of pending work in the snapshots (processors/scheduling/ranking.py).
    rank_priority_weight: float = _RANKING.priority_weight
    rank_success_weight: float = _RANKING.success_weight
    rank_duration_weight: float = _RANKING.duration_weight
    rank_deadline_weight: float = _RANKING.deadline_weight
    rank_deadline_horizon_s: float = Field(_RANKING.deadline_horizon_s, gt=0.0)
    rank_age_weight: float = _RANKING.age_weight
    tiers_file: Path = REPO_ROOT / "deploy" / "tiers.toml"
    snapshot_interval_s: float = 2.0
    snapshot_size: int = 50
    duplicate_threshold: float = 0.95
    # Insights (processors/insights/; README "Insights").
    insights_interval_s: float = Field(60.0, gt=0.0)
    insights_recluster_s: float = Field(900.0, gt=0.0)
    insights_max_clusters: int = Field(12, ge=1)
    insights_recent_hours: float = Field(168.0, gt=0.0)
    insights_unused_days: float = Field(7.0, gt=0.0)
    insights_overload_hours: float = Field(1.0, gt=0.0)

    def scheduler_config(self) -> SchedulerConfig:
        return SchedulerConfig(
            success_target=self.success_target,
            success_value_usd=self.success_value_usd,
            neighbour_k=self.neighbour_k,
            exploration_rate=self.exploration_rate,
            use_profiles=self.use_profiles,
            prior_strength=self.prior_strength,
            neighbour_strength=self.neighbour_strength,
            similarity_sharpness=self.similarity_sharpness,
            similarity_floor=self.similarity_floor,
            difficulty_sd=self.difficulty_sd,
            candidate_weight=self.candidate_weight,
            neighbourhood_kind=self.neighbourhood_kind,
            profile_weight=self.profile_weight,
            exploration_rule=self.exploration_rule,
            optimism_z=self.optimism_z,
            default_agent=self.default_agent,
            default_model=self.default_model,
        )

    def learned_config(self) -> LearnedConfig:
        return LearnedConfig(
            enabled=self.learned_enabled,
            stack_prior_variance=self.learned_stack_prior_variance,
            calibration_prior_variance=self.learned_calibration_prior_variance,
            text_dimension=self.learned_text_dimension,
            text_prior_variance=self.learned_text_prior_variance,
            text_length_scale=self.learned_text_length_scale,
        )

    def ranking_config(self) -> RankingConfig:
        return RankingConfig(
            priority_weight=self.rank_priority_weight,
            success_weight=self.rank_success_weight,
            duration_weight=self.rank_duration_weight,
            deadline_weight=self.rank_deadline_weight,
            deadline_horizon_s=self.rank_deadline_horizon_s,
            age_weight=self.rank_age_weight,
        )

    def insights_config(self) -> InsightsConfig:
        return InsightsConfig(
            success_target=self.success_target,
            max_clusters=self.insights_max_clusters,
            recluster_s=self.insights_recluster_s,
            recent=timedelta(hours=self.insights_recent_hours),
            arms=ArmUsageConfig(
                unused_days=self.insights_unused_days, overload_hours=self.insights_overload_hours
            ),
        )


class ApiSettings(BaseSettings):
    """The knobs of `tasksage api` (streams/api/). A part of Settings, read like the rest."""

    # HTTP API (`tasksage api`, streams/api/). Tokens: entries `SCOPES:TOKEN` separated by
    # whitespace, SCOPES a comma list of read and write; or one entry a line in api_tokens_file.
    api_host: str = "127.0.0.1"
    api_port: int = Field(8080, ge=0, le=65535)
    api_tokens: SecretStr | None = None
    api_tokens_file: Path | None = None
    api_insecure: bool = False  # serve without tokens on a non-loopback address
    api_max_body_bytes: int = Field(1_048_576, ge=1024)
    api_request_timeout_s: float = Field(10.0, gt=0.0)  # a request still running then answers 504
    api_rate_limit: str = "100/second"  # per token (per client address without tokens); `limits` syntax
    api_cors_origins: list[str] = []  # empty: no CORS headers at all
    api_wait_max_s: float = Field(30.0, ge=0.0)  # the largest ?wait= of POST /v1/tasks
    api_search_max_results: int = Field(1000, ge=1)  # cursor pagination goes no deeper than this
    # How old the arm statistics, profiles, index queue and learned layer a recommendation is
    # decided against may be (processors/pipeline/recent.py); 0 reads them for every request.
    api_history_max_age_s: float = Field(0.5, ge=0.0)


class Settings(DecisionSettings, ApiSettings):
    """Every knob of tasksage. Env vars: TASKSAGE_<FIELD>, plus the standard names noted."""

    model_config = SettingsConfigDict(
        env_prefix="TASKSAGE_", extra="ignore", frozen=True, populate_by_name=True
    )

    # Services. Unset means: start the embedded ones (Tansu broker, pgserver PostgreSQL).
    kafka_bootstrap_servers: str | None = Field(
        None, validation_alias=AliasChoices("KAFKA_BOOTSTRAP_SERVERS", "TASKSAGE_KAFKA_BOOTSTRAP_SERVERS")
    )
    database_url: SecretStr | None = Field(
        None, validation_alias=AliasChoices("DATABASE_URL", "TASKSAGE_DATABASE_URL")
    )
    data_dir: Path = Path(".tasksage")
    embedded_kafka_port: int = 19092
    # Which broker `tasksage up` starts when none is configured: Tansu (light, memory only) or
    # Apache Kafka (KRaft, logs on disk in DATA_DIR; needs Java and `make kafka`).
    embedded_broker: Literal["tansu", "kafka"] = "tansu"
    embedded_kafka_heap: str = "512m"  # the Apache Kafka JVM's -Xmx
    # Where the Apache Kafka jars are cached (kafka-VERSION/libs under it); unset: data_dir.
    kafka_jars_dir: Path | None = None
    # 0: a quarter of the RAM, at most 1 GiB (pgserver's own default of 128 MiB is smaller than
    # the HNSW index of 100k tasks).
    embedded_postgres_shared_buffers_mb: int = Field(0, ge=0)

    # Kafka security, passed through to aiokafka.
    kafka_security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = "PLAINTEXT"
    kafka_sasl_mechanism: str | None = None
    kafka_sasl_username: str | None = None
    kafka_sasl_password: SecretStr | None = None
    kafka_ssl_cafile: Path | None = None

    # Topics.
    topic_task_created: str = "task-created"
    topic_execution_result: str = "execution-result"
    topic_message_ingested: str = "message-ingested"
    topic_task_schedules: str = "task-schedules"
    topic_schedule_snapshots: str = "schedule-snapshots"
    topic_message_duplicates: str = "message-duplicates"
    topic_insights: str = "insights"
    dead_letter_suffix: str = ".dlq"
    topic_partitions: int = 4
    # Topics tasksage creates: replicas per partition and min.insync.replicas (with acks=all a
    # write is acknowledged once that many replicas have it).
    topic_replication_factor: int = Field(1, ge=1)
    topic_min_insync_replicas: int = Field(1, ge=1)
    # Idempotent producer (no duplicates from producer retries within a session): "auto" uses
    # it where the broker supports it (Apache Kafka, not Tansu 0.6).
    kafka_idempotence: Literal["auto", "on", "off"] = "auto"
    consumer_group: str = "tasksage"

    # Consumption.
    batch_max_records: int = 500
    # Plan a full task-created batch (embedding, neighbour searches, decisions) while the batch
    # before it commits; the plan is used only if it read the history the batch would read.
    plan_ahead: bool = True
    # Once `tasksage worker` or `tasksage api` has started, move everything built so far (modules,
    # pools, models) out of the garbage collector's scans and collect young objects every
    # gc_young_threshold allocations (the interpreter's default is 700). streams/gc_tuning.py;
    # 0: the defaults.
    gc_young_threshold: int = Field(10_000, ge=0)
    # BLAS threads of `tasksage worker` and of `evaluate --offline`'s replay (streams/worker/blas.py):
    # their matrix products are too small to share, and an idle BLAS thread spins on a core the
    # database or another process needs. 0: the library's own.
    blas_threads: int = Field(1, ge=0)
    fetch_max_wait_ms: int = 5
    # Unset: 6000 on Apache Kafka (its minimum by default), 2000 on Tansu, which holds every join
    # for half the session timeout; heartbeats a quarter of the session, at most 1000
    # (streams/worker/membership.py).
    session_timeout_ms: int | None = Field(None, ge=1)
    heartbeat_interval_ms: int | None = Field(None, ge=1)
    # Static group membership (KIP-345): a worker restarted with the same id takes its partitions
    # back without waiting for its old session to time out, on brokers that implement it. Unique
    # per live worker (a second worker with the same id fences the first): a StatefulSet pod name.
    group_instance_id: str | None = Field(None, min_length=1, max_length=249)
    max_event_bytes: int = 1_000_000
    shutdown_timeout_s: float = 30.0
    retry_initial_s: float = 0.2
    retry_max_s: float = 10.0
    held_result_timeout_s: float = 3600.0
    # Retention (README "Bookkeeping and retention"). The inbox keeps event ids for the replay
    # window: a replay never re-applies records older than it, and ids older than it are deleted.
    replay_window_days: float = Field(7.0, gt=0.0)
    # History deleted when older than this many days; unset: kept.
    prediction_retention_days: float | None = Field(None, gt=0.0)
    message_retention_days: float | None = Field(None, gt=0.0)
    retention_interval_s: float = Field(60.0, gt=0.0)  # how often the worker deletes expired rows
    retention_batch: int = Field(5000, ge=1)  # rows per delete transaction
    # Delivery checks (README: "Delivery guarantees and failure handling").
    held_result_check_interval_s: float = 30.0  # how often held results are checked for expiry
    outbox_sweep_after_s: float = 30.0  # outbox rows older than this are re-published by the sweep
    health_probe_interval_s: float = 5.0  # PostgreSQL and broker probes behind /healthz
    log_check_timeout_s: float = 2.0  # reading back a partition's last record on assignment
    # Dead letters in a row from errors that are not data errors before the worker stops
    # dead-lettering and waits (a bug or broken dependency would otherwise empty the topic). 0: off.
    systemic_failure_after: int = 10
    # Runs in a row that died on one record, processed alone, before it is dead-lettered as a
    # poison pill (streams/worker/crash_guard.py).
    poison_pill_after: int = Field(2, ge=1)
    # Neighbour-index queue (sql/0006): a task's first outcome queues its vector; the worker's
    # merger indexes queued vectors in transactions of index_merge_batch rows.
    index_queue_limit: int = Field(2000, ge=0)  # past this many queued, results index inline
    index_merge_batch: int = Field(64, ge=1)
    # Learning queue (sql/0015): outcomes wait there for the learned layer; the worker's learner
    # teaches it up to learned_batch of them per transaction (one model write each).
    learned_batch: int = Field(5000, ge=1)

    # Embeddings.
    embedder: ProviderName = "hash"
    embedding_model: str | None = None
    embedding_dimension: int | None = None
    openai_base_url: str | None = Field(
        None, validation_alias=AliasChoices("OPENAI_BASE_URL", "TASKSAGE_OPENAI_BASE_URL")
    )
    openai_api_key: SecretStr | None = Field(
        None, validation_alias=AliasChoices("OPENAI_API_KEY", "TASKSAGE_OPENAI_API_KEY")
    )
    embed_batch_inputs: int = 256
    embed_batch_tokens: int = 100_000
    embed_timeout_s: float = 30.0
    embed_max_retries: int = 5  # per request, inside the embedder; then the batch waits and retries
    embed_circuit_reset_s: float = 30.0  # an open circuit lets a trial request through after this

    # Embedding cost: USD per million tokens by model (local providers cost nothing unless listed)
    # and a daily budget over all of them; unset means no limit.
    embedding_prices_usd_per_million: dict[str, float] = DEFAULT_PRICES_USD_PER_MILLION
    embedding_daily_budget_usd: float | None = None

    # Vector index. m and ef_construction are floors: bigger tables get bigger graphs when an
    # index is created (processors/search/tuning.py).
    hnsw_m: int = 16
    hnsw_ef_construction: int = 64
    hnsw_ef_search: int = 80
    # The candidate list of each task's neighbour search; unset: knowledge.NeighbourQuery's default.
    neighbour_ef_search: int | None = Field(None, ge=1, le=1000)

    # Search (tasksage search / similar). ef_search unset: by table size.
    search_ef_search: int | None = None
    search_oversample: int = 4  # filtered searches on pgvector < 0.8 fetch limit x this, then more
    search_rrf_k: int = 60
    search_vector_weight: float = 1.0
    search_text_weight: float = 1.0
    search_exact_max_rows: int = 10_000  # filtered searches keeping at most this many rows are exact
    # How often the worker refreshes the coverage gauges (a count of every row, in slices).
    coverage_interval_s: float = 60.0

    # Operations.
    metrics_port: int = 9464
    log_level: str = "INFO"
    db_pool_min: int = 1
    db_pool_max: int = 8  # searches on up to 4 connections, plus the commit, the publisher and upkeep

    def embedder_config(self) -> EmbedderConfig:
        return EmbedderConfig(
            provider=self.embedder,
            model=self.embedding_model,
            dimension=self.embedding_dimension,
            base_url=self.openai_base_url,
            api_key=self.openai_api_key.get_secret_value() if self.openai_api_key else None,
            max_batch_inputs=self.embed_batch_inputs,
            max_batch_tokens=self.embed_batch_tokens,
            timeout_s=self.embed_timeout_s,
            max_retries=self.embed_max_retries,
            circuit_reset_s=self.embed_circuit_reset_s,
        )

    def dead_letter_topic(self, topic: str) -> str:
        return f"{topic}{self.dead_letter_suffix}"

    @property
    def input_topics(self) -> dict[str, str]:
        """Logical stream name -> physical topic name."""
        return {s.name: getattr(self, s.topic_setting) for s in INPUT_STREAMS}

    @property
    def output_topics(self) -> list[str]:
        return [
            self.topic_task_schedules,
            self.topic_schedule_snapshots,
            self.topic_message_duplicates,
            self.topic_insights,
        ]

    def namespaced(self, prefix: str) -> dict[str, str]:
        """Every topic and the consumer group under `prefix`: settings overrides that keep a run
        (a benchmark, an evaluation, a test) off the topics and offsets of any other."""
        fields = [f for f in self.topic_name_fields() if f.startswith("topic_")]
        return {f: prefix + getattr(self, f) for f in [*fields, "consumer_group"]}

    @classmethod
    def topic_name_fields(cls) -> list[str]:
        """The settings that name a topic (not its partitions, replicas or other properties)."""
        return [
            f for f, info in cls.model_fields.items() if f.startswith("topic_") and info.annotation is str
        ]

    def all_topics(self) -> list[str]:
        inputs = list(self.input_topics.values())
        return inputs + [self.dead_letter_topic(t) for t in inputs] + self.output_topics
