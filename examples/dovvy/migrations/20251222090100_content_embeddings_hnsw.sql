-- Purpose: HNSW index for cosine nearest-neighbour retrieval of content chunks (RAG), built after the bulk load of content_embeddings
-- Ticket: PR1 (feature/pr1-database-schema)
-- Reversible: yes
-- Rollback: drop index content_embeddings_embedding_idx (see the down section)
-- Phase: post-load
--
-- Building HNSW over loaded rows is much faster than maintaining the graph row by row during
-- a backfill; rows synced afterwards are added to the index as they arrive.
-- vector_cosine_ops because retrieval ranks by cosine distance (`embedding <=> $1`), the
-- measure text-embedding models are trained for. m = 16 and ef_construction = 64 are
-- pgvector's defaults, written out so that a change of those defaults cannot change the
-- index silently. Queries may raise recall per session with `set hnsw.ef_search`.

create index content_embeddings_embedding_idx on content_embeddings
  using hnsw (embedding vector_cosine_ops) with (m = 16, ef_construction = 64);

-- down
drop index if exists content_embeddings_embedding_idx;
