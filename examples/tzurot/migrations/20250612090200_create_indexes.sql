-- Purpose: the plan's three "Indexes for performance": tokens by user, conversations by channel and personality, personalities by creator
-- Ticket: N/A
-- Reversible: yes
-- Rollback: drop the three indexes (see the down section)
-- Phase: post-load
--
-- Built after the bulk backfill: loading into unindexed tables is faster.
-- idx_auth_tokens_user_id repeats the leading column of auth_tokens' primary key, which
-- already serves lookups by user_id; it is kept because the plan lists it.

CREATE INDEX idx_auth_tokens_user_id ON auth_tokens(user_id);
CREATE INDEX idx_conversations_channel_personality ON conversations(channel_id, personality_name);
CREATE INDEX idx_personalities_added_by ON personalities(added_by);

-- down
DROP INDEX IF EXISTS idx_personalities_added_by;
DROP INDEX IF EXISTS idx_conversations_channel_personality;
DROP INDEX IF EXISTS idx_auth_tokens_user_id;
