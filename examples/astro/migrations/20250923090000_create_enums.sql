-- Purpose: Postgres enums for the astro schema (PlanetScale spec: diary cadence, birth-time precision, relationship type, chat role, feed type and source, prompt type)
-- Ticket: N/A
-- Reversible: yes
-- Rollback: drop the seven enum types (see the down section)
--
-- feed_items.type and prompts.type list different values, so each gets its own type.

create type diary_cadence as enum ('daily', 'weekly', 'off');
create type birth_time_precision as enum ('exact', 'approximate', 'unknown');
create type relationship_type as enum ('boyfriend', 'best_friend', 'situationship', 'custom');
create type chat_role as enum ('user', 'assistant');
create type feed_item_type as enum ('personal', 'tea', 'prompt', 'celebrity');
create type feed_source as enum ('human', 'ai');
create type prompt_type as enum ('daily', 'weekly');

-- down
drop type if exists prompt_type;
drop type if exists feed_source;
drop type if exists feed_item_type;
drop type if exists chat_role;
drop type if exists relationship_type;
drop type if exists birth_time_precision;
drop type if exists diary_cadence;
