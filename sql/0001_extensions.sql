-- pgvector provides the vector type and HNSW indexes.
CREATE EXTENSION IF NOT EXISTS vector;
