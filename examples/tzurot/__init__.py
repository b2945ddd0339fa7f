"""The tzurot example: a Node Discord bot's JSON files moved to PostgreSQL (seed plan 003)."""
