-- The learned layer of the estimate (processors/scheduling/learned.py), kept with the statistics
-- so that every worker decides with the same state and each outcome updates it exactly once.
--
-- One layer per embedding model: the text models live in that model's vector space, and the
-- stacker learned how far to trust neighbours found in it. The layer's head row is locked by the
-- transaction that applies outcomes (workers serialise their updates) and carries a version
-- drawn from a sequence on every write: a worker compares it with the version of its cached
-- copy (one row read per batch) and reloads the models only when another worker moved it. A
-- sequence, not a counter, because a value drawn by a transaction that rolled back is never
-- handed out again, so a cache that saw it can never match a state that was committed.
CREATE SEQUENCE learned_layer_versions;

CREATE TABLE learned_layers (
    embedding_model  text PRIMARY KEY,
    version          bigint NOT NULL,
    updated_at       timestamptz NOT NULL DEFAULT now()
);

-- The layer's models: the stacker (agent and model ''), the text model shared by all arms
-- (agent and model '') and one text model per arm. `state` is the Gaussian posterior, mean then
-- covariance, little-endian float64: exact, so the stored state is bit for bit what the pure
-- layer computes from the same outcomes (a stacker is 56 numbers, a text model of dimension 64
-- about 33 kB).
CREATE TABLE learned_models (
    embedding_model  text NOT NULL REFERENCES learned_layers (embedding_model) ON DELETE CASCADE,
    component        text NOT NULL CHECK (component IN ('stacker', 'text_all', 'text_arm')),
    agent            text NOT NULL,
    model            text NOT NULL,
    dimension        integer NOT NULL CHECK (dimension > 0),
    outcomes         bigint NOT NULL,
    state            bytea NOT NULL,
    PRIMARY KEY (embedding_model, component, agent, model)
);
-- Float64 posteriors do not compress: stored out of line without a compression attempt, which
-- would cost CPU on every write of a text model.
ALTER TABLE learned_models ALTER COLUMN state SET STORAGE EXTERNAL;

-- The layer's inputs for each arm a schedule considered, computed when the task was scheduled
-- and stored in the transaction that stores the prediction: at the outcome the layer learns
-- from what was known before it (prequential). Pruned with their prediction.
CREATE TABLE learned_features (
    schedule_id  text NOT NULL REFERENCES predictions (schedule_id) ON DELETE CASCADE,
    agent        text NOT NULL,
    model        text NOT NULL,
    features     float8[] NOT NULL,  -- learned.FEATURES order
    PRIMARY KEY (schedule_id, agent, model)
);
