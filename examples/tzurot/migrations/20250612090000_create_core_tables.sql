-- Purpose: the plan's core tables for the immediate pain points: personalities, their aliases, auth tokens and NSFW verifications survive deployments (Phase 3, week 1)
-- Ticket: N/A
-- Reversible: yes
-- Rollback: drop nsfw_verifications, auth_tokens, personality_aliases, personalities (see the down section)
--
-- The plan's DDL, as written: VARCHAR lengths, TIMESTAMPTZ, its defaults and nullability.
-- Snowflake ids are VARCHAR(50) (JavaScript keeps them as strings), names VARCHAR(255).
-- An alias goes with its personality (ON DELETE CASCADE), as the bot's registry removes a
-- personality's aliases with it. auth_tokens has no foreign key to personalities in the
-- plan, and gets none: a token is the user's, and outlives a removed personality.

CREATE TABLE personalities (
    full_name VARCHAR(255) PRIMARY KEY,
    display_name VARCHAR(100) NOT NULL,
    avatar_url TEXT,
    added_by VARCHAR(50) NOT NULL,
    added_at TIMESTAMPTZ NOT NULL,
    is_active BOOLEAN DEFAULT true,
    metadata JSONB DEFAULT '{}'
);

CREATE TABLE personality_aliases (
    alias VARCHAR(100) PRIMARY KEY,
    personality_name VARCHAR(255) NOT NULL REFERENCES personalities(full_name) ON DELETE CASCADE,
    created_at TIMESTAMPTZ DEFAULT NOW()
);

CREATE TABLE auth_tokens (
    user_id VARCHAR(50) NOT NULL,
    personality_name VARCHAR(255) NOT NULL,
    token TEXT NOT NULL,
    created_at TIMESTAMPTZ DEFAULT NOW(),
    expires_at TIMESTAMPTZ,
    last_used TIMESTAMPTZ,
    PRIMARY KEY (user_id, personality_name)
);

CREATE TABLE nsfw_verifications (
    user_id VARCHAR(50) PRIMARY KEY,
    verified_at TIMESTAMPTZ DEFAULT NOW(),
    verified_by VARCHAR(50)
);

-- down
DROP TABLE IF EXISTS nsfw_verifications;
DROP TABLE IF EXISTS auth_tokens;
DROP TABLE IF EXISTS personality_aliases;
DROP TABLE IF EXISTS personalities;
