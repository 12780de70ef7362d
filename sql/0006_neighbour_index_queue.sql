-- A task's first outcome queues its vector for the neighbour index (issue 6).
--
-- Since sql/0005 a task vector enters the per-model HNSW index when its first outcome arrives.
-- Done inside the execution-result transaction, that insert was most of the transaction's
-- database time (about 1 ms per task at 100k rows with 1 GiB of shared buffers, 2.5 ms with
-- 128 MiB). Now the transaction only adds (task_id, model) here; the worker's index merger
-- sets has_outcome for queued rows in small transactions of their own, off the critical path
-- and on another database backend. Until then the neighbour query finds queued tasks by an
-- exact comparison with the queued vectors, so a task is a neighbour from the moment its
-- outcome commits, exactly as before. The queue is bounded (TASKSAGE_INDEX_QUEUE_LIMIT): past
-- it, the result transaction indexes its tasks itself.
CREATE TABLE task_index_queue (
    task_id    text NOT NULL,
    model      text NOT NULL,
    queued_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (task_id, model),
    FOREIGN KEY (task_id, model) REFERENCES task_embeddings (task_id, model) ON DELETE CASCADE
);
CREATE INDEX task_index_queue_by_model ON task_index_queue (model, queued_at);
