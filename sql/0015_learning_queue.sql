-- Outcomes waiting for the learned layer (sql/0014), learned off the consume path.
--
-- Updating the layer inside the transaction that claims the outcomes held the layer's head-row
-- lock for the whole transaction and rewrote every text model the batch taught, so the
-- execution-result stream waited for three model updates per outcome and for the rewrite. Now
-- that transaction only copies each outcome with the layer's inputs its schedule stored (one
-- INSERT ... SELECT); the worker's learner takes queued rows oldest first under the head-row
-- lock, applies them and deletes them in one transaction: each outcome still teaches the layer
-- exactly once, and the models are written once per pass instead of once per batch.
--
-- The features are copied, not referenced: a prediction pruned by retention before the learner
-- ran must not take its outcome's lesson with it. The task's vector is read when the outcome is
-- learned (it is the task's, kept until the task is pruned; without it the outcome teaches the
-- stacker alone). Positions are drawn at insert, so two workers' outcomes may be learned in an
-- order a little different from their commits: each is still learned once.
CREATE TABLE learned_queue (
    position         bigserial PRIMARY KEY,
    embedding_model  text NOT NULL,
    task_id          text NOT NULL,
    agent            text NOT NULL,
    model            text NOT NULL,
    success          boolean NOT NULL,
    features         float8[] NOT NULL,  -- learned.FEATURES order
    queued_at        timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX learned_queue_by_model ON learned_queue (embedding_model, position);
