"""The panamia example: a Mongo marketplace's users and bookings moved to PostgreSQL (plan 004)."""
