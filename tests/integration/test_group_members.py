"""Instance names held by live workers, and the member id each one had
(processors/postgres/group_members.py)."""

from __future__ import annotations

from processors.postgres import group_members
from processors.postgres.migrations import migrate
from processors.postgres.pool import connect


async def test_a_name_is_held_for_the_life_of_its_connection_and_then_claimed_again(endpoints) -> None:
    first, second = await connect(endpoints.dsn), await connect(endpoints.dsn)
    try:
        assert await group_members.claim_instance(first, "g", "host") == "host-0"
        assert await group_members.claim_instance(second, "g", "host") == "host-1"
        assert await group_members.claim_instance(second, "other-group", "host") == "host-0"
        await first.close()  # what a process that dies does to its connection
        third = await connect(endpoints.dsn)
        try:
            assert await group_members.claim_instance(third, "g", "host") == "host-0"
        finally:
            await third.close()
    finally:
        await second.close()


async def test_the_member_id_of_a_name_is_the_last_recorded_until_forgotten(endpoints) -> None:
    conn = await connect(endpoints.dsn)
    try:
        await migrate(conn)
        assert await group_members.previous_member(conn, "g", "host-0") is None
        await group_members.record_member(conn, "g", "host-0", "member-a")
        await group_members.record_member(conn, "g", "host-0", "member-b")
        await group_members.record_member(conn, "g", "host-1", "member-c")
        assert await group_members.previous_member(conn, "g", "host-0") == "member-b"
        await group_members.forget_member(conn, "g", "host-0")
        assert await group_members.previous_member(conn, "g", "host-0") is None
        assert await group_members.previous_member(conn, "g", "host-1") == "member-c"
    finally:
        await conn.close()
