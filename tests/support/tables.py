"""Snapshots of the tables that hold what tasksage learned, for 'nothing changed' assertions."""

from __future__ import annotations

from typing import Any

from tests.support.waiting import eventually

# Every column, vectors as text, so a changed bit anywhere shows up (timestamps included: an
# effect applied twice rewrites them even when it writes the same numbers).
LEARNED_STATE = {
    "arm_stats": "SELECT * FROM arm_stats ORDER BY scope, agent, model",
    "task_arm_outcomes": "SELECT * FROM task_arm_outcomes ORDER BY task_id, agent, model",
    "tasks": "SELECT * FROM tasks ORDER BY task_id",
    "executions": "SELECT * FROM executions ORDER BY event_id",
    "held_results": "SELECT * FROM held_results ORDER BY event_id",
    "arm_profiles": """SELECT agent, model, embedding_model, outcome, vector::text, weight, updated_at
                       FROM arm_profiles ORDER BY agent, model, embedding_model, outcome""",
    "task_embeddings": """SELECT task_id, model, content_hash, embedding::text, embedded_at
                          FROM task_embeddings ORDER BY task_id, model""",
    "messages": "SELECT * FROM messages ORDER BY message_id",
    "message_embeddings": """SELECT message_id, model, content_hash, embedding::text, embedded_at
                             FROM message_embeddings ORDER BY message_id, model""",
    "predictions": "SELECT * FROM predictions ORDER BY schedule_id",
    "learned_layers": "SELECT * FROM learned_layers ORDER BY embedding_model",
    "learned_models": "SELECT * FROM learned_models ORDER BY embedding_model, component, agent, model",
    "learned_features": "SELECT * FROM learned_features ORDER BY schedule_id, agent, model",
    "inbox": "SELECT * FROM inbox ORDER BY stream, event_id",
    "positions": """SELECT group_id, topic, partition, next_offset FROM consumer_positions
                    ORDER BY group_id, topic, partition""",
}


State = dict[str, list[dict[str, Any]]]


async def learning_caught_up(conn: Any, timeout_s: float = 60.0) -> None:
    """Wait until the worker's learner has taught the learned layer every queued outcome (sql/0015)."""
    await eventually(lambda: conn.fetchval("SELECT count(*) FROM learned_queue"), lambda n: n == 0, timeout_s)


async def learned_state(conn: Any) -> State:
    """Everything learned, once the learner has caught up (the layer lags the statistics by a pass)."""
    await learning_caught_up(conn)
    return {name: [dict(r) for r in await conn.fetch(sql)] for name, sql in LEARNED_STATE.items()}


def differences(before: State, after: State) -> list[str]:
    """Readable list of what changed (empty when nothing did)."""
    out = []
    for name in before:
        old, new = before[name], after[name]
        if old != new:
            gone = [r for r in old if r not in new][:3]
            added = [r for r in new if r not in old][:3]
            out.append(f"{name}: {len(old)} -> {len(new)} rows; gone {gone}; added {added}")
    return out
