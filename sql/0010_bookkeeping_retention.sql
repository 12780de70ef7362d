-- Retention of bookkeeping and history (streams/bookkeeping.py, processors/postgres/retention.py).
--
-- The inbox holds the id of every event ever applied: without a bound it grows by one row per
-- event forever. Ids older than the replay window (TASKSAGE_REPLAY_WINDOW_DAYS) are deleted;
-- a replay may not re-apply records older than that window (streams/replay.py skips them), so
-- every record a replay can still apply finds its id here. The index makes that deletion (and
-- the optional ones of old predictions and messages) a range scan instead of a full one.
CREATE INDEX inbox_processed_at ON inbox (processed_at);
CREATE INDEX predictions_created_at ON predictions (created_at);
CREATE INDEX messages_occurred_at ON messages (occurred_at);
