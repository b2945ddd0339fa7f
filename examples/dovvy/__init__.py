"""The dovvy example: a dive-travel assistant's JSON files moved to PostgreSQL (seed plan 001)."""

from examples.dovvy.generator import ENTITIES, LegacyDoc, generate

__all__ = ["ENTITIES", "LegacyDoc", "generate"]
