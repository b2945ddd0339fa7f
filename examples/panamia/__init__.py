"""The panamia example: a Mongo marketplace's users and bookings moved to PostgreSQL (plan 004)."""

from examples.panamia.generator import ENTITIES, LegacyDoc, generate

__all__ = ["ENTITIES", "LegacyDoc", "generate"]
