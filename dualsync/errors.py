"""The root of every dualsync error.

The worker's retry/dead-letter decision is a type check, never string matching
(docs/architecture.md, Failure handling): a `RetryableError` leaves the batch pending and
is retried with backoff; a `PermanentError` isolates the event (bisection) and, after
`max_deliveries`, dead-letters it with its `reason` code.
"""

from __future__ import annotations


class DualsyncError(Exception):
    """Base class: every error dualsync raises on purpose derives from this."""

    #: short machine-readable code used in dead letters, metrics and CLI output
    reason: str = "error"


class RetryableError(DualsyncError):
    """Transient: the same input may succeed later (lost connection, parent not applied)."""

    reason = "transient"


class PermanentError(DualsyncError):
    """The input itself is wrong: retrying cannot help; fix input or mapping, then replay."""

    reason = "permanent"


class ConfigError(DualsyncError):
    """Settings or environment are unusable; the message says which setting and what to do."""

    reason = "config"


class ServiceUnavailableError(DualsyncError):
    """A required service (PostgreSQL, Redis) cannot be reached or is unusable."""

    reason = "service_unavailable"
