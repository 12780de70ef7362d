-- Search, backfill and model changes (issue 4).

-- Estimated cost of each day's embedding calls, so a daily budget can be enforced across every
-- process that embeds (worker, backfill, search) and `tasksage status` can show the spend.
ALTER TABLE embedding_usage ADD COLUMN cost_usd double precision NOT NULL DEFAULT 0;
