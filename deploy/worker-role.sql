-- Least-privilege PostgreSQL roles for tasksage. Run once per database, as a superuser:
--
--   psql "$ADMIN_DATABASE_URL" -f deploy/worker-role.sql \
--        -v db=tasksage -v owner_password="$OWNER_PASSWORD" -v worker_password="$WORKER_PASSWORD"
--
-- Optional: -v owner=NAME -v worker=NAME (default tasksage_owner and tasksage_worker).
--
-- tasksage_owner  owns the schema: `tasksage migrate` (DDL) and the per-model vector indexes.
-- tasksage_worker runs `tasksage worker`, `replay`, `dlq` and the clients: it reads and writes
--                 rows, and can create, alter or drop nothing. A worker that finds a migration
--                 pending stops and says so; run `tasksage migrate` with the owner's URL first.
--                 When a new embedding model is configured, its vector indexes are created by
--                 the owner (start the worker once with the owner's DATABASE_URL); until then
--                 the worker logs a warning and similarity searches scan without an index.
--
-- The pgvector extension is not a trusted extension, so this script creates it (superuser).
-- Adopting this on an existing database whose tables belong to another role: also run
--   REASSIGN OWNED BY <that role> TO tasksage_owner;   (in that database)
-- so that later migrations can alter them.

\set ON_ERROR_STOP on
\if :{?owner}
\else
  \set owner tasksage_owner
\endif
\if :{?worker}
\else
  \set worker tasksage_worker
\endif

CREATE ROLE :"owner" LOGIN PASSWORD :'owner_password';
CREATE ROLE :"worker" LOGIN PASSWORD :'worker_password';
-- A worker killed mid-transaction over TCP keeps its locks (inbox rows, task locks) until the
-- server notices the dead connection; this bounds that. A batch transaction never idles: the
-- embedding calls happen before it opens. (The learner's pass yields to the event loop between
-- slices of updates, for milliseconds.)
ALTER ROLE :"worker" SET idle_in_transaction_session_timeout = '60s';

GRANT CONNECT, TEMPORARY ON DATABASE :"db" TO :"owner";
GRANT CONNECT ON DATABASE :"db" TO :"worker";

\connect :"db"

CREATE EXTENSION IF NOT EXISTS vector;

-- Only the owner creates objects; nobody else may (PostgreSQL < 15 lets PUBLIC create in public).
REVOKE CREATE ON SCHEMA public FROM PUBLIC;
GRANT USAGE, CREATE ON SCHEMA public TO :"owner";
GRANT USAGE ON SCHEMA public TO :"worker";

-- Every table and sequence the owner creates from now on (each migration) ...
ALTER DEFAULT PRIVILEGES FOR ROLE :"owner" IN SCHEMA public
    GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO :"worker";
ALTER DEFAULT PRIVILEGES FOR ROLE :"owner" IN SCHEMA public
    GRANT USAGE, SELECT ON SEQUENCES TO :"worker";

-- ... and those that exist already (a database migrated before this script ran).
GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO :"worker";
GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO :"worker";
