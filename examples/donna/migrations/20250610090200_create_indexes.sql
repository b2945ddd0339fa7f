-- Purpose: every secondary index of the plan: per-table indexes and the three composite ones (chat history, user activity, memory lookups)
-- Ticket: WS4 task 4.3 (phase-4-task-03-db-plan.md)
-- Reversible: yes
-- Rollback: drop the indexes (see the down section)
-- Phase: post-load
--
-- Built after the bulk backfill: loading into unindexed tables is much faster.
-- Kept as the plan lists them, though three duplicate an index Postgres already keeps:
-- idx_users_clerk_id (users_clerk_id_key), idx_chat_sessions_chat_id
-- (chat_sessions_chat_id_key) and idx_user_memory_lookup
-- (user_memory_user_id_memory_type_key_key); idx_messages_chat_session is a prefix of
-- idx_messages_sequence. Dropping them is a later, measured decision.

-- 1. users
create index idx_users_clerk_id on users (clerk_id);
create index idx_users_email on users (email);
create index idx_users_status on users (status);

-- 2. chat_sessions
create index idx_chat_sessions_chat_id on chat_sessions (chat_id);
create index idx_chat_sessions_user_id on chat_sessions (user_id);
create index idx_chat_sessions_profile on chat_sessions (profile);
create index idx_chat_sessions_status on chat_sessions (status);
create index idx_chat_sessions_last_message on chat_sessions (last_message_at);

-- 3. messages
create index idx_messages_chat_session on messages (chat_session_id);
create index idx_messages_role on messages (role);
create index idx_messages_sequence on messages (chat_session_id, sequence_number);
create index idx_messages_created_at on messages (created_at);
create index idx_messages_abuse_flagged on messages (abuse_flagged);

-- 4. user_memory
create index idx_user_memory_user_id on user_memory (user_id);
create index idx_user_memory_type on user_memory (memory_type);
create index idx_user_memory_expires on user_memory (expires_at);

-- 5. system_logs
create index idx_system_logs_level on system_logs (level);
create index idx_system_logs_trace_id on system_logs (trace_id);
create index idx_system_logs_created_at on system_logs (created_at);

-- Composite indexes
-- For chat history queries
create index idx_messages_chat_recent on messages (chat_session_id, created_at desc);
-- For user activity tracking
create index idx_chat_sessions_user_recent on chat_sessions (user_id, last_message_at desc);
-- For memory lookups
create index idx_user_memory_lookup on user_memory (user_id, memory_type, key);

-- down
drop index if exists idx_user_memory_lookup;
drop index if exists idx_chat_sessions_user_recent;
drop index if exists idx_messages_chat_recent;
drop index if exists idx_system_logs_created_at;
drop index if exists idx_system_logs_trace_id;
drop index if exists idx_system_logs_level;
drop index if exists idx_user_memory_expires;
drop index if exists idx_user_memory_type;
drop index if exists idx_user_memory_user_id;
drop index if exists idx_messages_abuse_flagged;
drop index if exists idx_messages_created_at;
drop index if exists idx_messages_sequence;
drop index if exists idx_messages_role;
drop index if exists idx_messages_chat_session;
drop index if exists idx_chat_sessions_last_message;
drop index if exists idx_chat_sessions_status;
drop index if exists idx_chat_sessions_profile;
drop index if exists idx_chat_sessions_user_id;
drop index if exists idx_chat_sessions_chat_id;
drop index if exists idx_users_status;
drop index if exists idx_users_email;
drop index if exists idx_users_clerk_id;
