-- Only tasks with outcomes enter the neighbour index (issue 6).
--
-- The neighbour query joins task_arm_outcomes, so a task without outcomes can never be a
-- neighbour; indexing it on arrival only cost an HNSW insert (6-21 ms per row at 100k rows,
-- BRIEF.md) on the way to its schedule. Its vector is still stored (reuse by content hash,
-- profile adaptation); it enters the per-model partial HNSW index, whose predicate becomes
-- `model = '<name>' AND has_outcome`, when the transaction that applies its first outcome sets
-- the flag. The worker recreates the per-model indexes with the new predicate at start-up.
ALTER TABLE task_embeddings ADD COLUMN has_outcome boolean NOT NULL DEFAULT false;

DO $$
DECLARE r record;
BEGIN
    FOR r IN SELECT indexname FROM pg_indexes
             WHERE schemaname = current_schema() AND tablename = 'task_embeddings'
               AND indexname LIKE 'task_embeddings_hnsw_%'
    LOOP
        EXECUTE format('DROP INDEX %I', r.indexname);
    END LOOP;
END $$;

UPDATE task_embeddings e SET has_outcome = true
WHERE EXISTS (SELECT 1 FROM task_arm_outcomes o WHERE o.task_id = e.task_id);
