"""Rows without a current embedding: counting them (coverage), paging through them (backfill),
and storing their vectors only if the text did not change meanwhile.

"Current" means: a vector of the model whose content_hash equals the row's content_hash. A row
never embedded by the model, or embedded before its text changed, is missing.
"""

from __future__ import annotations

import asyncio
import zlib
from collections.abc import Sequence
from dataclasses import dataclass

from processors.embedders.base import Vector
from processors.postgres import stored_vectors
from processors.postgres.pool import Conn
from processors.postgres.search_queries import KINDS, KindSpec
from processors.search.types import SearchKind

# store_vectors() names kinds in the singular.
_STORE_KIND = {"messages": "message", "tasks": "task"}


@dataclass(frozen=True, slots=True)
class Coverage:
    table: str
    model: str
    total: int
    embedded: int

    @property
    def missing(self) -> int:
        return self.total - self.embedded

    @property
    def ratio(self) -> float:
        return 1.0 if self.total == 0 else self.embedded / self.total


@dataclass(frozen=True, slots=True)
class PendingRow:
    id: str
    text: str
    content_hash: bytes


def _current(spec: KindSpec, alias: str = "s") -> str:
    return f"""EXISTS (SELECT 1 FROM {spec.vectors} e WHERE e.{spec.key} = {alias}.{spec.key}
                AND e.model = $1 AND e.content_hash = {alias}.content_hash)"""


async def coverage(
    conn: Conn, kind: SearchKind, model: str, *, slice_rows: int | None = None, pause_s: float = 0.0
) -> Coverage:
    """Rows and rows with a current vector. In one statement by default (exact at one instant).

    With `slice_rows`, counted in key-ordered slices with `pause_s` between them: the worker's
    periodic gauge must not hold a core for long: one statement over a large table holds it for
    long enough that every batch waiting on PostgreSQL meanwhile pays for it in latency, while a
    slice is short. The slices are not one snapshot:
    rows written meanwhile may be counted or not, which a gauge can live with."""
    spec = KINDS[kind]
    if slice_rows is None:
        row = await conn.fetchrow(
            f"SELECT count(*) AS total, count(*) FILTER (WHERE {_current(spec)}) AS embedded FROM {spec.source} s",
            model,
        )
        assert row is not None
        return Coverage(spec.source, model, int(row["total"]), int(row["embedded"]))
    total = embedded = 0
    after: str | None = None
    while True:
        cursor = "" if after is None else f"WHERE s.{spec.key} > $2"
        args: tuple[object, ...] = (model,) if after is None else (model, after)
        row = await conn.fetchrow(
            f"""SELECT count(*) AS n, count(*) FILTER (WHERE {_current(spec, "x")}) AS embedded,
                       max(x.{spec.key}) AS last
                FROM (SELECT s.{spec.key}, s.content_hash FROM {spec.source} s {cursor}
                      ORDER BY s.{spec.key} LIMIT {int(slice_rows)}) x""",
            *args,
        )
        assert row is not None
        total += int(row["n"])
        embedded += int(row["embedded"])
        if row["n"] < slice_rows:
            return Coverage(spec.source, model, total, embedded)
        after = row["last"]
        if pause_s > 0:
            await asyncio.sleep(pause_s)


async def missing_count(conn: Conn, kind: SearchKind, model: str) -> int:
    spec = KINDS[kind]
    return int(await conn.fetchval(f"SELECT count(*) FROM {spec.source} s WHERE NOT {_current(spec)}", model))


async def next_missing(
    conn: Conn, kind: SearchKind, model: str, after: str | None, limit: int
) -> list[PendingRow]:
    """The next `limit` rows without a current vector, in key order after `after` (keyset
    paging: each page is an index range scan, however far the backfill has got)."""
    spec = KINDS[kind]
    cursor = "" if after is None else f"AND s.{spec.key} > $2"
    args: tuple[object, ...] = (model,) if after is None else (model, after)
    rows = await conn.fetch(
        f"""SELECT s.{spec.key} AS id, s.{spec.text} AS text, s.content_hash FROM {spec.source} s
            WHERE NOT {_current(spec)} {cursor} ORDER BY s.{spec.key} LIMIT {int(limit)}""",
        *args,
    )
    return [PendingRow(r["id"], r["text"], bytes(r["content_hash"])) for r in rows]


async def store_if_current(
    conn: Conn, kind: SearchKind, model: str, rows: Sequence[tuple[str, bytes, Vector]]
) -> int:
    """Store vectors of rows whose text is still the text embedded; returns how many.

    The rows are share-locked (in key order) until commit, so a concurrent update of a message's
    text (by the worker) either happens before (and its row is skipped here: the worker stored a
    vector for the new text) or waits and then overwrites this vector with one of the new text.
    """
    if not rows:
        return 0
    spec = KINDS[kind]
    async with conn.transaction():
        current = await conn.fetch(
            f"""SELECT s.{spec.key} AS id FROM {spec.source} s
                JOIN unnest($1::text[], $2::bytea[]) AS u(id, h) ON s.{spec.key} = u.id AND s.content_hash = u.h
                ORDER BY s.{spec.key} FOR SHARE OF s""",
            [r[0] for r in rows],
            [r[1] for r in rows],
        )
        keep = {r["id"] for r in current}
        chosen = [r for r in rows if r[0] in keep]
        await stored_vectors.store_vectors(conn, _STORE_KIND[kind], model, chosen)
    return len(chosen)


def lock_key(model: str) -> int:
    """Advisory lock id of a model's backfill: one backfill per model at a time."""
    return zlib.crc32(f"tasksage-backfill:{model}".encode()) - 2**31


async def try_lock(conn: Conn, model: str) -> bool:
    return bool(await conn.fetchval("SELECT pg_try_advisory_lock($1)", lock_key(model)))


async def unlock(conn: Conn, model: str) -> None:
    await conn.execute("SELECT pg_advisory_unlock($1)", lock_key(model))
