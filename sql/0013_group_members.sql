-- Which Kafka group member each worker instance was, so that a restarted worker can end its dead
-- predecessor's membership at once instead of waiting out the session timeout.
--
-- A worker claims an instance name (host name and the lowest free slot) with a session-level
-- advisory lock held for its whole life: a worker that died lost its lock with its connection, so
-- the next worker on that host claims the same name. Where the broker implements static membership
-- (Apache Kafka) the name is the group.instance.id and takes the partitions back with no
-- rebalance; elsewhere (Tansu) the worker sends LeaveGroup for the member id recorded here.
CREATE TABLE group_members (
    consumer_group  text NOT NULL,
    instance_id     text NOT NULL,
    member_id       text NOT NULL,
    updated_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (consumer_group, instance_id)
);
