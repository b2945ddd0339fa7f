"""The tzurot example: a Node Discord bot's JSON files moved to PostgreSQL (seed plan 003)."""

from examples.tzurot.generator import ENTITIES, SEPARATOR, LegacyDoc, generate

__all__ = ["ENTITIES", "SEPARATOR", "LegacyDoc", "generate"]
