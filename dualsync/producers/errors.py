"""Errors the publisher SDK raises on purpose (all rooted at `DualsyncError`)."""

from __future__ import annotations

from dualsync.errors import ConfigError
from dualsync.schema.errors import EnvelopeError

__all__ = ["ClockStateError", "VersionDomainError"]


class VersionDomainError(EnvelopeError):
    """An event's version would come from a different source than the entity's other events.

    Per entity, a publisher uses one version domain: "app" (every event passes `version=`:
    a counter, `updatedAt` in µs) or "clock" (no event does; the hybrid clock supplies
    them). Mixing them gives a delete a µs clock version (~1.7e15) that no later counter
    version can beat, so a re-created key would stay deleted forever. Raised before
    anything is sent or spooled.
    """

    def __init__(self, message: str) -> None:
        super().__init__(message, field="version", reason="version_domain")


class ClockStateError(ConfigError):
    """The clock's persisted high-water mark cannot be read; versions could regress."""
