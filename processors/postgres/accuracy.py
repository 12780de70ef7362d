"""accuracy_buckets (sql/0011): live accuracy sums per (hour, arm, kind, calibration bin)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from processors.contracts import ExecutionResult
from processors.insights.accuracy import SUM_COLUMNS, BucketKey, Outcome, Prediction, Sums, bucket
from processors.postgres.pool import Conn

# The latest prediction for each outcome's task, and the estimate it made for the arm that
# actually ran: the chosen arm's own numbers, or its entry among the alternatives when upstream
# ran another arm. Outcomes without a prediction (no schedule was made) are not scored.
_PREDICTIONS = """
    SELECT r.i, p.schedule_id,
           CASE WHEN same THEN p.success_probability
                ELSE (alt.a ->> 'success_probability')::float8 END AS success_probability,
           CASE WHEN same THEN p.predicted_duration_ms
                ELSE (alt.a ->> 'predicted_duration_ms')::float8 END AS predicted_duration_ms,
           CASE WHEN same THEN p.expected_cost_usd
                ELSE (alt.a ->> 'expected_cost_usd')::float8 END AS expected_cost_usd
    FROM unnest($1::text[], $2::text[], $3::text[]) WITH ORDINALITY AS r(task_id, agent, model, i)
    JOIN LATERAL (SELECT p.*, (p.agent = r.agent AND p.model = r.model) AS same
                  FROM predictions p WHERE p.task_id = r.task_id
                  ORDER BY p.created_at DESC LIMIT 1) p ON true
    LEFT JOIN LATERAL (SELECT a FROM jsonb_array_elements(p.alternatives) a
                       WHERE NOT p.same AND a ->> 'agent' = r.agent AND a ->> 'model' = r.model
                       LIMIT 1) alt ON true
    WHERE p.same OR alt.a IS NOT NULL"""

_UPSERT = f"""
    INSERT INTO accuracy_buckets (hour, agent, model, kind, bin, {", ".join(SUM_COLUMNS)})
    VALUES ($1, $2, $3, $4, $5, {", ".join(f"${i}" for i in range(6, 6 + len(SUM_COLUMNS)))})
    ON CONFLICT (hour, agent, model, kind, bin) DO UPDATE SET
    {", ".join(f"{c} = accuracy_buckets.{c} + EXCLUDED.{c}" for c in SUM_COLUMNS)}"""


@dataclass(frozen=True, slots=True)
class LatestPrediction:
    """The latest schedule of an outcome's task, and what it predicted for the arm that ran."""

    schedule_id: str
    success_probability: float | None
    predicted_duration_ms: float | None
    expected_cost_usd: float | None


async def latest_predictions(conn: Conn, results: Sequence[ExecutionResult]) -> dict[int, LatestPrediction]:
    """For each result by position: its task's latest schedule, when that schedule weighed the
    arm that ran (chosen, or among the alternatives). Read once per batch, for the live accuracy
    and for the learned layer, which learns from the inputs that schedule stored."""
    if not results:
        return {}
    rows = await conn.fetch(
        _PREDICTIONS,
        [r.task_id for r in results],
        [r.agent for r in results],
        [r.model for r in results],
    )
    return {
        int(row["i"]) - 1: LatestPrediction(
            row["schedule_id"],
            row["success_probability"],
            row["predicted_duration_ms"],
            row["expected_cost_usd"],
        )
        for row in rows
    }


async def record(
    conn: Conn,
    results: Sequence[ExecutionResult],
    kinds: Mapping[str, str | None],
    latest: Mapping[int, LatestPrediction],
) -> int:
    """Score results against their predictions (`latest_predictions`) and add them to the
    buckets, inside the caller's transaction (the one that applies them to the statistics, so
    each is scored exactly once). Returns how many were scored."""
    scored = []
    for i, found in sorted(latest.items()):
        r = results[i]
        if found.success_probability is None:
            continue
        prediction = Prediction(
            found.success_probability, found.predicted_duration_ms, found.expected_cost_usd
        )
        outcome = Outcome(
            r.agent, r.model, kinds.get(r.task_id) or "", r.success, r.duration_ms, r.cost_usd, r.finished_at
        )
        scored.append((prediction, outcome))
    if not scored:
        return 0
    buckets = bucket(scored)
    # Sorted keys: concurrent workers lock bucket rows in the same order, so they cannot deadlock.
    await conn.executemany(
        _UPSERT,
        [
            (k.hour, k.agent, k.model, k.kind, k.bin, *s.values())
            for k, s in sorted(
                buckets.items(), key=lambda kv: (kv[0].hour, kv[0].agent, kv[0].model, kv[0].kind, kv[0].bin)
            )
        ],
    )
    return len(scored)


async def load(conn: Conn, since: datetime | None = None) -> list[tuple[BucketKey, Sums]]:
    """The buckets from `since` (an hour bucket start) on, or all of them, summed per (arm, kind,
    bin): one window's rows, at most arms x kinds x bins of them however long the history. Each
    row's hour is the newest hour summed into it."""
    rows = await conn.fetch(
        f"""SELECT max(hour) AS hour, agent, model, kind, bin, {", ".join(f"sum({c}) AS {c}" for c in SUM_COLUMNS)}
            FROM accuracy_buckets WHERE $1::timestamptz IS NULL OR hour >= $1
            GROUP BY agent, model, kind, bin ORDER BY agent, model, kind, bin""",
        since,
    )
    return [
        (
            BucketKey(r["hour"], r["agent"], r["model"], r["kind"], r["bin"]),
            Sums(**{c: type(getattr(Sums(), c))(r[c]) for c in SUM_COLUMNS}),
        )
        for r in rows
    ]
