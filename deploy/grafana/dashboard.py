"""Writes deploy/grafana/tasksage.json, the tasksage Grafana dashboard, from the panel list below.

    .venv/bin/python deploy/grafana/dashboard.py          # rewrite tasksage.json
    .venv/bin/python deploy/grafana/dashboard.py --check  # exit 1 if tasksage.json is stale

Kept as code so that every panel has the same shape (datasource variable, legend, units) and the
queries are easy to review in one place. Every query names metrics that a running worker (and the
HTTP API, for its row) exposes: tests/integration/test_prometheus_scrape.py evaluates each one on a
real Prometheus scraping a real worker. Grafana's `$__rate_interval` is the only macro used.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

OUTPUT = Path(__file__).with_name("tasksage.json")
RATE = "$__rate_interval"
DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}


@dataclass
class Panel:
    title: str
    description: str
    queries: list[tuple[str, str]]  # (PromQL, legend)
    unit: str = "short"
    kind: str = "timeseries"
    width: int = 8
    height: int = 8


def quantiles(metric: str, by: str) -> list[tuple[str, str]]:
    return [
        (
            f"histogram_quantile({q}, sum by (le, {by}) (rate({metric}_bucket[{RATE}])))",
            f"p{int(q * 100)} {{{{{by}}}}}",
        )
        for q in (0.5, 0.95, 0.99)
    ]


ROWS: list[tuple[str, list[Panel]]] = [
    (
        "Throughput and lag",
        [
            Panel(
                "Records in per topic",
                "Records read from each input topic, per second.",
                [(f"sum by (topic) (rate(tasksage_events_in_total[{RATE}]))", "{{topic}}")],
                unit="rps",
            ),
            Panel(
                "Events processed and skipped as duplicates",
                "Events whose effects committed, and events the inbox had already seen (replays, redeliveries).",
                [
                    (
                        f"sum by (topic) (rate(tasksage_events_processed_total[{RATE}]))",
                        "processed {{topic}}",
                    ),
                    (
                        f"sum by (topic) (rate(tasksage_events_duplicate_total[{RATE}]))",
                        "duplicate {{topic}}",
                    ),
                ],
                unit="rps",
            ),
            Panel(
                "Records published per topic",
                "Schedules, snapshots, duplicate notices and dead letters written, per second.",
                [(f"sum by (topic) (rate(tasksage_events_out_total[{RATE}]))", "{{topic}}")],
                unit="rps",
            ),
            Panel(
                "Consumer lag per topic",
                "Records between the workers' positions and the log end, summed over partitions.",
                [("sum by (topic) (tasksage_consumer_lag)", "{{topic}}")],
            ),
            Panel(
                "Workers up and healthy",
                "Workers answering scrapes, and those processing (the rest wait on a dependency).",
                [
                    ('count(up{job="tasksage"} == 1)', "up"),
                    ("sum(tasksage_healthy)", "healthy"),
                ],
                kind="stat",
            ),
            Panel(
                "Dependencies",
                "1 while Kafka, PostgreSQL and the embedding provider answer the worker's probes.",
                [("min by (dependency) (tasksage_dependency_up)", "{{dependency}}")],
            ),
        ],
    ),
    (
        "Latency",
        [
            Panel(
                "Batch latency",
                "Time to process one batch, per input topic.",
                quantiles("tasksage_batch_seconds", "topic"),
                unit="s",
            ),
            Panel(
                "Record timestamp to committed effects",
                "End-to-end latency per input topic (what TasksageEventLatencyHigh alerts on).",
                quantiles("tasksage_event_latency_seconds", "topic"),
                unit="s",
            ),
            Panel(
                "Batch stages, p95",
                "plan (embed, neighbour search, decide) and commit (one transaction) per topic.",
                [
                    (
                        f"histogram_quantile(0.95, sum by (le, topic, stage) (rate(tasksage_stage_seconds_bucket[{RATE}])))",
                        "{{stage}} {{topic}}",
                    )
                ],
                unit="s",
            ),
        ],
    ),
    (
        "Dead letters and retries",
        [
            Panel(
                "Dead letters per input topic",
                "Records sent to <topic>.dlq: invalid input, or results whose task never came. "
                "Inspect with `tasksage consume <topic>.dlq --from-beginning`.",
                [(f"sum by (topic) (increase(tasksage_events_dead_lettered_total[{RATE}]))", "{{topic}}")],
            ),
            Panel(
                "Retries by error class",
                "Batches retried after a retriable failure, by the error's class.",
                [(f"sum by (error) (increase(tasksage_retries_total[{RATE}]))", "{{error}}")],
            ),
            Panel(
                "Held results",
                "Execution results waiting for their task, and those dead-lettered after the wait.",
                [
                    ("sum(tasksage_results_held)", "held"),
                    (f"sum(increase(tasksage_held_results_expired_total[{RATE}]))", "expired"),
                ],
            ),
            Panel(
                "Partitions whose log was lost or replaced",
                "Stored positions that no longer matched the broker's log (README, Delivery guarantees).",
                [("sum by (topic) (increase(tasksage_log_resets_total[1h]))", "{{topic}}")],
            ),
        ],
    ),
    (
        "Embeddings",
        [
            Panel(
                "Coverage of the active model",
                "Share of rows with a vector of the active model for their current text (1 = all).",
                [
                    (
                        'min by (table, model) (tasksage_embedding_coverage_ratio{active="true"})',
                        "{{table}} {{model}}",
                    )
                ],
                unit="percentunit",
            ),
            Panel(
                "Rows without a current vector",
                "Not searchable until embedded; `tasksage backfill` fills them.",
                [
                    (
                        'max by (table, model) (tasksage_embedding_missing_rows{active="true"})',
                        "{{table}} {{model}}",
                    )
                ],
            ),
            Panel(
                "Embedding spend, USD per day",
                "The current spending rate from the price table, and the spend of the last 24 hours.",
                [
                    (
                        f"sum by (model) (rate(tasksage_embedding_cost_usd_total[{RATE}])) * 86400",
                        "rate {{model}}",
                    ),
                    ("sum(increase(tasksage_embedding_cost_usd_total[24h]))", "last 24 h"),
                ],
                unit="currencyUSD",
            ),
            Panel(
                "Embedding tokens and texts",
                "Tokens billed, texts embedded and texts whose stored vector was reused, per second.",
                [
                    (
                        f"sum by (model) (rate(tasksage_embedding_usage_tokens_total[{RATE}]))",
                        "tokens {{model}}",
                    ),
                    (f"sum by (model) (rate(tasksage_embedding_texts_total[{RATE}]))", "texts {{model}}"),
                    (f"sum by (model) (rate(tasksage_embedding_reused_total[{RATE}]))", "reused {{model}}"),
                ],
            ),
            Panel(
                "Embedding call time",
                "Provider call time per model.",
                quantiles("tasksage_embedding_seconds", "model"),
                unit="s",
            ),
            Panel(
                "Daily budget",
                "1 while the daily embedding budget refuses calls (events wait until 00:00 UTC), and refusals.",
                [
                    ("max(tasksage_embedding_budget_exceeded)", "exceeded"),
                    (f"sum(increase(tasksage_embedding_budget_refusals_total[{RATE}]))", "refusals"),
                ],
            ),
            Panel(
                "HNSW index queue",
                "Vectors waiting for their HNSW index, and merged into it per second.",
                [
                    ("max by (vectors) (tasksage_index_queue)", "queued {{vectors}}"),
                    (f"sum by (vectors) (rate(tasksage_index_merged_total[{RATE}]))", "merged/s {{vectors}}"),
                ],
            ),
            Panel(
                "Learning queue",
                "Outcomes waiting for the learned layer, and learned per second.",
                [
                    ("max(tasksage_learning_queue)", "queued"),
                    (f"sum(rate(tasksage_learned_outcomes_total[{RATE}]))", "learned/s"),
                ],
            ),
        ],
    ),
    (
        "Schedule decisions",
        [
            Panel(
                "Decisions per arm",
                "Schedules committed per second by the (agent, model) chosen.",
                [
                    (
                        f"sum by (agent, model) (rate(tasksage_schedule_decisions_total[{RATE}]))",
                        "{{agent}} / {{model}}",
                    )
                ],
                unit="rps",
            ),
            Panel(
                "Cold starts, exploration and estimates",
                "Why each arm was chosen: the tier table (cold_start), a deliberate try (exploration), "
                "or the estimate from outcomes.",
                [(f"sum by (basis) (rate(tasksage_schedule_decisions_total[{RATE}]))", "{{basis}}")],
                unit="rps",
            ),
            Panel(
                "Cold-start share",
                "Share of schedules decided by the tier table: high while there are few outcomes to learn from.",
                [
                    (
                        f'sum(rate(tasksage_schedule_decisions_total{{basis="cold_start"}}[{RATE}])) '
                        f"/ sum(rate(tasksage_schedule_decisions_total[{RATE}]))",
                        "cold start",
                    )
                ],
                unit="percentunit",
            ),
            Panel(
                "Task batches planned ahead",
                "Batches planned while the previous one committed: used as planned, or decided again.",
                [(f"sum by (outcome) (rate(tasksage_task_plans_ahead_total[{RATE}]))", "{{outcome}}")],
                unit="rps",
            ),
        ],
    ),
    (
        "HTTP API",
        [
            Panel(
                "Requests per route and status",
                "`tasksage api` requests per second.",
                [
                    (
                        f"sum by (route, status) (rate(tasksage_api_requests_total[{RATE}]))",
                        "{{route}} {{status}}",
                    )
                ],
                unit="rps",
            ),
            Panel(
                "Server errors",
                "Share of API responses with a 5xx status.",
                [
                    (
                        f'sum(rate(tasksage_api_requests_total{{status=~"5.."}}[{RATE}])) '
                        f"/ sum(rate(tasksage_api_requests_total[{RATE}]))",
                        "5xx share",
                    )
                ],
                unit="percentunit",
            ),
            Panel(
                "Request latency, p95",
                "Per route and method.",
                [
                    (
                        f"histogram_quantile(0.95, sum by (le, route, method) "
                        f"(rate(tasksage_api_request_seconds_bucket[{RATE}])))",
                        "{{method}} {{route}}",
                    )
                ],
                unit="s",
            ),
        ],
    ),
]


def panel_json(panel: Panel, ident: int, x: int, y: int) -> dict[str, Any]:
    targets = [
        {"refId": chr(ord("A") + i), "datasource": DATASOURCE, "expr": expr, "legendFormat": legend}
        for i, (expr, legend) in enumerate(panel.queries)
    ]
    return {
        "id": ident,
        "type": panel.kind,
        "title": panel.title,
        "description": panel.description,
        "datasource": DATASOURCE,
        "gridPos": {"h": panel.height, "w": panel.width, "x": x, "y": y},
        "fieldConfig": {"defaults": {"unit": panel.unit}, "overrides": []},
        "options": {"legend": {"displayMode": "list", "placement": "bottom", "showLegend": True}}
        if panel.kind == "timeseries"
        else {"reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False}},
        "targets": targets,
    }


def dashboard() -> dict[str, Any]:
    panels: list[dict[str, Any]] = []
    ident, y = 1, 0
    for title, row in ROWS:
        panels.append({"id": ident, "type": "row", "title": title, "collapsed": False, "panels": [],
                       "gridPos": {"h": 1, "w": 24, "x": 0, "y": y}})  # fmt: skip
        ident, y, x = ident + 1, y + 1, 0
        for panel in row:
            if x + panel.width > 24:
                x, y = 0, y + panel.height
            panels.append(panel_json(panel, ident, x, y))
            ident, x = ident + 1, x + panel.width
        y += max(p.height for p in row)
    return {
        "uid": "tasksage",
        "title": "tasksage",
        "description": "tasksage workers and API: throughput, lag, latency, dead letters, embeddings, "
        "schedule decisions. Generated by deploy/grafana/dashboard.py.",
        "tags": ["tasksage", "kafka"],
        "timezone": "utc",
        "editable": True,
        "graphTooltip": 1,
        "refresh": "30s",
        "schemaVersion": 39,
        "version": 1,
        "time": {"from": "now-6h", "to": "now"},
        "templating": {
            "list": [
                {
                    "name": "datasource",
                    "label": "Prometheus",
                    "type": "datasource",
                    "query": "prometheus",
                    "current": {"text": "Prometheus", "value": "prometheus"},
                    "hide": 0,
                }
            ]
        },
        "annotations": {"list": []},
        "links": [],
        "panels": panels,
    }


def render() -> str:
    return json.dumps(dashboard(), indent=2) + "\n"


def main(argv: list[str]) -> int:
    text = render()
    if "--check" in argv:
        if OUTPUT.read_text() != text:
            print(f"{OUTPUT} is stale: run python {Path(__file__).as_posix()}", file=sys.stderr)
            return 1
        return 0
    OUTPUT.write_text(text)
    print(f"wrote {OUTPUT}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
