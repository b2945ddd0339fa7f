-- Purpose: DovvyBuddy's data layer (PR1): pgvector, the five tables (destinations, dive_sites, leads, sessions, content_embeddings with vector(1536)) and the plan's B-tree indexes
-- Ticket: PR1 (feature/pr1-database-schema)
-- Reversible: yes
-- Rollback: drop the five tables, children first, then the vector extension (see the down section)
--
-- The plan's other fields:
-- Migration: 0001_initial_schema (Drizzle Kit). Its HNSW index is a migration of its own,
--   20251222090100_content_embeddings_hnsw, which runs after the bulk load (Phase: post-load).
--
-- Timestamps are TIMESTAMPTZ, not the plan's TIMESTAMP (Drizzle's `timestamp()` default,
-- "without time zone"). Every instant of the legacy store is a UTC `toISOString()` string and
-- dualsync coerces it to a UTC instant. A `timestamp` column stores the wall clock of the
-- writing session's TimeZone and forgets the zone: right only while every writer (worker,
-- app, psql on a laptop) runs with TimeZone = UTC, and `expires_at < now()` cleanups depend
-- on it too. TIMESTAMPTZ stores the instant whatever the session; Drizzle reads it with
-- `timestamp(..., { withTimezone: true })`. The plan's defaults are kept (now(), now() + 24 h).
--
-- Choices the plan leaves open, made here:
-- * uuid-ossp is not enabled: gen_random_uuid() is built in since PostgreSQL 13 (Neon runs
--   15+) and gives the same random v4 UUID as uuid_generate_v4(). As in the plan, only
--   destinations.id has a default; the other ids come from the application, and synced rows
--   get the uuid5 of their legacy id (dualsync's `uuid5` key strategy);
-- * leads.type is text with a CHECK, not an enum type: the plan says TEXT (Drizzle's
--   `text('type', { enum: [...] })` is a TypeScript-only enum over a text column), the CHECK
--   makes the database enforce it as well, and a third lead type is a constraint swap in one
--   transaction (an enum label cannot be used in the transaction that adds it, nor dropped);
-- * NOT NULL where the plan says so (name, country, expires_at), and where a NULL would be
--   meaningless: created_at and is_active (they have defaults, and the legacy records always
--   carry them), dive_sites.destination_id (a site belongs to a destination), leads.type and
--   request_details (the lead itself), sessions.conversation_history (empty array at start),
--   content_path, chunk_text and embedding (a chunk without them cannot be retrieved).
--   Nullable: descriptive fields (description, levels, bands, access type, min_logged_dives),
--   diver profiles (a first-course lead or a fresh session has none) and chunk metadata;
-- * dive_sites keep their destination (no cascade): destinations are retired with is_active,
--   and deleting one that still has sites must be an explicit decision.

create extension if not exists vector;

create table destinations (
  id          uuid primary key default gen_random_uuid(),
  name        text not null,
  country     text not null,
  is_active   boolean not null default true,
  created_at  timestamptz not null default now()
);

create table dive_sites (
  id                       uuid primary key,
  destination_id           uuid not null references destinations (id),
  name                     text not null,
  description              text,
  min_certification_level  text,
  min_logged_dives         integer,
  difficulty_band          text,
  access_type              text,
  is_active                boolean not null default true,
  created_at               timestamptz not null default now()
);
create index dive_sites_destination_id_idx on dive_sites (destination_id);

create table leads (
  id               uuid primary key,
  type             text not null,
  diver_profile    jsonb,
  request_details  jsonb not null,
  created_at       timestamptz not null default now(),
  constraint leads_type_check check (type in ('training', 'trip'))
);

create table sessions (
  id                    uuid primary key,
  diver_profile         jsonb,
  conversation_history  jsonb not null,
  created_at            timestamptz not null default now(),
  expires_at            timestamptz not null default now() + interval '24 hours'
);
-- The cleanup job deletes expired sessions: `where expires_at < now()`.
create index sessions_expires_at_idx on sessions (expires_at);

create table content_embeddings (
  id            uuid primary key,
  content_path  text not null,
  chunk_text    text not null,
  embedding     vector(1536) not null,
  metadata      jsonb,
  created_at    timestamptz not null default now()
);

-- down
drop table if exists content_embeddings;
drop table if exists sessions;
drop table if exists leads;
drop table if exists dive_sites;
drop table if exists destinations;
drop extension if exists vector;
