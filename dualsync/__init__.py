"""dualsync: apply legacy-store change events to PostgreSQL, verify, and cut over per entity."""

__version__ = "0.1.0"

__all__ = ["__version__"]
