-- Purpose: the plan's four core tables (users, chat_sessions, messages, user_memory) with their keys, UNIQUE constraints and foreign keys, exactly as "Target Database Schema" lists them
-- Ticket: WS4 task 4.3 (phase-4-task-03-db-plan.md)
-- Reversible: yes
-- Rollback: drop user_memory, messages, chat_sessions, users (see the down section); the JSON files stay authoritative until cutover
--
-- Types, lengths, nullability and defaults are the plan's, column for column. Rows synced
-- from the JSON files always carry every column, so the defaults only serve rows the new
-- PHP DAL inserts. gen_random_uuid() is built in since PostgreSQL 13 (no pgcrypto);
-- synced rows carry the uuid5 of their legacy id instead (examples/donna/mapping.yaml).
-- Constraint names are the ones Postgres gives the plan's inline UNIQUEs and REFERENCES.
-- Secondary indexes are built after the bulk load (create_indexes, add_messages_content_fts).

create table users (
  id              uuid primary key default gen_random_uuid(),
  clerk_id        varchar(255),
  email           varchar(255),
  name            varchar(255),
  profile         jsonb default '{}',
  preferences     jsonb default '{}',
  created_at      timestamp with time zone default now(),
  updated_at      timestamp with time zone default now(),
  last_active_at  timestamp with time zone,
  status          varchar(50) default 'active',
  constraint users_clerk_id_key unique (clerk_id)
);

create table chat_sessions (
  id               uuid primary key default gen_random_uuid(),
  chat_id          varchar(255) not null,
  user_id          uuid,
  title            varchar(255),
  profile          varchar(50) default 'general',
  metadata         jsonb default '{}',
  created_at       timestamp with time zone default now(),
  updated_at       timestamp with time zone default now(),
  last_message_at  timestamp with time zone,
  message_count    integer default 0,
  status           varchar(50) default 'active',
  constraint chat_sessions_chat_id_key unique (chat_id),
  constraint chat_sessions_user_id_fkey foreign key (user_id)
    references users (id) on delete set null
);

create table messages (
  id               uuid primary key default gen_random_uuid(),
  chat_session_id  uuid not null,
  role             varchar(50) not null, -- 'user', 'assistant', 'system'
  content          text not null,
  metadata         jsonb default '{}',
  created_at       timestamp with time zone default now(),
  sequence_number  integer not null,
  token_count      integer,
  abuse_flagged    boolean default false,
  constraint messages_chat_session_id_fkey foreign key (chat_session_id)
    references chat_sessions (id) on delete cascade
);

create table user_memory (
  id           uuid primary key default gen_random_uuid(),
  user_id      uuid not null,
  memory_type  varchar(100) not null, -- 'profile', 'preferences', 'context'
  key          varchar(255) not null,
  value        jsonb not null,
  created_at   timestamp with time zone default now(),
  updated_at   timestamp with time zone default now(),
  expires_at   timestamp with time zone,
  constraint user_memory_user_id_memory_type_key_key unique (user_id, memory_type, key),
  constraint user_memory_user_id_fkey foreign key (user_id)
    references users (id) on delete cascade
);

-- down
drop table if exists user_memory;
drop table if exists messages;
drop table if exists chat_sessions;
drop table if exists users;
