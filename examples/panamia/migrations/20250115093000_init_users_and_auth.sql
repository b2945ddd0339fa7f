-- Purpose: PostgreSQL becomes the authoritative identity store: users plus the NextAuth accounts, sessions and verification tokens (Phase 1-2 of the roadmap)
-- Ticket: N/A
-- Reversible: yes
-- Rollback: drop verification_tokens, sessions, accounts, users (see the down section)
--
-- The roadmap's other header fields:
-- Migration: init_users_and_auth
-- Dependencies: none
-- Data Migration: separate script (dualsync backfill of the nextauth_* collections, ObjectId -> cuid)
--
-- Names follow the roadmap's SQL (snake_case tables and columns: users, owner_id, ...); the
-- Prisma models map onto them with @@map/@map. Ids are text: cuid for new rows, and the
-- deterministic cuid of the legacy ObjectId for migrated ones, so Mongo documents that hold
-- a user id and Postgres foreign keys agree.
--
-- Choices the roadmap leaves open, made here:
-- * users.name and users.image are kept (nullable): the NextAuth adapter writes them and the
--   legacy nextauth_users documents carry them; the roadmap's User model omits them;
-- * verification_tokens gets an `id` primary key (the legacy document's _id as a cuid; the
--   Prisma model gains `id String @id @default(cuid())`). The roadmap's model has only
--   unique keys, and keying rows on (identifier, token) would put a credential into event
--   keys, logs and dualsync.row_state;
-- * accounts, sessions: ON DELETE CASCADE from users, as in the Prisma relations.

create table users (
  id              text primary key,
  email           text not null,
  email_verified  timestamptz,
  screenname      text,
  role            text not null default 'user',
  name            text,
  image           text,
  created_at      timestamptz not null default now(),
  updated_at      timestamptz not null,
  constraint users_email_key unique (email),
  constraint users_screenname_key unique (screenname)
);

create table accounts (
  id                   text primary key,
  user_id              text not null references users (id) on delete cascade,
  type                 text not null,
  provider             text not null,
  provider_account_id  text not null,
  refresh_token        text,
  access_token         text,
  expires_at           integer,
  token_type           text,
  scope                text,
  id_token             text,
  session_state        text,
  constraint accounts_provider_provider_account_id_key unique (provider, provider_account_id)
);
create index accounts_user_id_idx on accounts (user_id);

create table sessions (
  id             text primary key,
  session_token  text not null,
  user_id        text not null references users (id) on delete cascade,
  expires        timestamptz not null,
  constraint sessions_session_token_key unique (session_token)
);
create index sessions_user_id_idx on sessions (user_id);

create table verification_tokens (
  id          text primary key,
  identifier  text not null,
  token       text not null,
  expires     timestamptz not null,
  constraint verification_tokens_token_key unique (token),
  constraint verification_tokens_identifier_token_key unique (identifier, token)
);

-- down
drop table if exists verification_tokens;
drop table if exists sessions;
drop table if exists accounts;
drop table if exists users;
