"""group_members: the Kafka group member id each worker instance had (sql/0013), and the claim
on an instance name that tells a live worker from a dead one."""

from __future__ import annotations

from processors.postgres.pool import Conn, Connection

# Slots tried per host before giving up: more workers than this on one host share no name.
MAX_SLOTS = 64


async def claim_instance(conn: Connection, group: str, host: str) -> str | None:
    """Claim the first free instance name `host-N` of `group` for as long as `conn` lives (a
    session advisory lock: a process that dies releases it with its connection). None when all
    MAX_SLOTS names are held by live workers."""
    for slot in range(MAX_SLOTS):
        name = f"{host}-{slot}"
        # One lock per statement: a filter over many rows could take several.
        if await conn.fetchval("SELECT pg_try_advisory_lock(hashtextextended($1, 0))", f"{group}/{name}"):
            return name
    return None


async def previous_member(conn: Conn, group: str, instance_id: str) -> str | None:
    member: str | None = await conn.fetchval(
        "SELECT member_id FROM group_members WHERE consumer_group = $1 AND instance_id = $2",
        group,
        instance_id,
    )
    return member


async def record_member(conn: Conn, group: str, instance_id: str, member_id: str) -> None:
    await conn.execute(
        """INSERT INTO group_members (consumer_group, instance_id, member_id) VALUES ($1, $2, $3)
           ON CONFLICT (consumer_group, instance_id)
           DO UPDATE SET member_id = EXCLUDED.member_id, updated_at = now()""",
        group,
        instance_id,
        member_id,
    )


async def forget_member(conn: Conn, group: str, instance_id: str) -> None:
    """A clean stop left the group itself: nothing to end for the next worker."""
    await conn.execute(
        "DELETE FROM group_members WHERE consumer_group = $1 AND instance_id = $2", group, instance_id
    )
