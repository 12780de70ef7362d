-- Core schema of tasksage. Vector columns carry no fixed dimension: each embedding model gets
-- its own partial HNSW index over (embedding::vector(dim)) WHERE model = '<name>', created by
-- the worker for the models it uses, so models never share an index and can be swapped.

CREATE TABLE embedding_models (
    name        text PRIMARY KEY,
    dimension   integer NOT NULL CHECK (dimension > 0),
    provider    text NOT NULL,
    active      boolean NOT NULL DEFAULT false,   -- the model that reads (search, scheduling) use
    created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX embedding_models_one_active ON embedding_models (active) WHERE active;

CREATE TABLE tasks (
    task_id           text PRIMARY KEY,
    description       text NOT NULL,
    kind              text,
    priority          integer NOT NULL DEFAULT 0,
    requirements      jsonb NOT NULL DEFAULT '[]',
    dependencies      jsonb NOT NULL DEFAULT '[]',
    context           jsonb NOT NULL DEFAULT '{}',
    requested_agent   text,
    deadline          timestamptz,
    occurred_at       timestamptz NOT NULL,
    content_hash      bytea NOT NULL,
    status            text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'succeeded', 'failed')),
    attempts          integer NOT NULL DEFAULT 0,
    successes         integer NOT NULL DEFAULT 0,
    last_outcome_at   timestamptz,
    created_event_id  text NOT NULL,
    inserted_at       timestamptz NOT NULL DEFAULT now(),
    search_text       tsvector GENERATED ALWAYS AS (to_tsvector('english', description)) STORED
);
CREATE INDEX tasks_pending ON tasks (priority DESC, occurred_at) WHERE status = 'pending';
CREATE INDEX tasks_search_text ON tasks USING gin (search_text);

CREATE TABLE task_embeddings (
    task_id       text NOT NULL REFERENCES tasks (task_id) ON DELETE CASCADE,
    model         text NOT NULL REFERENCES embedding_models (name),
    content_hash  bytea NOT NULL,
    embedding     vector NOT NULL,
    embedded_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (task_id, model)
);
CREATE INDEX task_embeddings_by_hash ON task_embeddings (model, content_hash);

-- Per-task, per-(agent, model) outcome history: the evidence similar tasks lend to new ones.
CREATE TABLE task_arm_outcomes (
    task_id           text NOT NULL REFERENCES tasks (task_id) ON DELETE CASCADE,
    agent             text NOT NULL,
    model             text NOT NULL,
    attempts          integer NOT NULL,
    successes         integer NOT NULL,
    duration_sum_ms   double precision NOT NULL DEFAULT 0,
    duration_n        integer NOT NULL DEFAULT 0,
    cost_sum_usd      double precision NOT NULL DEFAULT 0,
    cost_n            integer NOT NULL DEFAULT 0,
    last_finished_at  timestamptz,
    PRIMARY KEY (task_id, agent, model)
);

-- Aggregates per (agent, model): scope '*' is every task, otherwise the task kind.
CREATE TABLE arm_stats (
    scope             text NOT NULL,
    agent             text NOT NULL,
    model             text NOT NULL,
    attempts          bigint NOT NULL,
    successes         bigint NOT NULL,
    duration_sum_ms   double precision NOT NULL DEFAULT 0,
    duration_n        bigint NOT NULL DEFAULT 0,
    cost_sum_usd      double precision NOT NULL DEFAULT 0,
    cost_n            bigint NOT NULL DEFAULT 0,
    updated_at        timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (scope, agent, model)
);

CREATE TABLE executions (
    event_id       text PRIMARY KEY,
    task_id        text NOT NULL,
    kind           text,
    agent          text NOT NULL,
    model          text NOT NULL,
    success        boolean NOT NULL,
    duration_ms    double precision,
    cost_usd       double precision,
    error_message  text,
    finished_at    timestamptz NOT NULL,
    occurred_at    timestamptz NOT NULL,
    recorded_at    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX executions_task ON executions (task_id);

-- Results that arrived before their task: applied when the task arrives, or dead-lettered.
CREATE TABLE held_results (
    event_id    text PRIMARY KEY,
    task_id     text NOT NULL,
    payload     bytea NOT NULL,
    topic       text NOT NULL,
    partition   integer NOT NULL,
    "offset"    bigint NOT NULL,
    held_at     timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX held_results_task ON held_results (task_id);

-- Success and failure profile vectors per (agent, model), adapted from outcomes (Rocchio).
CREATE TABLE arm_profiles (
    agent            text NOT NULL,
    model            text NOT NULL,
    embedding_model  text NOT NULL REFERENCES embedding_models (name),
    outcome          text NOT NULL CHECK (outcome IN ('success', 'failure')),
    vector           vector NOT NULL,
    weight           double precision NOT NULL,
    updated_at       timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (agent, model, embedding_model, outcome)
);

-- The static tier table (loaded from the tiers file at start): the cold-start answer.
CREATE TABLE tier_defaults (
    kind                  text NOT NULL,
    tier                  integer NOT NULL,
    agent                 text NOT NULL,
    model                 text NOT NULL,
    cost_per_call_usd     double precision,
    expected_duration_ms  double precision,
    prior_success         double precision,
    PRIMARY KEY (kind, tier, agent, model)
);

CREATE TABLE messages (
    message_id            text PRIMARY KEY,
    source                text NOT NULL,
    author                text NOT NULL,
    content               text NOT NULL,
    thread_id             text,
    task_id               text,
    occurred_at           timestamptz NOT NULL,
    content_hash          bytea NOT NULL,
    created_event_id      text NOT NULL,
    duplicate_of          text,
    duplicate_similarity  double precision,
    inserted_at           timestamptz NOT NULL DEFAULT now(),
    search_text           tsvector GENERATED ALWAYS AS (to_tsvector('english', content)) STORED
);
CREATE INDEX messages_search_text ON messages USING gin (search_text);

CREATE TABLE message_embeddings (
    message_id    text NOT NULL REFERENCES messages (message_id) ON DELETE CASCADE,
    model         text NOT NULL REFERENCES embedding_models (name),
    content_hash  bytea NOT NULL,
    embedding     vector NOT NULL,
    embedded_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (message_id, model)
);
CREATE INDEX message_embeddings_by_hash ON message_embeddings (model, content_hash);

-- Every schedule emitted, so later outcomes can be scored against it.
CREATE TABLE predictions (
    schedule_id            text PRIMARY KEY,
    task_id                text NOT NULL,
    agent                  text NOT NULL,
    model                  text NOT NULL,
    success_probability    double precision NOT NULL,
    confidence             double precision NOT NULL,
    predicted_duration_ms  double precision,
    expected_cost_usd      double precision,
    success_target         double precision NOT NULL,
    cold_start             boolean NOT NULL,
    exploration            boolean NOT NULL,
    embedding_model        text NOT NULL,
    alternatives           jsonb NOT NULL,
    source_event_id        text NOT NULL,
    created_at             timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX predictions_task ON predictions (task_id, created_at DESC);

-- Exactly-once effects: an event changes the database only if its id enters the inbox
-- in the same transaction as its effects and the consumer position.
CREATE TABLE inbox (
    stream        text NOT NULL,
    event_id      text NOT NULL,
    topic         text NOT NULL,
    partition     integer NOT NULL,
    "offset"      bigint NOT NULL,
    processed_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (stream, event_id)
);

CREATE TABLE consumer_positions (
    group_id     text NOT NULL,
    topic        text NOT NULL,
    partition    integer NOT NULL,
    next_offset  bigint NOT NULL,
    updated_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (group_id, topic, partition)
);

-- Records to publish, written with the effects that caused them (transactional outbox).
CREATE TABLE outbox (
    id          bigserial PRIMARY KEY,
    topic       text NOT NULL,
    key         bytea,
    value       bytea NOT NULL,
    headers     jsonb NOT NULL DEFAULT '[]',
    created_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE embedding_usage (
    day        date NOT NULL,
    provider   text NOT NULL,
    model      text NOT NULL,
    texts      bigint NOT NULL DEFAULT 0,
    tokens     bigint NOT NULL DEFAULT 0,
    requests   bigint NOT NULL DEFAULT 0,
    PRIMARY KEY (day, provider, model)
);
