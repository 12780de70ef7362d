"""Reads the scheduler needs: neighbours with outcomes, arm statistics, tiers, profiles."""

from __future__ import annotations

import math
from collections.abc import Sequence

import asyncpg
from pgvector import Vector as PgVector

from processors.embedders.base import Vector
from processors.postgres.embedding_models import model_literal
from processors.postgres.index_queue import QueuedVectors
from processors.postgres.pool import Conn, tuned_transaction
from processors.postgres.stored_vectors import as_array
from processors.scheduling.types import Arm, NeighbourOutcome, TierOption
from processors.search.nearest import merge_exact
from processors.statistics import ArmTotals

GLOBAL_SCOPE = "*"


def kind_scope(kind: str | None) -> str | None:
    """The arm_stats scope of a task kind, or None when the kind has no scope of its own (no
    kind, or "*": the schema refuses it, and it must never add a second time to the global row)."""
    return kind if kind and kind != GLOBAL_SCOPE else None


# The neighbour search's ef_search: a margin over its LIMIT, and a floor for small k, where
# few candidates would leave the graph walk too short (see NeighbourQuery).
NEIGHBOUR_EF_MARGIN = 1.15
NEIGHBOUR_EF_FLOOR = 24


def default_neighbour_ef_search(candidates: int) -> int:
    return max(NEIGHBOUR_EF_FLOOR, math.ceil(candidates * NEIGHBOUR_EF_MARGIN))


def _totals(row: asyncpg.Record) -> ArmTotals:
    return ArmTotals(
        attempts=float(row["attempts"]),
        successes=float(row["successes"]),
        duration_sum_ms=float(row["duration_sum_ms"]),
        duration_n=float(row["duration_n"]),
        cost_sum_usd=float(row["cost_sum_usd"]),
        cost_n=float(row["cost_n"]),
    )


class NeighbourQuery:
    """k nearest past tasks that have outcomes: the model's partial HNSW index, and the vectors
    queued for it (sql/0006) compared exactly."""

    def __init__(
        self, model: str, dimension: int, k: int, oversample: int = 1, ef_search: int | None = None
    ) -> None:
        dim = int(dimension)
        self.k = k
        # Only tasks with outcomes are in the index (has_outcome, sql/0005), so k candidates
        # are k neighbours; one spare stands in for the task itself when it is re-published.
        # (Before sql/0005 four times k were fetched to survive tasks without outcomes: at 100k
        # rows that cost 6.3 ms a search against 4.4 ms for k + 1, measured with ef_search 80.)
        self.candidates = k * oversample + 1
        # The candidate list HNSW keeps while searching. Measured at 100k history (hash-384,
        # m=16): ef 42 (twice the LIMIT, the old default) against 25 costs 0.86 against 0.69 ms
        # a search; the 20 found carry 98.3% against 97.3% of the exact top 20's similarity
        # weight, and over 1,000 tasks the chosen arm never changed (mean |d success
        # probability| 0.0014). Never below the LIMIT: before pgvector 0.8 a scan yields at
        # most ef_search rows. Wider searches keep the pool's hnsw_ef_search.
        self.ef_search = max(
            self.candidates, default_neighbour_ef_search(self.candidates) if ef_search is None else ef_search
        )
        # LIMIT is a literal: with a parameter, the generic plan that prepared statements switch
        # to guesses 10% of the table and prefers a sequential scan over the HNSW index.
        # Outcomes come in a second statement: joined in one, the planner hashes the whole table.
        # The whole batch in one statement: one round trip and one executor start instead of
        # two per task; each LATERAL probe still walks the HNSW index.
        self.many_sql = f"""
            SELECT q.i, c.task_id, c.distance
            FROM unnest($1::vector[]) WITH ORDINALITY AS q(v, i)
            CROSS JOIN LATERAL (
                SELECT e.task_id, e.embedding::vector({dim}) <=> q.v::vector({dim}) AS distance
                FROM task_embeddings e
                WHERE e.model = {model_literal(model)} AND e.has_outcome
                ORDER BY e.embedding::vector({dim}) <=> q.v::vector({dim})
                LIMIT {int(self.candidates)}
            ) c"""
        self.outcomes_sql = """
            SELECT task_id, agent, model, attempts, successes, duration_sum_ms, duration_n, cost_sum_usd, cost_n
            FROM task_arm_outcomes WHERE task_id = ANY($1::text[]) ORDER BY task_id, agent, model"""

    async def fetch_many(
        self,
        conn: Conn,
        vectors: Sequence[Vector],
        exclude_task_ids: Sequence[str],
        queued: QueuedVectors,
    ) -> list[list[NeighbourOutcome]]:
        """The k nearest tasks with outcomes of each vector, in input order: the HNSW index,
        plus an exact comparison with the vectors still queued for it (`queued_vectors`, read
        once per batch by the caller). Two statements for the whole chunk."""
        if not vectors:
            return []
        approximate: list[list[tuple[str, float]]] = [[] for _ in vectors]
        by_task: dict[str, list[asyncpg.Record]] = {}
        # random_page_cost: with the default 4 the planner reads the outcomes of a chunk's
        # ~2,600 neighbours with a sequential scan of the whole outcome table (14 ms at 100k
        # tasks, growing with the history) instead of the primary key (8.7 ms, flat).
        tuning = f"SET LOCAL hnsw.ef_search = {int(self.ef_search)}; SET LOCAL random_page_cost = 1.1"
        async with tuned_transaction(conn, tuning):
            # Wrapped: asyncpg would read a list of arrays as one two-dimensional array.
            rows = await conn.fetch(self.many_sql, [PgVector(v) for v in vectors])
            for r in rows:
                approximate[r["i"] - 1].append((r["task_id"], 1.0 - float(r["distance"])))
            nearest = merge_exact(
                approximate, vectors, exclude_task_ids, queued.ids, queued.matrix, self.candidates
            )
            wanted = sorted({t for found in nearest for t, _ in found})
            if wanted:
                for r in await conn.fetch(self.outcomes_sql, wanted):
                    by_task.setdefault(r["task_id"], []).append(r)
        return [self._assemble(found, by_task) for found in nearest]

    def _assemble(
        self, nearest: Sequence[tuple[str, float]], by_task: dict[str, list[asyncpg.Record]]
    ) -> list[NeighbourOutcome]:
        out: list[NeighbourOutcome] = []
        taken = 0
        for task_id, similarity in nearest:
            rows = by_task.get(task_id)
            if not rows:
                continue  # no outcome yet: says nothing about which arm works
            for r in rows:
                out.append(NeighbourOutcome(task_id, similarity, Arm(r["agent"], r["model"]), _totals(r)))
            taken += 1
            if taken >= self.k:
                break
        return out


async def arm_stats(conn: Conn, scopes: Sequence[str]) -> dict[str, dict[Arm, ArmTotals]]:
    rows = await conn.fetch(
        """SELECT scope, agent, model, attempts, successes, duration_sum_ms, duration_n, cost_sum_usd, cost_n
           FROM arm_stats WHERE scope = ANY($1::text[])""",
        list(scopes),
    )
    out: dict[str, dict[Arm, ArmTotals]] = {s: {} for s in scopes}
    for r in rows:
        out[r["scope"]][Arm(r["agent"], r["model"])] = _totals(r)
    return out


async def replace_tiers(conn: Conn, tiers: Sequence[TierOption]) -> None:
    async with conn.transaction():
        await conn.execute("DELETE FROM tier_defaults")
        await conn.executemany(
            """INSERT INTO tier_defaults (kind, tier, agent, model, cost_per_call_usd, expected_duration_ms,
                   prior_success, capabilities) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)""",
            [
                (
                    t.kind,
                    t.tier,
                    t.arm.agent,
                    t.arm.model,
                    t.cost_per_call_usd,
                    t.expected_duration_ms,
                    t.prior_success,
                    sorted(t.capabilities),
                )
                for t in tiers
            ],
        )


async def load_tiers(conn: Conn) -> list[TierOption]:
    rows = await conn.fetch("SELECT * FROM tier_defaults ORDER BY kind, tier, agent, model")
    return [
        TierOption(
            r["kind"],
            r["tier"],
            Arm(r["agent"], r["model"]),
            r["cost_per_call_usd"],
            r["expected_duration_ms"],
            r["prior_success"],
            frozenset(r["capabilities"]),
        )
        for r in rows
    ]


async def profiles(
    conn: Conn, embedding_model: str, *, for_update: bool = False, arms: Sequence[Arm] = ()
) -> dict[tuple[Arm, str], tuple[Vector, float]]:
    """(arm, 'success'|'failure') -> (profile vector, weight)."""
    lock = " ORDER BY agent, model, outcome FOR UPDATE" if for_update else ""
    where = ""
    args: list[object] = [embedding_model]
    if arms:
        where = " AND (agent, model) IN (SELECT * FROM unnest($2::text[], $3::text[]))"
        args += [[a.agent for a in arms], [a.model for a in arms]]
    rows = await conn.fetch(
        f"SELECT agent, model, outcome, vector, weight FROM arm_profiles WHERE embedding_model = $1{where}{lock}",
        *args,
    )
    return {
        (Arm(r["agent"], r["model"]), r["outcome"]): (as_array(r["vector"]), float(r["weight"])) for r in rows
    }
