-- Purpose: the eleven astro tables of the PlanetScale spec (UUID keys, TIMESTAMPTZ, JSONB settings/tags/payloads, real foreign keys)
-- Ticket: N/A
-- Reversible: yes
-- Rollback: drop the eleven tables, children first (see the down section)
--
-- Choices the spec leaves open, made here:
-- * every column the spec does not mark nullable is NOT NULL;
-- * ids and timestamps default server-side ("use server-side generated IDs and timestamps"):
--   gen_random_uuid() and now(); rows synced from the legacy store always carry both;
-- * a user's data goes with the user (ON DELETE CASCADE: the privacy "delete my data" path);
--   optional links (relationships.chart_id, diary_entries.prompt_id) become NULL instead;
--   a feed item's saves go with the item (feed items expire);
-- * no unique (user_id, feed_id) on feed_saves: the spec lists none, and legacy saves arrays
--   built with $push may repeat an item.

create table users (
  user_id        uuid primary key default gen_random_uuid(),
  email          text,
  created_at     timestamptz not null default now(),
  timezone       text not null,
  persona_name   text,
  persona_style  text,
  diary_cadence  diary_cadence not null,
  settings       jsonb not null default '{}'::jsonb
);

create table prompts (
  prompt_id   uuid primary key default gen_random_uuid(),
  type        prompt_type not null,
  text        text not null,
  created_at  timestamptz not null default now()
);

create table feed_items (
  feed_id     uuid primary key default gen_random_uuid(),
  type        feed_item_type not null,
  title       text not null,
  body        text not null,
  tags        jsonb not null default '[]'::jsonb,
  created_at  timestamptz not null default now(),
  expires_at  timestamptz not null,
  source      feed_source not null
);

create table charts (
  chart_id              uuid primary key default gen_random_uuid(),
  user_id               uuid not null references users (user_id) on delete cascade,
  birth_date            date not null,
  birth_time            time,
  birth_time_precision  birth_time_precision not null,
  birth_location        text,
  sun_sign              text not null,
  moon_sign             text,
  rising_sign           text,
  raw_chart_payload     jsonb,
  created_at            timestamptz not null default now()
);

create table relationships (
  relationship_id  uuid primary key default gen_random_uuid(),
  user_id          uuid not null references users (user_id) on delete cascade,
  label            text not null,
  type             relationship_type not null,
  person_name      text not null,
  chart_id         uuid references charts (chart_id) on delete set null,
  sun_sign         text,
  created_at       timestamptz not null default now()
);

create table chat_threads (
  thread_id       uuid primary key default gen_random_uuid(),
  user_id         uuid not null references users (user_id) on delete cascade,
  title           text,
  created_at      timestamptz not null default now(),
  updated_at      timestamptz not null default now(),
  memory_enabled  boolean not null,
  summary         text
);

create table chat_messages (
  message_id  uuid primary key default gen_random_uuid(),
  thread_id   uuid not null references chat_threads (thread_id) on delete cascade,
  user_id     uuid not null references users (user_id) on delete cascade,
  role        chat_role not null,
  content     text not null,
  created_at  timestamptz not null default now()
);

create table diary_entries (
  entry_id    uuid primary key default gen_random_uuid(),
  user_id     uuid not null references users (user_id) on delete cascade,
  title       text,
  body        text not null,
  mood        text,
  prompt_id   uuid references prompts (prompt_id) on delete set null,
  astro_tags  jsonb,
  created_at  timestamptz not null default now()
);

create table feed_saves (
  save_id     uuid primary key default gen_random_uuid(),
  user_id     uuid not null references users (user_id) on delete cascade,
  feed_id     uuid not null references feed_items (feed_id) on delete cascade,
  created_at  timestamptz not null default now()
);

create table tarot_pulls (
  pull_id         uuid primary key default gen_random_uuid(),
  user_id         uuid not null references users (user_id) on delete cascade,
  card_id         text not null,
  interpretation  text not null,
  created_at      timestamptz not null default now()
);

create table memories (
  memory_id   uuid primary key default gen_random_uuid(),
  user_id     uuid not null references users (user_id) on delete cascade,
  summary     text not null,
  created_at  timestamptz not null default now()
);

-- down
drop table if exists memories;
drop table if exists tarot_pulls;
drop table if exists feed_saves;
drop table if exists diary_entries;
drop table if exists chat_messages;
drop table if exists chat_threads;
drop table if exists relationships;
drop table if exists charts;
drop table if exists feed_items;
drop table if exists prompts;
drop table if exists users;
