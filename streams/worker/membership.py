"""How a worker joins its consumer group so that a crash stalls its partitions briefly.

A worker killed with `kill -9` cannot leave its group: the broker keeps its partitions with the
dead member until the session times out, and only then hands them to the restarted worker. So
each worker claims an instance name (host name and the lowest free slot, held by a PostgreSQL
advisory lock for its whole life: processors/postgres/group_members.py) and records its member
id under it. A restarted worker claims the same name, finds the member id of its dead
predecessor and sends LeaveGroup for it before joining: the group rebalances at once.

Group timing depends on the broker. Apache Kafka refuses sessions under its
group.min.session.timeout.ms (6 s by default). Tansu holds every JoinGroup for half the session
timeout, so it gets a 2 s session by default (heartbeats a quarter of the session, at most 1 s).
An explicit `TASKSAGE_GROUP_INSTANCE_ID` uses static membership (KIP-345) instead, for brokers
that implement it fully.
"""

from __future__ import annotations

import logging
import socket
from dataclasses import dataclass
from typing import Any

from aiokafka import AIOKafkaClient, AIOKafkaConsumer
from aiokafka.abc import ConsumerRebalanceListener
from aiokafka.protocol.group import LeaveGroupRequest

from processors.postgres import group_members
from processors.postgres.pool import Connection, Pool, connect
from streams.kafka import client_options, cluster_id, make_consumer
from streams.settings import Settings

log = logging.getLogger(__name__)

KAFKA_SESSION_TIMEOUT_MS = 6000  # Apache Kafka's default group.min.session.timeout.ms
TANSU_SESSION_TIMEOUT_MS = 2000
GROUP_COORDINATOR = 0  # FindCoordinator's key type for a consumer group
# Tansu's cluster id unless its operator sets another one.
TANSU_CLUSTER_PREFIX = "tansu"


@dataclass(frozen=True, slots=True)
class GroupTiming:
    session_timeout_ms: int
    heartbeat_interval_ms: int


def group_timing(settings: Settings, broker_cluster_id: str | None) -> GroupTiming:
    """The configured timing, or the broker's fast default where a setting is left unset."""
    tansu = (broker_cluster_id or "").startswith(TANSU_CLUSTER_PREFIX)
    session = settings.session_timeout_ms or (TANSU_SESSION_TIMEOUT_MS if tansu else KAFKA_SESSION_TIMEOUT_MS)
    heartbeat = settings.heartbeat_interval_ms or min(1000, session // 4)
    return GroupTiming(session, heartbeat)


class Membership:
    """The worker's instance name and group member id, kept in PostgreSQL across its restarts."""

    def __init__(self, settings: Settings, bootstrap: str, dsn: str, pool: Pool) -> None:
        self.settings = settings
        self.bootstrap = bootstrap
        self.dsn = dsn
        self.pool = pool
        self.group = settings.consumer_group
        self.instance: str | None = None
        self.timing = GroupTiming(settings.session_timeout_ms or 0, settings.heartbeat_interval_ms or 0)
        self._claim: Connection | None = None  # the connection whose life holds the instance name
        self._recorded: str | None = None

    async def consumer(self, topics: list[str], listener: ConsumerRebalanceListener) -> AIOKafkaConsumer:
        """A consumer subscribed to `topics` that joins the group as this instance when started."""
        options = await self.prepare()
        consumer = make_consumer(self.settings, self.bootstrap, group_id=self.group, **options)
        consumer.subscribe(topics, listener=listener)
        return consumer

    async def prepare(self) -> dict[str, Any]:
        """Claim an instance name, end a dead predecessor's membership; the consumer's options."""
        self.timing = group_timing(self.settings, await cluster_id(self.settings, self.bootstrap))
        options: dict[str, Any] = {
            "session_timeout_ms": self.timing.session_timeout_ms,
            "heartbeat_interval_ms": self.timing.heartbeat_interval_ms,
        }
        if self.settings.group_instance_id is not None:
            return {**options, "group_instance_id": self.settings.group_instance_id}
        self._claim = await connect(self.dsn)
        self.instance = await group_members.claim_instance(self._claim, self.group, socket.gethostname())
        if self.instance is None:
            log.warning("more workers on this host than instance names: a crash waits out the session")
            return options
        previous = await group_members.previous_member(self._claim, self.group, self.instance)
        if previous:
            await self._leave_for(previous)
        return options

    async def _leave_for(self, member_id: str) -> None:
        """Send LeaveGroup for the dead predecessor's member id (best effort: at worst the group
        waits for its session to time out, as without this)."""
        client = AIOKafkaClient(**client_options(self.settings, self.bootstrap))
        try:
            await client.bootstrap()
            coordinator = await client.coordinator_lookup(GROUP_COORDINATOR, self.group)
            response = await client.send(coordinator, LeaveGroupRequest(self.group, member_id))
            log.info(
                "ended the membership of this instance's previous process (%s, member %s): error code %d",
                self.instance,
                member_id,
                response.error_code,
            )
        except Exception as exc:
            log.warning("cannot end the previous process' group membership (%s): %s", member_id, exc)
        finally:
            await client.close()

    async def record(self, consumer: AIOKafkaConsumer) -> None:
        """After an assignment: remember this process' member id under its instance name."""
        member = getattr(getattr(consumer, "_coordinator", None), "member_id", None)
        if self.instance is None or not isinstance(member, str) or not member or member == self._recorded:
            return
        try:
            async with self.pool.acquire() as conn:
                await group_members.record_member(conn, self.group, self.instance, member)
        except Exception as exc:  # only a restart's speed depends on it
            log.warning("cannot record this worker's group member id: %s", exc)
            return
        self._recorded = member

    async def release(self, left_group: bool) -> None:
        """At a stop: a worker that left its group leaves nothing to end; then free the name."""
        if self._claim is None:
            return
        try:
            if left_group and self.instance is not None:
                await group_members.forget_member(self._claim, self.group, self.instance)
        except Exception as exc:
            log.debug("cannot forget this worker's member id: %s", exc)
        finally:
            await self._claim.close()
            self._claim = None
