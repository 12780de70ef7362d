"""The outbox on a real PostgreSQL: one row per batch, narrowed on refusals, swept whole."""

from __future__ import annotations

import shutil
from pathlib import Path

import asyncpg

from processors.postgres import ledger
from processors.postgres.migrations import DEFAULT_SQL_DIR, migrate
from processors.records import OutgoingRecord

DEAD_LETTER_HEADERS = (("__connect.errors.topic", b"tasks"), ("tasksage.event_id", b"e-9"))


def batch(*values: str) -> list[OutgoingRecord]:
    return [
        OutgoingRecord(
            "out", f"k-{v}".encode(), v.encode(), DEAD_LETTER_HEADERS if v.startswith("dead") else ()
        )
        for v in values
    ]


def sent(
    records: list[OutgoingRecord],
) -> list[tuple[str, bytes | None, bytes, tuple[tuple[str, bytes], ...]]]:
    return [(r.topic, r.key, r.value, r.headers) for r in records]


async def records_waiting(conn: asyncpg.Connection) -> int:
    """What `tasksage status` reports for the outbox."""
    return int(await conn.fetchval(f"SELECT {ledger.OUTBOX_RECORD_COUNT} FROM outbox"))


async def test_a_batch_is_one_row_read_back_in_order_with_its_headers(endpoints) -> None:
    conn = await asyncpg.connect(endpoints.dsn)
    try:
        await migrate(conn)
        async with conn.transaction():
            stored = await ledger.add_to_outbox(conn, batch("s1", "dead-1", "s2"))
        rows = await conn.fetchval("SELECT count(*) FROM outbox")
        pending = await ledger.pending_outbox(conn, older_than_s=0.0)
        waiting = await records_waiting(conn)
    finally:
        await conn.close()
    assert rows == 1
    assert len({r.outbox_id for r in stored}) == 1 and stored[0].outbox_id is not None
    assert sent(pending) == sent(batch("s1", "dead-1", "s2"))
    assert [r.outbox_id for r in pending] == [r.outbox_id for r in stored]
    assert waiting == 3


async def test_refused_records_alone_stay_for_the_sweep(endpoints) -> None:
    conn = await asyncpg.connect(endpoints.dsn)
    try:
        await migrate(conn)
        first = await ledger.add_to_outbox(conn, batch("a", "dead-b", "c"))
        second = await ledger.add_to_outbox(conn, batch("d"))
        await ledger.clean_outbox(conn, ledger.outbox_cleanup([first[0], first[2], *second], [first[1]]))
        left = await ledger.pending_outbox(conn, older_than_s=0.0)
        await ledger.clean_outbox(conn, ledger.outbox_cleanup(left, []))
        after = await records_waiting(conn)
    finally:
        await conn.close()
    assert sent(left) == sent(batch("dead-b"))
    assert left[0].outbox_id == first[0].outbox_id
    assert after == 0


async def test_the_sweep_takes_whole_rows_up_to_its_limit(endpoints) -> None:
    conn = await asyncpg.connect(endpoints.dsn)
    try:
        await migrate(conn)
        await ledger.add_to_outbox(conn, batch("a", "b", "c"))
        await ledger.add_to_outbox(conn, batch("d", "e"))
        four = await ledger.pending_outbox(conn, older_than_s=0.0, limit=4)
        one = await ledger.pending_outbox(conn, older_than_s=0.0, limit=1)
        five = await ledger.pending_outbox(conn, older_than_s=0.0, limit=5)
        none_old_enough = await ledger.pending_outbox(conn, older_than_s=3600.0)
    finally:
        await conn.close()
    assert [r.value for r in four] == [b"a", b"b", b"c"]
    assert [r.value for r in one] == [b"a", b"b", b"c"], "a row bigger than the limit still goes out whole"
    assert [r.value for r in five] == [b"a", b"b", b"c", b"d", b"e"]
    assert none_old_enough == []


async def test_records_waiting_before_the_upgrade_are_kept_in_order(endpoints, tmp_path: Path) -> None:
    before = tmp_path / "sql"
    before.mkdir()
    for path in sorted(DEFAULT_SQL_DIR.glob("*.sql")):
        if int(path.name[:4]) < 7:
            shutil.copy(path, before / path.name)
    conn = await asyncpg.connect(endpoints.dsn)
    try:
        await migrate(conn, before)
        await conn.execute(
            """INSERT INTO outbox (topic, key, value, headers) VALUES
               ('out', 'k1', 'one', '[]'), ('dlq', NULL, 'two', '[["tasksage.event_id", "e-2"]]'),
               ('out', 'k3', 'three', '[]')"""
        )
        await migrate(conn)
        pending = await ledger.pending_outbox(conn, older_than_s=0.0)
        fresh = await ledger.add_to_outbox(conn, batch("after"))
    finally:
        await conn.close()
    assert sent(pending) == [
        ("out", b"k1", b"one", ()),
        ("dlq", None, b"two", (("tasksage.event_id", b"e-2"),)),
        ("out", b"k3", b"three", ()),
    ]
    assert len({r.outbox_id for r in pending}) == 3, "each old record is its own row"
    assert fresh[0].outbox_id is not None and fresh[0].outbox_id > max(r.outbox_id or 0 for r in pending)
