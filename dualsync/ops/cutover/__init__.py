"""Cutover: read-path modes per entity, their audited changes, readiness gates."""
