"""The astro example: an astrology app's MongoDB documents moved to PostgreSQL (seed plan 000)."""

from examples.astro.generator import ENTITIES, LegacyDoc, generate

__all__ = ["ENTITIES", "LegacyDoc", "generate"]
