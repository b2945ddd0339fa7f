"""The astro example: an astrology app's MongoDB documents moved to PostgreSQL (seed plan 000)."""
