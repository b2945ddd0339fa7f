-- Purpose: full-text search over message content (the plan's "Future Enhancement"): a GIN index on to_tsvector('english', content)
-- Ticket: WS4 task 4.3 (phase-4-task-03-db-plan.md)
-- Reversible: yes
-- Rollback: drop index idx_messages_content_fts (see the down section)
-- Phase: post-load
--
-- A file of its own: it is the costliest index to build and the one a rollout may want to
-- postpone. Queries must use the same expression, to_tsvector('english', content), to use
-- it. The 'english' configuration stems English only; messages in other scripts are
-- indexed as unstemmed words.

create index idx_messages_content_fts on messages using gin (to_tsvector('english', content));

-- down
drop index if exists idx_messages_content_fts;
