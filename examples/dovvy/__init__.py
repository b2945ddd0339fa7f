"""The dovvy example: a dive-travel assistant's JSON files moved to PostgreSQL (seed plan 001)."""
