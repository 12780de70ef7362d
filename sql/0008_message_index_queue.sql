-- A new message's vector waits outside the HNSW index until the merger indexes it (issue 6).
--
-- The HNSW insert was most of a message batch's database time (1.27 of 1.83 ms per message
-- on the benchmark machine), all of it inside the batch's one transaction on one backend, so
-- message-ingested ran at one core of PostgreSQL while the other core idled. Now the batch
-- stores its vectors with `indexed = false`; the worker's index merger (as for task vectors,
-- sql/0006) sets the flag in small transactions of its own, on another backend. Until then
-- duplicate checks and searches compare queued vectors exactly, so a message is found from
-- the moment its batch commits, as before. Past TASKSAGE_INDEX_QUEUE_LIMIT queued vectors the
-- batch indexes its own.
--
-- Rows written before this migration, and vectors written by backfills, are indexed (the
-- default). The per-model index predicate becomes `model = '<name>' AND indexed`; the worker
-- recreates the indexes with it at start-up.
ALTER TABLE message_embeddings ADD COLUMN indexed boolean NOT NULL DEFAULT true;

-- The queue: the merger takes the oldest, the pipeline reads a model's queued vectors.
CREATE INDEX message_embeddings_queued ON message_embeddings (model, embedded_at) WHERE NOT indexed;

DO $$
DECLARE r record;
BEGIN
    FOR r IN SELECT indexname FROM pg_indexes
             WHERE schemaname = current_schema() AND tablename = 'message_embeddings'
               AND indexname LIKE 'message_embeddings_hnsw_%'
    LOOP
        EXECUTE format('DROP INDEX %I', r.indexname);
    END LOOP;
END $$;
