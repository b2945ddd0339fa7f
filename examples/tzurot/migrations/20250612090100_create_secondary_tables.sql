-- Purpose: the plan's secondary tables: conversations and channel activations (Phase 3, week 2: "can migrate later")
-- Ticket: N/A
-- Reversible: yes
-- Rollback: drop channel_activations, conversations (see the down section)
--
-- The plan's DDL, as written. conversations.id stays SERIAL: synced rows carry the id the
-- bot's persistence layer gave them, rows created in Postgres take the sequence's next
-- value (advanced past the synced ids by 20250612090300_advance_conversations_id_seq).
-- conversations.personality_name has no foreign key in the plan (a conversation's history
-- outlives its personality); channel_activations.personality_name has one, without
-- ON DELETE: removing a personality that is still active in a channel is refused until
-- the channel is deactivated.

CREATE TABLE conversations (
    id SERIAL PRIMARY KEY,
    channel_id VARCHAR(50) NOT NULL,
    personality_name VARCHAR(255) NOT NULL,
    started_at TIMESTAMPTZ DEFAULT NOW(),
    last_message_at TIMESTAMPTZ,
    message_count INTEGER DEFAULT 0,
    metadata JSONB DEFAULT '{}'
);

CREATE TABLE channel_activations (
    channel_id VARCHAR(50) PRIMARY KEY,
    personality_name VARCHAR(255) NOT NULL REFERENCES personalities(full_name),
    activated_at TIMESTAMPTZ DEFAULT NOW(),
    activated_by VARCHAR(50)
);

-- down
DROP TABLE IF EXISTS channel_activations;
DROP TABLE IF EXISTS conversations;
