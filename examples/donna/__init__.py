"""The donna example: a PHP assistant's JSON files moved to PostgreSQL (seed plan 002)."""

from examples.donna.generator import ENTITIES, LegacyDoc, generate

__all__ = ["ENTITIES", "LegacyDoc", "generate"]
