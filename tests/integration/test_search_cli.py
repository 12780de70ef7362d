"""The commands as an operator runs them: backfill legacy rows, register a second model, a
refused switch, the model list, similar rows."""

from __future__ import annotations

import asyncio
import hashlib
import os
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
import numpy as np
import orjson

from processors.embedders.hashing import HashingEmbedder
from processors.search.corpus import Corpus
from streams.runtime import prepare_database
from streams.settings import Settings

TASKSAGE = os.path.join(os.path.dirname(sys.executable), "tasksage")


async def tasksage(cwd: Path, dsn: str, *args: str) -> tuple[int, str, str]:
    env = {**os.environ, "DATABASE_URL": dsn, "TASKSAGE_LOG_LEVEL": "WARNING", "COLUMNS": "200"}
    env.pop("TASKSAGE_EMBEDDER", None)
    process = await asyncio.create_subprocess_exec(
        TASKSAGE, *args, cwd=cwd, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    out, err = await asyncio.wait_for(process.communicate(), 120)
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


async def test_backfill_switch_list_and_similar_from_the_command_line(
    settings: Settings, endpoints: Any, tmp_path: Path
) -> None:
    await prepare_database(settings, endpoints.dsn)
    corpus = Corpus(seed=9).messages(120, seed=1)
    conn = await asyncpg.connect(endpoints.dsn)
    try:  # rows as seeds/002 found them: stored, never embedded
        await conn.executemany(
            """INSERT INTO messages (message_id, source, author, content, occurred_at, content_hash, created_event_id)
               VALUES ($1, $2, $3, $4, $5, $6, $1)""",
            [
                (
                    m.message_id,
                    m.source,
                    m.author,
                    m.text,
                    datetime.now(UTC),
                    hashlib.sha256(m.text.encode()).digest(),
                )
                for m in corpus
            ],
        )
        await conn.execute(
            """INSERT INTO tasks (task_id, description, occurred_at, content_hash, created_event_id)
               VALUES ('t1', 'rotate the api keys', now(), $1, 't1')""",
            hashlib.sha256(b"rotate the api keys").digest(),
        )
    finally:
        await conn.close()
    dsn = endpoints.dsn

    code, out, err = await tasksage(tmp_path, dsn, "backfill", "--batch-size", "25")
    assert code == 0, err
    assert "messages: 120 rows embedded with hash-384" in out and "0 still missing" in out
    assert "tasks: 1 rows embedded" in out

    # A second model, messages only: registered beside the active one, not switched to.
    code, out, err = await tasksage(tmp_path, dsn, "backfill", "--dimension", "64", "--kind", "messages")
    assert code == 0, err
    assert "messages: 120 rows embedded with hash-64" in out

    code, out, err = await tasksage(tmp_path, dsn, "embeddings", "switch", "hash-64")
    assert code == 2
    assert "not switching reads to hash-64: tasks: 1 of 1 rows have no current vector" in err.replace(
        "\n", " "
    )

    code, out, err = await tasksage(tmp_path, dsn, "embeddings", "list", "--json")
    assert code == 0, err
    models = {m["name"]: m for m in orjson.loads(out)}
    assert models["hash-384"]["active"] and not models["hash-64"]["active"]
    coverage = {(c["table"], c["model"]): c["embedded"] for m in models.values() for c in m["coverage"]}
    assert coverage == {
        ("messages", "hash-384"): 120,
        ("tasks", "hash-384"): 1,
        ("messages", "hash-64"): 120,
        ("tasks", "hash-64"): 0,
    }
    assert all(len(m["indexes"]) == 2 for m in models.values())

    neighbour_of = corpus[3]
    code, out, err = await tasksage(
        tmp_path, dsn, "similar", neighbour_of.message_id, "--limit", "5", "--json"
    )
    assert code == 0, err
    result = orjson.loads(out)
    assert result["mode"] == "similar" and result["model"] == "hash-384" and len(result["hits"]) == 5
    assert neighbour_of.message_id not in {h["id"] for h in result["hits"]}
    vectors = HashingEmbedder(384).embed_sync([m.text for m in corpus])
    sims = np.stack(vectors) @ vectors[3]
    expected = [corpus[i].message_id for i in np.argsort(-sims, kind="stable") if i != 3][:5]
    assert [h["id"] for h in result["hits"]] == expected
    assert all(abs(h["similarity"] - float(sims[int(h["id"][1:])])) < 1e-4 for h in result["hits"])
