-- Batches a worker began and did not commit: what finds a record that kills the process.
--
-- Before records are decoded or processed, the worker writes, per partition, where its oldest
-- uncommitted batch starts, an end (exclusive) past the records it read so far (two batches past
-- the start, so that about one row is written per batch), and how many runs
-- (worker processes, told apart by run_id) in a row began a batch at that start. A committed batch
-- moves the partition's position past its start, so its row no longer matches and is overwritten
-- by the next batch. A row whose start equals the stored position after a restart is a batch a
-- run began and never finished: the process died in it (a clean stop deletes the rows). The next
-- run processes those records one at a time, each with a row of its own, and a record that a run
-- died on by itself, TASKSAGE_POISON_PILL_AFTER times in a row, is dead-lettered as a poison pill.
CREATE TABLE batch_attempts (
    consumer_group  text NOT NULL,
    topic           text NOT NULL,
    partition       integer NOT NULL,
    start_offset    bigint NOT NULL,
    end_offset      bigint NOT NULL,
    attempts        integer NOT NULL,
    run_id          text NOT NULL,
    updated_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (consumer_group, topic, partition)
);
