"""The donna example: a PHP assistant's JSON files moved to PostgreSQL (seed plan 002)."""
