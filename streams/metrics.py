"""Prometheus metrics and the worker's health endpoints, served by a small ASGI app on uvicorn."""

from __future__ import annotations

import logging

from prometheus_client import CONTENT_TYPE_LATEST, Counter, Gauge, Histogram, generate_latest
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from streams.serving import AsgiServer

log = logging.getLogger(__name__)

EVENTS_IN = Counter("tasksage_events_in_total", "Records read from input topics", ["topic"])
EVENTS_PROCESSED = Counter(
    "tasksage_events_processed_total", "Events whose effects were committed", ["topic"]
)
EVENTS_DUPLICATE = Counter(
    "tasksage_events_duplicate_total", "Events skipped as already processed", ["topic"]
)
EVENTS_DEAD_LETTERED = Counter(
    "tasksage_events_dead_lettered_total", "Records sent to a dead-letter topic", ["topic"]
)
EVENTS_HELD = Gauge("tasksage_results_held", "Execution results waiting for their task")
# vectors: "tasks" (the neighbour index, sql/0006) or "messages" (the message index, sql/0008).
INDEX_QUEUE = Gauge("tasksage_index_queue", "Vectors queued for their HNSW index", ["vectors"])
INDEX_MERGED = Counter(
    "tasksage_index_merged_total", "Queued vectors moved into their HNSW index", ["vectors"]
)
LEARNING_QUEUE = Gauge("tasksage_learning_queue", "Outcomes queued for the learned layer (sql/0015)")
LEARNED_OUTCOMES = Counter("tasksage_learned_outcomes_total", "Queued outcomes the learned layer learned")
EVENTS_OUT = Counter("tasksage_events_out_total", "Records published", ["topic"])
RETRIES = Counter("tasksage_retries_total", "Batch retries after a retriable failure", ["topic", "error"])
# Embedding cost, budget and coverage (README "Search, backfill and model changes").
EMBED_USAGE_TOKENS = Counter(
    "tasksage_embedding_usage_tokens_total",
    "Tokens of embedding calls, provider-reported when available",
    ["provider", "model"],
)
EMBED_COST = Counter(
    "tasksage_embedding_cost_usd_total",
    "Estimated cost of embedding calls (price table)",
    ["provider", "model"],
)
EMBED_BUDGET_EXCEEDED = Gauge(
    "tasksage_embedding_budget_exceeded", "1 while the daily embedding budget refuses new calls"
)
EMBED_BUDGET_REFUSALS = Counter(
    "tasksage_embedding_budget_refusals_total",
    "Embedding calls refused by the daily budget",
    ["provider", "model"],
)
EMBEDDING_COVERAGE = Gauge(
    "tasksage_embedding_coverage_ratio",
    "Share of rows with a vector of the model for their current text",
    ["table", "model", "active"],
)
EMBEDDING_MISSING = Gauge(
    "tasksage_embedding_missing_rows",
    "Rows without a vector of the model for their current text (alert on active=true)",
    ["table", "model", "active"],
)
BATCH_SECONDS = Histogram(
    "tasksage_batch_seconds",
    "Time to process one batch",
    ["topic"],
    buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
EVENT_LATENCY = Histogram(
    "tasksage_event_latency_seconds",
    "Record timestamp to committed effects",
    ["topic"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
STAGE_SECONDS = Histogram(
    "tasksage_stage_seconds",
    "Time per batch stage: plan (embed, neighbour search, decide) and commit (one transaction)",
    ["topic", "stage"],
    buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
EMBED_SECONDS = Histogram("tasksage_embedding_seconds", "Embedding provider call time", ["model"])
EMBED_TEXTS = Counter("tasksage_embedding_texts_total", "Texts sent to the embedding provider", ["model"])
EMBED_REUSED = Counter("tasksage_embedding_reused_total", "Texts whose stored vector was reused", ["model"])
EMBED_TOKENS = Counter(
    "tasksage_embedding_tokens_total", "Tokens embedded (estimated when unknown)", ["model"]
)
TASK_PLANS_AHEAD = Counter(
    "tasksage_task_plans_ahead_total",
    "Task batches planned while the batch before committed: used as planned, or decided again "
    "because outcomes were applied meanwhile",
    ["outcome"],
)
SCHEDULE_DECISIONS = Counter(
    "tasksage_schedule_decisions_total",
    "Schedules committed, by the arm chosen and the basis: cold_start (tier table), exploration, estimate",
    ["agent", "model", "basis"],
)
CONSUMER_LAG = Gauge("tasksage_consumer_lag", "Records behind the log end", ["topic", "partition"])
HEALTHY = Gauge("tasksage_healthy", "1 when the worker is processing, 0 while it waits on a dependency")


BOOKKEEPING_ROWS = Gauge(
    "tasksage_bookkeeping_rows",
    "Rows of a bookkeeping table (inbox, held_results, outbox, anchors)",
    ["table"],
)
RETENTION_DELETED = Counter(
    "tasksage_retention_deleted_rows_total",
    "Rows deleted by retention (inbox, predictions, messages)",
    ["table"],
)
RECORDS_LOST_TO_RETENTION = Counter(
    "tasksage_records_lost_to_retention_total",
    "Records the broker deleted by retention before this consumer group processed them",
    ["topic", "partition"],
)
LOG_RESETS = Counter(
    "tasksage_log_resets_total",
    "Partitions whose stored position no longer matched the broker's log (lost or replaced)",
    ["topic", "partition"],
)
HELD_EXPIRED = Counter(
    "tasksage_held_results_expired_total", "Held execution results dead-lettered after the wait"
)
DEPENDENCY_UP = Gauge(
    "tasksage_dependency_up", "1 while a dependency answers, 0 while the worker waits on it", ["dependency"]
)

# Insights, refreshed every TASKSAGE_INSIGHTS_INTERVAL_S by the worker (streams/worker/insights.py).
# window: hour | day | week | all; agent/model/kind '*' = every one (overall, per arm, per kind).
_LIVE = ["window", "agent", "model", "kind"]
LIVE_OUTCOMES = Gauge("tasksage_live_outcomes", "Outcomes scored against their prediction", _LIVE)
LIVE_BRIER = Gauge("tasksage_live_brier", "Mean Brier score of scored outcomes", _LIVE)
LIVE_LOG_LOSS = Gauge("tasksage_live_log_loss", "Mean log loss of scored outcomes", _LIVE)
LIVE_ECE = Gauge("tasksage_live_ece", "Expected calibration error (10 bins) of scored outcomes", _LIVE)
LIVE_DURATION_ERROR = Gauge(
    "tasksage_live_duration_abs_error_ms", "Mean |predicted - actual| duration of scored outcomes", _LIVE
)
LIVE_COST_ERROR = Gauge(
    "tasksage_live_cost_abs_error_usd", "Mean |predicted - actual| cost of scored outcomes", _LIVE
)
FAILURE_PATTERNS = Gauge("tasksage_failure_patterns", "Failure clusters of at least the minimum size")
CAPABILITY_GAPS = Gauge(
    "tasksage_capability_gaps", "Task clusters where no arm is predicted to reach the target"
)
CAPABILITY_GAP_TASKS = Gauge("tasksage_capability_gap_tasks", "Recent tasks in capability gaps")
ARM_FLAGGED = Gauge("tasksage_arm_flagged", "1 while an arm carries the flag", ["agent", "model", "flag"])


class Health:
    """Why the worker is not healthy, per component; healthy when no component has a problem.

    Problems make /healthz answer 503 (the worker is waiting and not making progress). Notices
    do not: they report something an operator must know about while the worker keeps going,
    such as a broker that lost its logs.
    """

    def __init__(self) -> None:
        self._problems: dict[str, str] = {"worker": "starting"}
        self._notices: dict[str, str] = {}
        HEALTHY.set(0)

    @property
    def ok(self) -> bool:
        return not self._problems

    @property
    def reason(self) -> str | None:
        if not self._problems:
            return None
        return "; ".join(f"{name}: {why}" for name, why in sorted(self._problems.items()))

    @property
    def notices(self) -> dict[str, str]:
        return dict(self._notices)

    def set_ok(self, component: str | None = None) -> None:
        """Clear one component's problem, or (no argument) the ones set by the batch pipeline."""
        if component is None:
            for name in ("worker", "pipeline"):
                self._problems.pop(name, None)
        else:
            self._problems.pop(component, None)
        HEALTHY.set(1 if self.ok else 0)

    def set_failing(self, reason: str, component: str = "pipeline") -> None:
        self._problems[component] = reason
        HEALTHY.set(0)

    def notice(self, key: str, text: str) -> None:
        self._notices[key] = text

    def body(self) -> str:
        lines = ["ok"] if self.ok else [f"waiting: {self.reason}"]
        lines += [f"notice: {text}" for _, text in sorted(self._notices.items())]
        return "\n".join(lines) + "\n"


def health_app(health: Health) -> Starlette:
    """GET /metrics (Prometheus), /healthz and /readyz (200, or 503 with the reason); other
    paths 404 and other methods 405, as any HTTP server answers."""

    async def probe(_: Request) -> PlainTextResponse:
        return PlainTextResponse(health.body(), status_code=200 if health.ok else 503)

    async def scrape(_: Request) -> Response:
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    async def refuse(_: Request, exc: Exception) -> JSONResponse:
        status = exc.status_code if isinstance(exc, HTTPException) else 500
        detail = exc.detail if isinstance(exc, HTTPException) else "internal error"
        headers = exc.headers if isinstance(exc, HTTPException) else None
        return JSONResponse(
            {"error": {"code": str(status), "message": detail}}, status_code=status, headers=headers
        )

    routes = [
        Route("/metrics", scrape, methods=["GET"]),
        Route("/healthz", probe, methods=["GET"]),
        Route("/readyz", probe, methods=["GET"]),
    ]
    return Starlette(routes=routes, exception_handlers={HTTPException: refuse})


class MetricsServer:
    """The worker's metrics and health endpoints (health_app), on uvicorn in this process."""

    def __init__(self, port: int, health: Health, host: str = "0.0.0.0") -> None:  # noqa: S104 - scraped from outside
        self.port = port
        self.host = host
        self.health = health
        self.server: AsgiServer | None = None

    async def start(self) -> None:
        if self.port <= 0:
            return
        server = AsgiServer(health_app(self.health), self.host, self.port)
        try:
            await server.start()
        except OSError as exc:
            log.warning("metrics port %d unavailable (%s); metrics are off", self.port, exc)
            return
        self.server = server

    async def stop(self) -> None:
        if self.server is not None:
            await self.server.stop()
            self.server = None
