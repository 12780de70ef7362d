-- Delivery checks (issue 5).

-- The last record a consumer group processed from each partition, by offset and a hash of its
-- key and value. On every partition assignment the worker reads that offset from the broker
-- again: a missing record means the log was lost (Tansu keeps logs in memory only), a different
-- one means the log was replaced, and either way the stored position no longer applies.
CREATE TABLE partition_anchors (
    group_id     text NOT NULL,
    topic        text NOT NULL,
    partition    integer NOT NULL,
    "offset"     bigint NOT NULL,
    fingerprint  bytea NOT NULL,
    updated_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (group_id, topic, partition)
);

-- The Kafka cluster id each consumer group last read from: a different id means the positions
-- stored for the group were taken on another cluster.
CREATE TABLE broker_clusters (
    group_id     text PRIMARY KEY,
    cluster_id   text NOT NULL,
    first_seen   timestamptz NOT NULL DEFAULT now(),
    last_seen    timestamptz NOT NULL DEFAULT now()
);

-- Held results are dead-lettered oldest first once they have waited too long for their task.
CREATE INDEX held_results_age ON held_results (held_at);
