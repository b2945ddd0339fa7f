-- Purpose: the spec's minimum indexes, plus indexes on foreign-key columns (cascading deletes and per-user reads)
-- Ticket: N/A
-- Reversible: yes
-- Rollback: drop the indexes (see the down section)
-- Phase: post-load
--
-- Built after the bulk backfill: loading into unindexed tables is much faster.

-- The spec's "Indexing (minimum)".
create index chat_messages_thread_id_created_at_idx on chat_messages (thread_id, created_at);
create index diary_entries_user_id_created_at_idx on diary_entries (user_id, created_at);
create index feed_items_created_at_type_idx on feed_items (created_at, type);
create index relationships_user_id_idx on relationships (user_id);
create index feed_saves_user_id_created_at_idx on feed_saves (user_id, created_at);

-- Beyond the minimum: every other foreign key, so ON DELETE CASCADE / SET NULL on the parent
-- does not scan the child table, and per-user listings are index scans.
create index charts_user_id_idx on charts (user_id);
create index relationships_chart_id_idx on relationships (chart_id);
create index chat_threads_user_id_updated_at_idx on chat_threads (user_id, updated_at);
create index chat_messages_user_id_idx on chat_messages (user_id);
create index diary_entries_prompt_id_idx on diary_entries (prompt_id);
create index feed_saves_feed_id_idx on feed_saves (feed_id);
create index tarot_pulls_user_id_created_at_idx on tarot_pulls (user_id, created_at);
create index memories_user_id_created_at_idx on memories (user_id, created_at);

-- down
drop index if exists memories_user_id_created_at_idx;
drop index if exists tarot_pulls_user_id_created_at_idx;
drop index if exists feed_saves_feed_id_idx;
drop index if exists diary_entries_prompt_id_idx;
drop index if exists chat_messages_user_id_idx;
drop index if exists chat_threads_user_id_updated_at_idx;
drop index if exists relationships_chart_id_idx;
drop index if exists charts_user_id_idx;
drop index if exists feed_saves_user_id_created_at_idx;
drop index if exists relationships_user_id_idx;
drop index if exists feed_items_created_at_type_idx;
drop index if exists diary_entries_user_id_created_at_idx;
drop index if exists chat_messages_thread_id_created_at_idx;
